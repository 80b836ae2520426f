"""The river network: snap a point to its reach, walk downstream, and say what the walk meets.

The graph lives in PostGIS: each ``river`` reach is digitised in flow direction and joined to the
next by ``from_node``/``to_node`` (derived from its end points at load).  The walk is a recursive
CTE, so no graph is held in Python and a new load is seen at once.  Reach velocity, width, depth
and slope fall back to the documented defaults of their river class (``gis.river_transport``)
where the reach does not carry them.  Lengths are geodesic metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from gis.river_transport import RIVER_CLASSES
from layers.catalogue import SCHEMA

DEFAULT_SNAP_M = 2_000.0


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


@dataclass
class Step:
    """One reach of a downstream walk, with distance (m) and time (s) from the release point."""

    reach_id: int
    key: str
    name: str
    river_class: str
    start_m: float
    end_m: float
    t_start_s: float
    t_end_s: float
    velocity_ms: float
    width_m: float
    depth_m: float
    slope: float
    flow_m3s: float | None
    geojson: dict[str, Any] = field(repr=False, default_factory=dict)


def _defaults_sql() -> tuple[str, dict[str, Any]]:
    """The class defaults as an inline VALUES table with named parameters."""
    rows, params = [], {}
    for i, (name, p) in enumerate(RIVER_CLASSES.items()):
        rows.append(f"(%(c{i})s, %(u{i})s::float8, %(w{i})s::float8, %(h{i})s::float8, %(s{i})s::float8)")
        params.update({f"c{i}": name, f"u{i}": p.u, f"w{i}": p.width, f"h{i}": p.depth, f"s{i}": p.slope})
    return f"(VALUES {', '.join(rows)}) AS d(river_class, u, width, depth, slope)", params


def snap(conn: psycopg.Connection, lon: float, lat: float, max_distance_m: float = DEFAULT_SNAP_M) -> Snap:
    """The nearest reach to (lon, lat) in WGS84; ``NoRiverNearby`` beyond ``max_distance_m``."""
    row = conn.execute(
        f"""WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS g)
            SELECT r.id, r.key, r.name, ST_LineLocatePoint(r.geom, p.g) AS fraction,
                   ST_Distance(r.geom::geography, p.g::geography) AS distance_m,
                   ST_X(ST_ClosestPoint(r.geom, p.g)) AS lon, ST_Y(ST_ClosestPoint(r.geom, p.g)) AS lat
            FROM p, LATERAL (SELECT * FROM {SCHEMA}.river ORDER BY geom <-> p.g LIMIT 8) r
            ORDER BY distance_m LIMIT 1""",
        (lon, lat)).fetchone()
    if row is None:
        raise NoRiverNearby("the river layer is empty: load river reaches first")
    row = dict(row)
    if row["distance_m"] > max_distance_m:
        raise NoRiverNearby(f"the nearest river reach ({row['name']}) is {row['distance_m']:.0f} m away, "
                            f"beyond the snapping distance of {max_distance_m:.0f} m")
    return Snap(row["id"], row["key"], row["name"], float(row["fraction"]), float(row["distance_m"]),
                float(row["lon"]), float(row["lat"]))


def downstream(conn: psycopg.Connection, start: Snap, horizon_s: float = 72 * 3600.0,
               max_reaches: int = 5_000) -> list[Step]:
    """Reaches met walking downstream from ``start`` until ``horizon_s``, in order of arrival.

    Where the network branches downstream, every branch is walked.  The first reach counts only
    the part below the snapped point; each step's geometry is the part of the reach walked.
    """
    defaults, params = _defaults_sql()
    sql = f"""
    WITH RECURSIVE reach AS (
        SELECT r.id, r.key, r.name, r.river_class, r.from_node, r.to_node, r.geom, r.flow_m3s,
               coalesce(r.velocity_ms, d.u) AS u, coalesce(r.width_m, d.width) AS width,
               coalesce(r.depth_m, d.depth) AS depth, coalesce(r.slope, d.slope) AS slope,
               ST_Length(r.geom::geography) AS length_m
        FROM {SCHEMA}.river r JOIN {defaults} ON d.river_class = r.river_class
    ), walk AS (
        SELECT r.id, r.to_node, 0::float8 AS start_m, (1 - %(f)s) * r.length_m AS end_m,
               0::float8 AS t0, (1 - %(f)s) * r.length_m / nullif(r.u, 0) AS t1,
               %(f)s::float8 AS from_fraction, ARRAY[r.id] AS path
        FROM reach r WHERE r.id = %(reach)s
        UNION ALL
        SELECT n.id, n.to_node, w.end_m, w.end_m + n.length_m, w.t1, w.t1 + n.length_m / nullif(n.u, 0),
               0::float8, w.path || n.id
        FROM walk w JOIN reach n ON n.from_node = w.to_node
        WHERE w.t1 < %(horizon)s AND NOT n.id = ANY(w.path) AND cardinality(w.path) < %(max)s
    )
    SELECT w.id AS reach_id, r.key, r.name, r.river_class, w.start_m, w.end_m, w.t0 AS t_start_s,
           w.t1 AS t_end_s, r.u AS velocity_ms, r.width AS width_m, r.depth AS depth_m, r.slope,
           r.flow_m3s, ST_AsGeoJSON(ST_LineSubstring(r.geom, w.from_fraction, 1), 6)::json AS geojson
    FROM walk w JOIN reach r ON r.id = w.id
    ORDER BY w.t0, w.id"""
    rows = conn.execute(sql, {"f": start.fraction, "reach": start.reach_id, "horizon": horizon_s,
                              "max": max_reaches, **params}).fetchall()
    return [Step(**dict(r)) for r in rows]


@dataclass(frozen=True)
class Crossing:
    """Where a downstream walk enters a jurisdiction: its code and name, distance and time."""

    code: str
    name: str
    level: str
    entry_m: float
    entry_s: float


def jurisdictions_along(conn: psycopg.Connection, steps: list[Step], level: str = "city") -> list[Crossing]:
    """The jurisdictions (``city``, ``county`` or ``province``) the walk passes, in order of entry."""
    if level not in ("city", "county", "province"):
        raise ValueError(f"level was {level!r} but is expected to be one of ['city', 'county', 'province']")
    if not steps:
        return []
    rows = conn.execute(
        f"""WITH s AS (
              SELECT * FROM jsonb_to_recordset(%s::jsonb)
                AS x(reach_id bigint, start_m float8, end_m float8, t_start_s float8, t_end_s float8, g text)
            ), parts AS (
              SELECT s.*, ST_SetSRID(ST_GeomFromGeoJSON(s.g), 4326) AS geom FROM s
            ), hits AS (
              SELECT a.code, a.name, p.start_m, p.end_m, p.t_start_s, p.t_end_s,
                     (ST_Dump(ST_CollectionExtract(ST_Intersection(p.geom, a.geom), 2))).geom AS piece, p.geom
              FROM parts p JOIN {SCHEMA}.admin_area a ON a.level = %s AND ST_Intersects(a.geom, p.geom)
            ), located AS (
              SELECT code, name,
                     start_m + ST_LineLocatePoint(geom, ST_StartPoint(piece)) * (end_m - start_m) AS at_m,
                     t_start_s + ST_LineLocatePoint(geom, ST_StartPoint(piece)) * (t_end_s - t_start_s) AS at_s
              FROM hits
            )
            SELECT code, name, min(at_m) AS entry_m, min(at_s) AS entry_s FROM located
            GROUP BY code, name ORDER BY entry_s, code""",
        (_steps_json(steps), level)).fetchall()
    return [Crossing(r["code"], r["name"], level, float(r["entry_m"]), float(r["entry_s"])) for r in rows]


@dataclass(frozen=True)
class Met:
    """A feature the walk passes within a distance: where along the path and when."""

    layer: str
    key: str
    name: str | None
    distance_to_path_m: float
    at_m: float
    at_s: float
    reach_id: int
    properties: dict[str, Any]


def features_along(conn: psycopg.Connection, steps: list[Step], table: str, within_m: float,
                   columns: tuple[str, ...] = ("name",)) -> list[Met]:
    """Features of a catalogue layer within ``within_m`` of the walked path, in order of arrival.

    ``table`` and ``columns`` must come from the layer catalogue (they are interpolated).  Points are
    located by their closest point on the path; polygons by the first point where the path meets
    them (or comes closest).
    """
    if not steps:
        return []
    cols = ", ".join(f"f.{c}" for c in columns)
    rows = conn.execute(
        f"""WITH s AS (
              SELECT * FROM jsonb_to_recordset(%s::jsonb)
                AS x(reach_id bigint, start_m float8, end_m float8, t_start_s float8, t_end_s float8, g text)
            ), parts AS (
              SELECT s.*, ST_SetSRID(ST_GeomFromGeoJSON(s.g), 4326) AS geom FROM s
            ), near AS (
              SELECT DISTINCT ON (f.key) f.key, p.reach_id, {cols},
                     ST_Distance(f.geom::geography, p.geom::geography) AS d,
                     ST_LineLocatePoint(p.geom, CASE WHEN ST_Intersects(f.geom, p.geom)
                         THEN ST_StartPoint(ST_GeometryN(ST_CollectionExtract(ST_Intersection(p.geom, f.geom), 2), 1))
                         ELSE ST_ClosestPoint(p.geom, f.geom) END) AS frac,
                     p.start_m, p.end_m, p.t_start_s, p.t_end_s
              FROM parts p JOIN {SCHEMA}.{table} f
                ON ST_DWithin(f.geom::geography, p.geom::geography, %s)
              ORDER BY f.key, p.t_start_s
            )
            SELECT *, start_m + coalesce(frac, 0) * (end_m - start_m) AS at_m,
                   t_start_s + coalesce(frac, 0) * (t_end_s - t_start_s) AS at_s
            FROM near ORDER BY at_s, key""",
        (_steps_json(steps), within_m)).fetchall()
    out = []
    for r in rows:
        r = dict(r)
        props = {c: r.get(c) for c in columns}
        out.append(Met(table, r["key"], r.get("name"), float(r["d"]), float(r["at_m"]), float(r["at_s"]),
                       int(r["reach_id"]), props))
    return out


def _steps_json(steps: list[Step]) -> str:
    import json

    return json.dumps([{"reach_id": s.reach_id, "start_m": s.start_m, "end_m": s.end_m,
                        "t_start_s": s.t_start_s, "t_end_s": s.t_end_s, "g": json.dumps(s.geojson)}
                       for s in steps])
