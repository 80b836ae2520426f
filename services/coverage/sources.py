"""Risk sources with no station of the right medium nearby: air by distance, water downstream on the river."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import psycopg
from psycopg import sql

from gis.crs import CRS84 as CRS84_SPEC
from layers.catalogue import SCHEMA_SQL
from services import river as rn
from services.errors import InvalidParameter

AIR_DISTANCE_M = 5_000.0
WATER_DISTANCE_M = 10_000.0
SNAP_MAX_M = 2_000.0
STATION_NEAR_RIVER_M = 500.0
CRS84 = CRS84_SPEC.uri


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
        sql.SQL("""SELECT DISTINCT ON (s.key) s.key, s.name, s.category, s.city_code, s.county_code, s.risk_level,
                   ST_AsGeoJSON(s.geom, 7) AS geometry, n.key AS nearest_station, n.name AS nearest_station_name,
                   round(n.d::numeric, 1)::float8 AS nearest_station_m
            FROM {schema}.risk_source s
            LEFT JOIN LATERAL (
                SELECT m.key, m.name, ST_Distance(m.geom::geography, s.geom::geography) AS d
                FROM {schema}.monitoring_station m WHERE m.medium = 'air'
                ORDER BY m.geom <-> s.geom LIMIT 8) n ON true
            WHERE NOT EXISTS (SELECT 1 FROM {schema}.monitoring_station m
                              WHERE m.medium = 'air' AND ST_DWithin(m.geom::geography, s.geom::geography, %(d)s))
            ORDER BY s.key, n.d""").format(schema=SCHEMA_SQL), {"d": distance}).fetchall()
    return [dict(r) for r in rows]


def _water_gaps(conn: psycopg.Connection, distance: float, snap_max_m: float,
                near_m: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Sources on a river with no water station within ``distance`` m downstream."""
    conn.execute("DROP TABLE IF EXISTS bulk_point")
    conn.execute(sql.SQL("""CREATE TEMP TABLE bulk_point ON COMMIT DROP AS
                     SELECT id AS pid, geom FROM {schema}.risk_source""").format(schema=SCHEMA_SQL))
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
        sql.SQL("""SELECT s.key, s.name, s.category, s.city_code, s.county_code, s.risk_level,
                   ST_AsGeoJSON(s.geom, 7) AS geometry, r.key AS reach_key, r.name AS river,
                   round(p.distance_m::numeric, 1)::float8 AS reach_distance_m
            FROM point_snap p JOIN {schema}.risk_source s ON s.id = p.pid JOIN {schema}.river r ON r.id = p.reach_id
            WHERE NOT EXISTS (SELECT 1 FROM covered_pid c WHERE c.pid = p.pid)
            ORDER BY s.key""").format(schema=SCHEMA_SQL)).fetchall()
    return [dict(r) for r in rows], {"sources": total, "on_a_river": snapped, "not_on_a_river": total - snapped,
                                     "snap_max_m": snap_max_m, "station_near_river_m": near_m}
