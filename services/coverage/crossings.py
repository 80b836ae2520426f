"""Monitoring coverage: where the station network is blind.

Two questions, both answered set-based in PostGIS and returned as GeoJSON (EPSG:4326) for a map layer:

* risk sources with no station of the right medium nearby: for air, no air station within
  ``distance_m`` (geodesic); for water, no water station on the river within ``distance_m``
  downstream of the reach the source drains to (``services.river``).  Sources with no reach
  within the snapping distance cannot be judged for water and are counted apart.
* river crossings of city or province borders with no cross-border section station within
  ``within_m``.  The crossings are derived, never typed in: the network is sampled every
  ``sample_m`` metres along each path from a headwater to an outlet, each sample takes the code of the
  area it lies in (none outside the loaded boundaries), and a crossing is a change of code between
  stays of at least ``min_stay_m`` (a river that weaves along a border for less than that settles on
  one side, as the demo region's own rivers do), placed where the samples change between those two
  areas nearest the middle of the change.  A river cut off at the outer edge of the loaded areas (it
  starts or ends within ``EDGE_M`` of the edge, no other area that near) enters or leaves there.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import psycopg

from layers.catalogue import SCHEMA
from services import river as rn
from services.errors import InvalidParameter

AIR_DISTANCE_M = 5_000.0
WATER_DISTANCE_M = 10_000.0
SNAP_MAX_M = 2_000.0
STATION_NEAR_RIVER_M = 500.0
SECTION_WITHIN_M = 3_000.0
MIN_STAY_M = 5_000.0
SAMPLE_M = 100.0
SECTION_KINDS = ("cross-border-section",)
EDGE_M = 50.0  # a river starting or ending this close to the outer edge of the loaded areas crosses it
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def source_gaps(conn: psycopg.Connection, medium: Literal["air", "water"], distance_m: float | None = None, *,
                limit: int = 1000, offset: int = 0, snap_max_m: float = SNAP_MAX_M,
                near_m: float = STATION_NEAR_RIVER_M) -> dict[str, Any]:
    """Risk sources no station of ``medium`` covers, as a GeoJSON FeatureCollection (key order).

    ``numberMatched`` counts every gap; ``limit``/``offset`` page the features.  For water,
    ``not_on_a_river`` counts the sources with no reach within ``snap_max_m``.
    """
    if medium not in ("air", "water"):
        raise InvalidParameter(f"`medium` was {medium!r} but is expected to be 'air' or 'water'")
    distance = distance_m if distance_m is not None else (AIR_DISTANCE_M if medium == "air" else WATER_DISTANCE_M)
    if not (math.isfinite(distance) and 0 < distance <= 200_000):
        raise InvalidParameter(f"`distance_m` was {distance_m!r} but is expected to be between 0 and 200000 metres")
    if medium == "air":
        gaps, extra = _air_gaps(conn, distance), {}
    else:
        gaps, extra = _water_gaps(conn, distance, snap_max_m, near_m)
    page = gaps[offset:offset + limit]
    return {
        "type": "FeatureCollection",
        "name": f"{medium} monitoring gaps",
        "crs": CRS84,
        "medium": medium, "distance_m": distance, **extra,
        "numberMatched": len(gaps), "numberReturned": len(page),
        "features": [{"type": "Feature", "id": g["key"], "geometry": json.loads(g.pop("geometry")), "properties": g}
                     for g in page],
    }


def _air_gaps(conn: psycopg.Connection, distance: float) -> list[dict[str, Any]]:
    """Sources with no air station within ``distance`` m, with the nearest air station and its distance
    (the nearest in metres of the eight nearest in degrees)."""
    rows = conn.execute(
        f"""SELECT DISTINCT ON (s.key) s.key, s.name, s.category, s.city_code, s.county_code, s.risk_level,
                   ST_AsGeoJSON(s.geom, 7) AS geometry, n.key AS nearest_station, n.name AS nearest_station_name,
                   round(n.d::numeric, 1)::float8 AS nearest_station_m
            FROM {SCHEMA}.risk_source s
            LEFT JOIN LATERAL (
                SELECT m.key, m.name, ST_Distance(m.geom::geography, s.geom::geography) AS d
                FROM {SCHEMA}.monitoring_station m WHERE m.medium = 'air'
                ORDER BY m.geom <-> s.geom LIMIT 8) n ON true
            WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.monitoring_station m
                              WHERE m.medium = 'air' AND ST_DWithin(m.geom::geography, s.geom::geography, %(d)s))
            ORDER BY s.key, n.d""", {"d": distance}).fetchall()
    return [dict(r) for r in rows]


def _water_gaps(conn: psycopg.Connection, distance: float, snap_max_m: float,
                near_m: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Sources on a river with no water station within ``distance`` m downstream."""
    conn.execute("DROP TABLE IF EXISTS bulk_point")
    conn.execute(f"""CREATE TEMP TABLE bulk_point ON COMMIT DROP AS
                     SELECT id AS pid, geom FROM {SCHEMA}.risk_source""")
    conn.execute("ALTER TABLE bulk_point ADD PRIMARY KEY (pid)")
    conn.execute("ANALYZE bulk_point")
    total = conn.execute("SELECT count(*) AS n FROM bulk_point").fetchone()["n"]
    snapped = rn.snap_points(conn, snap_max_m)
    covered: dict[int, list[dict[str, Any]]] = {}
    if snapped:
        u = rn.min_velocity(conn) or 0.1
        rn.downstream_closure(conn, distance / u, origins=rn.snapped_reaches(conn))
        covered = rn.features_downstream(conn, "monitoring_station", near_m, distance, where={"medium": ["water"]})
    conn.execute("CREATE TEMP TABLE covered_pid (pid bigint PRIMARY KEY) ON COMMIT DROP")
    with conn.cursor().copy("COPY covered_pid FROM STDIN") as copy:
        for pid in covered:
            copy.write_row((pid,))
    rows = conn.execute(
        f"""SELECT s.key, s.name, s.category, s.city_code, s.county_code, s.risk_level,
                   ST_AsGeoJSON(s.geom, 7) AS geometry, r.key AS reach_key, r.name AS river,
                   round(p.distance_m::numeric, 1)::float8 AS reach_distance_m
            FROM point_snap p JOIN {SCHEMA}.risk_source s ON s.id = p.pid JOIN {SCHEMA}.river r ON r.id = p.reach_id
            WHERE NOT EXISTS (SELECT 1 FROM covered_pid c WHERE c.pid = p.pid)
            ORDER BY s.key""").fetchall()
    return [dict(r) for r in rows], {"sources": total, "on_a_river": snapped, "not_on_a_river": total - snapped,
                                     "snap_max_m": snap_max_m, "station_near_river_m": near_m}


