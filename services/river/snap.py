"""Snapping points to the river network: one point to its nearest reach, or a table of points at once."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from layers.catalogue import SCHEMA
from services.river.reaches import defaults_sql

DEFAULT_SNAP_M = 2_000.0
#: The grid (degrees) by which :func:`snap_points` finds the points near some reach before searching.
SNAP_CELL_DEG = 0.02


class NoRiverNearby(ValueError):
    """No reach lies within the snapping distance; the message gives the nearest distance found."""


@dataclass(frozen=True)
class Snap:
    """Where a point meets the network: the reach, the fraction along it, and how far it was."""

    reach_id: int
    key: str
    name: str
    fraction: float
    distance_m: float
    lon: float
    lat: float


def snap(conn: psycopg.Connection, lon: float, lat: float, max_distance_m: float = DEFAULT_SNAP_M) -> Snap:
    """The nearest reach to (lon, lat) in WGS84; ``NoRiverNearby`` beyond ``max_distance_m``."""
    # Candidates by the index, then the nearest point found in metres, where "nearest" means metres (in
    # lon/lat degrees it can lie hundreds of metres along the river): each candidate and the point in the
    # candidate's UTM zone (migration 0023), true to 1e-3 anywhere and kept by PostGIS per SRID.
    row = conn.execute(
        f"""WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g),
            c AS (SELECT r.id, r.key, r.name, {SCHEMA}.utm_srid(r.geom) AS srid, r.geom
                  FROM p, LATERAL (SELECT * FROM {SCHEMA}.river ORDER BY geom <-> p.g LIMIT 8) r),
            m AS (SELECT c.id, c.key, c.name, c.srid, ST_Transform(c.geom, c.srid) AS mg,
                         ST_Transform(p.g, c.srid) AS mp, p.g
                  FROM c, p),
            n AS (SELECT m.id, m.key, m.name, ST_LineLocatePoint(m.mg, m.mp) AS fraction,
                         ST_Transform(ST_ClosestPoint(m.mg, m.mp), 4326) AS at, m.g
                  FROM m)
            SELECT id, key, name, fraction, ST_Distance(at::geography, g::geography) AS distance_m,
                   ST_X(at) AS lon, ST_Y(at) AS lat
            FROM n ORDER BY distance_m, id LIMIT 1""",
        {"lon": lon, "lat": lat}).fetchone()
    if row is None:
        raise NoRiverNearby("the river layer is empty: load river reaches first")
    row = dict(row)
    if row["distance_m"] > max_distance_m:
        raise NoRiverNearby(f"the nearest river reach ({row['name']}) is {row['distance_m']:.0f} m away, "
                            f"beyond the snapping distance of {max_distance_m:.0f} m")
    return Snap(row["id"], row["key"], row["name"], float(row["fraction"]), float(row["distance_m"]),
                float(row["lon"]), float(row["lat"]))


def snap_points(conn: psycopg.Connection, max_distance_m: float, *, points: str = "bulk_point",
                table: str = "point_snap") -> int:
    """Snap every point of the temporary table ``points`` (pid bigint, geom Point 4326) to its nearest
    reach within ``max_distance_m`` (geodesic), as :func:`snap` does one point.

    Fills the temporary table ``table`` (dropped at commit): pid, reach_id, distance_m, position_m
    (metres from the reach's start) and position_s (seconds from it).  Points with no reach that near
    get no row.  The candidates come from the reach GiST index through a degree box wide enough for
    ``max_distance_m`` at the point's latitude.  Returns the number of points snapped.
    """
    defaults, params = defaults_sql()
    conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    # the points worth a search: those in the cells of a SNAP_CELL_DEG grid that lie within the snapping
    # distance (in degrees at the cell's latitude farthest from the equator, so never less than a point's
    # own) of some reach, found once per cell by the reach GiST index; most points of a region are far
    # from every river and skip the search, the others get exactly the search they got before
    conn.execute("DROP TABLE IF EXISTS snap_candidate")
    conn.execute(f"""
    CREATE TEMP TABLE snap_candidate ON COMMIT DROP AS
    WITH cell AS (SELECT DISTINCT floor(ST_X(geom) / %(cell)s) AS cx, floor(ST_Y(geom) / %(cell)s) AS cy
                  FROM "{points}"),
    near AS (SELECT c.cx, c.cy FROM cell c
             WHERE EXISTS (SELECT 1 FROM {SCHEMA}.river r
                           WHERE ST_DWithin(r.geom, ST_MakeEnvelope(c.cx * %(cell)s, c.cy * %(cell)s,
                                                                    (c.cx + 1) * %(cell)s, (c.cy + 1) * %(cell)s, 4326),
                                            1.01 * %(max)s / (110574.0 * cos(radians(least(
                                                greatest(abs(c.cy * %(cell)s), abs((c.cy + 1) * %(cell)s)), 85.0))))
                                            + 1e-9)))
    SELECT p.pid, p.geom FROM "{points}" p
    JOIN near n ON n.cx = floor(ST_X(p.geom) / %(cell)s) AND n.cy = floor(ST_Y(p.geom) / %(cell)s)""",
                 {"max": max_distance_m, "cell": SNAP_CELL_DEG})
    conn.execute("DROP TABLE IF EXISTS snap_nearest")
    conn.execute(f"""
    CREATE TEMP TABLE snap_nearest ON COMMIT DROP AS
    SELECT p.pid, p.geom, c.id AS reach_id, c.distance_m, c.length_m, c.u
    FROM snap_candidate p
    CROSS JOIN LATERAL (
        SELECT r.id, ST_Distance(r.geom::geography, p.geom::geography) AS distance_m,
               ST_Length(r.geom::geography) AS length_m, coalesce(r.velocity_ms, d.u) AS u
        FROM {SCHEMA}.river r JOIN {defaults} ON d.river_class = r.river_class
        WHERE ST_DWithin(r.geom, p.geom,
                         1.01 * %(max)s / (110574.0 * cos(radians(least(abs(ST_Y(p.geom)), 85.0)))))
        ORDER BY ST_Distance(r.geom::geography, p.geom::geography), r.id
        LIMIT 1) c
    WHERE c.distance_m <= %(max)s""", {"max": max_distance_m, **params})
    # the reaches, and each snapped point, in the reach's UTM zone (migration 0023): positions along the
    # reaches are found in metres, exactly as snap() finds them for one point
    conn.execute("DROP TABLE IF EXISTS river_metric")
    conn.execute(f"""CREATE TEMP TABLE river_metric ON COMMIT DROP AS
        SELECT id, srid, ST_Transform(geom, srid) AS mgeom
        FROM (SELECT r.id, {SCHEMA}.utm_srid(r.geom) AS srid, r.geom FROM {SCHEMA}.river r
              WHERE r.id IN (SELECT DISTINCT reach_id FROM snap_nearest)) x""")
    conn.execute("ALTER TABLE river_metric ADD PRIMARY KEY (id)")
    conn.execute(f"""
    CREATE TEMP TABLE "{table}" ON COMMIT DROP AS
    SELECT n.pid, n.reach_id, n.distance_m, a.m AS position_m, a.m / nullif(n.u, 0) AS position_s
    FROM snap_nearest n JOIN river_metric r ON r.id = n.reach_id
    CROSS JOIN LATERAL (SELECT ST_LineLocatePoint(r.mgeom, ST_Transform(n.geom, r.srid)) * n.length_m AS m) a""")
    conn.execute(f'ALTER TABLE "{table}" ADD PRIMARY KEY (pid)')
    conn.execute(f'ANALYZE "{table}"')
    return int(conn.execute(f'SELECT count(*) AS n FROM "{table}"').fetchone()["n"])


def snapped_reaches(conn: psycopg.Connection, table: str = "point_snap") -> list[int]:
    """The distinct reaches points were snapped to (the origins of the closure to build)."""
    return [int(r["reach_id"]) for r in conn.execute(f'SELECT DISTINCT reach_id FROM "{table}"').fetchall()]
