"""River crossings of city or province borders, derived from the network, and section stations near them."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import psycopg
from psycopg import sql

from gis.crs import CRS84 as CRS84_SPEC
from layers.catalogue import SCHEMA_SQL
from services.errors import InvalidParameter

SECTION_WITHIN_M = 3_000.0
MIN_STAY_M = 5_000.0
SAMPLE_M = 100.0
SECTION_KINDS = ("cross-border-section",)
EDGE_M = 50.0  # a river starting or ending this close to the outer edge of the loaded areas crosses it
CRS84 = CRS84_SPEC.uri


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


_CROSSINGS_SQL = sql.SQL("""
WITH RECURSIVE reach AS MATERIALIZED (
    SELECT id, key, name, from_node, to_node, geom, ST_Length(geom::geography) AS len FROM {schema}.river
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
    SELECT s.*, coalesce((SELECT p.code FROM {schema}.admin_piece p
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
    JOIN {schema}.admin_area a ON a.code = e.code AND a.level = %(level)s
    WHERE ST_DWithin(ST_Boundary(a.geom)::geography, e.geom::geography, %(edge)s)
      AND NOT EXISTS (SELECT 1 FROM {schema}.admin_area o WHERE o.level = %(level)s AND o.code <> e.code
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
       EXISTS (SELECT 1 FROM {schema}.monitoring_station m WHERE m.kind = ANY(%(kinds)s)
               AND ST_DWithin(m.geom::geography, c.geom::geography, %(within)s)) AS covered
FROM crossing c JOIN reach r ON r.id = c.reach_id
LEFT JOIN {schema}.admin_area fa ON fa.code = c.from_code
LEFT JOIN {schema}.admin_area ta ON ta.code = c.to_code
LEFT JOIN LATERAL (
    SELECT m.key, m.name, ST_Distance(m.geom::geography, c.geom::geography) AS d
    FROM {schema}.monitoring_station m WHERE m.kind = ANY(%(kinds)s)
    ORDER BY m.geom <-> c.geom LIMIT 1) n ON true
ORDER BY r.key, c.at_m
""").format(schema=SCHEMA_SQL)