def crossing_gaps(conn: psycopg.Connection, level: Literal["city", "province"] = "city", *,
                  within_m: float = SECTION_WITHIN_M, min_stay_m: float = MIN_STAY_M, sample_m: float = SAMPLE_M,
                  kinds: tuple[str, ...] = SECTION_KINDS, gaps_only: bool = True) -> dict[str, Any]:
    """River crossings of ``level`` borders, each with the nearest section station of ``kinds`` and
    whether one lies within ``within_m``; only the uncovered ones with ``gaps_only``."""
    if level not in ("city", "province"):
        raise InvalidParameter(f"`level` was {level!r} but is expected to be 'city' or 'province'")
    for name, value, low, high in (("within_m", within_m, 0, 50_000), ("min_stay_m", min_stay_m, 0, 100_000),
                                   ("sample_m", sample_m, 10, 5_000)):
        if not (math.isfinite(value) and low <= value <= high):
            raise InvalidParameter(f"`{name}` was {value!r} but is expected to be between {low} and {high} metres")
    rows = conn.execute(_CROSSINGS_SQL, {"level": level, "s": sample_m, "stay": min_stay_m, "within": within_m,
                                         "kinds": list(kinds), "eps": 3 * sample_m / 111_000.0,
                                         "edge": EDGE_M}).fetchall()
    features = []
    for r in rows:
        r = dict(r)
        if gaps_only and r["covered"]:
            continue
        geometry = json.loads(r.pop("geometry"))
        features.append({"type": "Feature", "id": f"{level}:{r['reach_key']}:{r['at_m']:.0f}", "geometry": geometry,
                         "properties": {"level": level, **r}})
    return {
        "type": "FeatureCollection", "name": f"{level}-border river crossings" + (" without a section" if gaps_only
                                                                                  else ""),
        "crs": CRS84, "level": level, "within_m": within_m, "min_stay_m": min_stay_m, "sample_m": sample_m,
        "station_kinds": list(kinds), "crossings": len(rows), "uncovered": sum(1 for r in rows if not r["covered"]),
        "numberReturned": len(features), "features": features,
    }


