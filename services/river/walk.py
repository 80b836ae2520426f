"""Walking the network downstream: one walk from a snapped point, or the closure of many origin reaches.

The graph lives in PostGIS: each ``river`` reach is digitised in flow direction and joined to the
next by ``from_node``/``to_node`` (derived from its end points at load).  The walk is a recursive
CTE, so no graph is held in Python and a new load is seen at once.  Lengths are geodesic metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from layers.catalogue import SCHEMA
from services.river.reaches import defaults_sql
from services.river.snap import Snap


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


def downstream(conn: psycopg.Connection, start: Snap, horizon_s: float = 72 * 3600.0,
               max_reaches: int = 5_000) -> list[Step]:
    """Reaches met walking downstream from ``start`` until ``horizon_s``, in order of arrival.

    Where the network branches downstream, every branch is walked.  The first reach counts only
    the part below the snapped point; each step's geometry is the part of the reach walked.
    """
    defaults, params = defaults_sql()
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


def downstream_closure(conn: psycopg.Connection, horizon_s: float, *, origins: list[int] | None = None,
                       table: str = "reach_closure", max_reaches: int = 5_000) -> int:
    """Fill the temporary table ``table`` with every reach met walking downstream from each origin reach.

    The set-based form of :func:`downstream` for many release points at once: one recursive CTE walks
    the graph from every origin (all reaches, or the ids in ``origins``), and each row says how far
    (``offset_m``, geodesic metres) and how long (``offset_s``) it is from the START of ``origin_id`` to
    the start of ``reach_id``, by the quickest path where branches rejoin.  The origin itself is a row
    with offset 0.  A point at ``p`` metres along its origin reach is ``offset_m - p`` metres and
    ``offset_s - p / u_origin`` seconds from the start of each reach; the walk therefore goes on while a
    reach starts within ``horizon_s`` of the END of the origin, so every reach within the horizon of any
    point of the origin is present.  Each row also carries the reach's velocity (class default where the
    reach has none) and length.  ``table`` is an identifier chosen by the caller, not by a client; the
    table is dropped at commit.  Returns the number of rows.
    """
    defaults, params = defaults_sql()
    conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    conn.execute(f"""
    CREATE TEMP TABLE "{table}" ON COMMIT DROP AS
    WITH RECURSIVE reach AS MATERIALIZED (
        SELECT r.id, r.from_node, r.to_node, coalesce(r.velocity_ms, d.u) AS u,
               ST_Length(r.geom::geography) AS length_m
        FROM {SCHEMA}.river r JOIN {defaults} ON d.river_class = r.river_class
    ), walk AS (
        SELECT r.id AS origin_id, r.id AS reach_id, r.to_node, 0::float8 AS offset_m, 0::float8 AS offset_s,
               r.length_m AS end_m, r.length_m / nullif(r.u, 0) AS end_s,
               r.length_m / nullif(r.u, 0) AS origin_s, ARRAY[r.id] AS path
        FROM reach r
        WHERE %(origins)s::bigint[] IS NULL OR r.id = ANY(%(origins)s::bigint[])
        UNION ALL
        SELECT w.origin_id, n.id, n.to_node, w.end_m, w.end_s, w.end_m + n.length_m,
               w.end_s + n.length_m / nullif(n.u, 0), w.origin_s, w.path || n.id
        FROM walk w JOIN reach n ON n.from_node = w.to_node
        WHERE w.end_s - w.origin_s < %(horizon)s AND NOT n.id = ANY(w.path)
          AND cardinality(w.path) < %(max)s
    )
    SELECT DISTINCT ON (w.origin_id, w.reach_id) w.origin_id, w.reach_id, w.offset_m, w.offset_s,
           r.u AS velocity_ms, r.length_m
    FROM walk w JOIN reach r ON r.id = w.reach_id
    WHERE w.offset_s IS NOT NULL
    ORDER BY w.origin_id, w.reach_id, w.offset_s""",
                 {"origins": origins, "horizon": horizon_s, "max": max_reaches, **params})
    conn.execute(f'CREATE INDEX ON "{table}" (origin_id)')
    conn.execute(f'ANALYZE "{table}"')
    return int(conn.execute(f'SELECT count(*) AS n FROM "{table}"').fetchone()["n"])
