"""Snapping points to the river network: one point to its nearest reach, or a table of points at once."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from gis.crs import LOCAL_METRIC_PROJ
from layers.catalogue import SCHEMA
from services.river.reaches import defaults_sql

DEFAULT_SNAP_M = 2_000.0
METRIC_PROJ = LOCAL_METRIC_PROJ
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
    # Candidates by the index, then the nearest point found in the local transverse Mercator, where
    # "nearest" means metres (in lon/lat degrees it can lie hundreds of metres along the river).
    # The candidates and the point go to the projection together, and the nearest points back together:
    # a projection given as a PROJ string is built anew on every ST_Transform call (about 12 ms).
    row = conn.execute(
        f"""WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g),
            c AS (SELECT row_number() OVER (ORDER BY r.id) AS i, r.id, r.key, r.name, r.geom
                  FROM p, LATERAL (SELECT * FROM {SCHEMA}.river ORDER BY geom <-> p.g LIMIT 8) r),
            there AS (SELECT ST_Transform(ST_Collect(g ORDER BY i), %(proj)s) AS coll, count(*) - 1 AS k
                      FROM (SELECT i, geom AS g FROM c UNION ALL SELECT 1e9, g FROM p) x),
            m AS (SELECT c.*, ST_GeometryN(t.coll, c.i::int) AS mg, ST_GeometryN(t.coll, t.k::int + 1) AS mp
                  FROM c, there t),
            back AS (SELECT ST_Transform(ST_Collect(ST_ClosestPoint(mg, mp) ORDER BY i), %(proj)s, 4326) AS coll
                     FROM m),
            n AS (SELECT m.id, m.key, m.name, ST_LineLocatePoint(m.mg, m.mp) AS fraction,
                         ST_SetSRID(ST_GeometryN(b.coll, m.i::int), 4326) AS at, p.g
                  FROM m, back b, p)
            SELECT id, key, name, fraction, ST_Distance(at::geography, g::geography) AS distance_m,
                   ST_X(at) AS lon, ST_Y(at) AS lat
            FROM n ORDER BY distance_m LIMIT 1""",
        {"lon": lon, "lat": lat, "proj": METRIC_PROJ}).fetchone()
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
    # the reaches and the snapped points once in the local transverse Mercator: positions along the
    # reaches are found in metres, exactly as snap() finds them for one point
    conn.execute("DROP TABLE IF EXISTS river_metric")
    conn.execute(f"""CREATE TEMP TABLE river_metric ON COMMIT DROP AS {_metric_sql(f'{SCHEMA}.river', 'id')}""",
                 {"proj": METRIC_PROJ})
    conn.execute("ALTER TABLE river_metric ADD PRIMARY KEY (id)")
    conn.execute("DROP TABLE IF EXISTS point_metric")
    conn.execute(f"""CREATE TEMP TABLE point_metric ON COMMIT DROP AS {_metric_sql('snap_nearest', 'pid')}""",
                 {"proj": METRIC_PROJ})
    conn.execute("ALTER TABLE point_metric ADD PRIMARY KEY (id)")
    conn.execute(f"""
    CREATE TEMP TABLE "{table}" ON COMMIT DROP AS
    SELECT n.pid, n.reach_id, n.distance_m, ST_LineLocatePoint(m.mgeom, pm.mgeom) * n.length_m AS position_m,
           ST_LineLocatePoint(m.mgeom, pm.mgeom) * n.length_m / nullif(n.u, 0) AS position_s
    FROM snap_nearest n JOIN point_metric pm ON pm.id = n.pid JOIN river_metric m ON m.id = n.reach_id""")
    conn.execute(f'ALTER TABLE "{table}" ADD PRIMARY KEY (pid)')
    conn.execute(f'ANALYZE "{table}"')
    return int(conn.execute(f'SELECT count(*) AS n FROM "{table}"').fetchone()["n"])


def _metric_sql(table: str, key: str) -> str:
    """A SELECT of (id, mgeom): every geometry of ``table`` in the local transverse Mercator
    (``%(proj)s``), transformed in one call.

    PostGIS caches a projection given by SRID but builds one given as a PROJ string anew on every
    call (about 12 ms each here), so the rows are collected, transformed once and dumped back: the
    same coordinates as a transform per row, at the cost of one.
    """
    return f"""SELECT x.ids[d.path[1]] AS id, d.geom AS mgeom
               FROM (SELECT array_agg({key} ORDER BY {key}) AS ids,
                            ST_Transform(ST_Collect(geom ORDER BY {key}), %(proj)s) AS g FROM {table}) x
               CROSS JOIN LATERAL ST_Dump(x.g) d"""


def snapped_reaches(conn: psycopg.Connection, table: str = "point_snap") -> list[int]:
    """The distinct reaches points were snapped to (the origins of the closure to build)."""
    return [int(r["reach_id"]) for r in conn.execute(f'SELECT DISTINCT reach_id FROM "{table}"').fetchall()]