_CROSSINGS_SQL = f"""
WITH RECURSIVE reach AS MATERIALIZED (
    SELECT id, key, name, from_node, to_node, geom, ST_Length(geom::geography) AS len FROM {SCHEMA}.river
), head AS (
    SELECT r.id FROM reach r
    WHERE NOT EXISTS (SELECT 1 FROM reach u WHERE u.to_node = r.from_node AND u.id <> r.id)
), path AS (  -- every path from a headwater downstream; starts: metres from the headwater to each reach
    SELECT h.id AS head, ARRAY[h.id] AS reaches, ARRAY[0::float8] AS starts, r.to_node, r.len AS end_m
    FROM head h JOIN reach r ON r.id = h.id
    UNION ALL
    SELECT p.head, p.reaches || n.id, p.starts || p.end_m, n.to_node, p.end_m + n.len
    FROM path p JOIN reach n ON n.from_node = p.to_node
    WHERE NOT n.id = ANY(p.reaches) AND cardinality(p.reaches) < 5000
), leaf AS MATERIALIZED (  -- paths that end at an outlet
    SELECT row_number() OVER () AS path_id, p.reaches, p.starts FROM path p
    WHERE NOT EXISTS (SELECT 1 FROM reach n WHERE n.from_node = p.to_node AND NOT n.id = ANY(p.reaches))
), sample AS MATERIALIZED (
    SELECT r.id AS reach_id, k, least(k * %(s)s, r.len) AS at_m,
           ST_LineInterpolatePoint(r.geom, least(k * %(s)s / nullif(r.len, 0), 1)) AS geom
    FROM reach r, generate_series(0, ceil(r.len / %(s)s)::int) AS k
), labelled AS MATERIALIZED (
    SELECT s.*, coalesce((SELECT p.code FROM {SCHEMA}.admin_piece p
                          WHERE p.level = %(level)s AND ST_Intersects(p.geom, s.geom) ORDER BY p.code LIMIT 1), '')
                AS code
    FROM sample s
), seq AS MATERIALIZED (
    SELECT l.path_id, u.ord, s.k, l.starts[u.ord] + s.at_m AS pos, s.reach_id, s.at_m, s.code, s.geom
    FROM leaf l CROSS JOIN LATERAL unnest(l.reaches) WITH ORDINALITY AS u(reach_id, ord)
    JOIN labelled s ON s.reach_id = u.reach_id
), islands AS (
    SELECT path_id, code, min(pos) AS first_pos, max(pos) AS last_pos FROM (
        SELECT seq.*, row_number() OVER (PARTITION BY path_id ORDER BY ord, k)
                      - row_number() OVER (PARTITION BY path_id, code ORDER BY ord, k) AS grp
        FROM seq) x
    GROUP BY path_id, code, grp
), kept AS (  -- stays shorter than min_stay between two others are dropped; a path's ends are kept
    SELECT * FROM (
        SELECT i.*, row_number() OVER (PARTITION BY path_id ORDER BY first_pos) AS rn,
               count(*) OVER (PARTITION BY path_id) AS cnt
        FROM islands i) x
    WHERE last_pos - first_pos >= %(stay)s OR rn = 1 OR rn = cnt
), merged AS (
    SELECT path_id, code, min(first_pos) AS first_pos, max(last_pos) AS last_pos FROM (
        SELECT k.*, sum(chg) OVER (PARTITION BY path_id ORDER BY first_pos) AS g FROM (
            SELECT kept.*, CASE WHEN code IS DISTINCT FROM lag(code) OVER (PARTITION BY path_id ORDER BY first_pos)
                                THEN 1 ELSE 0 END AS chg
            FROM kept) k) m
    GROUP BY path_id, code, g
), change AS (
    SELECT * FROM (
        SELECT path_id, lag(code) OVER w AS from_code, code AS to_code, lag(last_pos) OVER w AS prev_last,
               first_pos AS next_first, (lag(last_pos) OVER w + first_pos) / 2 AS mid
        FROM merged WINDOW w AS (PARTITION BY path_id ORDER BY first_pos)) c
    WHERE from_code IS NOT NULL
), raw AS (  -- consecutive samples of a path in different areas
    SELECT * FROM (
        SELECT seq.*, lag(code) OVER (PARTITION BY path_id ORDER BY ord, k) AS prev_code FROM seq) x
    WHERE code IS DISTINCT FROM prev_code AND prev_code IS NOT NULL
), located AS (  -- at the raw change between the two areas nearest the middle, else at the middle
    SELECT DISTINCT ON (c.path_id, c.mid) c.from_code, c.to_code, q.reach_id, q.at_m, q.geom
    FROM change c JOIN seq q ON q.path_id = c.path_id
    LEFT JOIN raw w ON w.path_id = q.path_id AND w.ord = q.ord AND w.k = q.k AND w.prev_code = c.from_code
                       AND w.code = c.to_code AND w.pos BETWEEN c.prev_last AND c.next_first
    ORDER BY c.path_id, c.mid, w.path_id IS NULL, abs(q.pos - c.mid)
), ends AS (
    SELECT * FROM (
        SELECT seq.*, row_number() OVER (PARTITION BY path_id ORDER BY ord, k) AS r_first,
               row_number() OVER (PARTITION BY path_id ORDER BY ord DESC, k DESC) AS r_last
        FROM seq) x
    WHERE r_first = 1 OR r_last = 1
), edge AS (  -- a path that starts or ends on the outer edge of the loaded areas enters or leaves them
    SELECT CASE WHEN e.r_first = 1 THEN '' ELSE e.code END AS from_code,
           CASE WHEN e.r_first = 1 THEN e.code ELSE '' END AS to_code, e.reach_id, e.at_m, e.geom
    FROM ends e
    JOIN {SCHEMA}.admin_area a ON a.code = e.code AND a.level = %(level)s
    WHERE ST_DWithin(ST_Boundary(a.geom)::geography, e.geom::geography, %(edge)s)
      AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.admin_area o WHERE o.level = %(level)s AND o.code <> e.code
                      AND ST_DWithin(o.geom::geography, e.geom::geography, %(edge)s))
), clustered AS (
    SELECT l.*, ST_ClusterDBSCAN(l.geom, eps := %(eps)s, minpoints := 1)
                  OVER (PARTITION BY l.from_code, l.to_code) AS cid
    FROM (SELECT * FROM located UNION ALL SELECT * FROM edge) l
), crossing AS (
    SELECT DISTINCT ON (from_code, to_code, cid) * FROM clustered ORDER BY from_code, to_code, cid, reach_id, at_m
)
SELECT nullif(c.from_code, '') AS from_code, fa.name AS from_name, nullif(c.to_code, '') AS to_code,
       ta.name AS to_name, r.key AS reach_key, r.name AS river, round(c.at_m::numeric, 1)::float8 AS at_m,
       ST_AsGeoJSON(c.geom, 7) AS geometry, n.key AS station_key, n.name AS station_name,
       round(n.d::numeric, 1)::float8 AS station_m,
       EXISTS (SELECT 1 FROM {SCHEMA}.monitoring_station m WHERE m.kind = ANY(%(kinds)s)
               AND ST_DWithin(m.geom::geography, c.geom::geography, %(within)s)) AS covered
FROM crossing c JOIN reach r ON r.id = c.reach_id
LEFT JOIN {SCHEMA}.admin_area fa ON fa.code = c.from_code
LEFT JOIN {SCHEMA}.admin_area ta ON ta.code = c.to_code
LEFT JOIN LATERAL (
    SELECT m.key, m.name, ST_Distance(m.geom::geography, c.geom::geography) AS d
    FROM {SCHEMA}.monitoring_station m WHERE m.kind = ANY(%(kinds)s)
    ORDER BY m.geom <-> c.geom LIMIT 1) n ON true
ORDER BY r.key, c.at_m
"""
