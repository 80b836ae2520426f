"""What lies downstream of many points at once, over the closure of their reaches.

The caller fills a temporary table of points, snaps them in one statement
(:func:`services.river.snap.snap_points`), builds the closure from their reaches
(:func:`services.river.walk.downstream_closure`), then asks which features lie on the first
``window_m`` metres downstream of each point, or which jurisdictions the river enters within
``window_s`` seconds.  A feature or jurisdiction counts when the part of a reach near it (within
``within_m``, or inside it) overlaps the point's window; along branches the quickest path decides
(the earliest arrival, as one walk reports it).  Positions along a reach are its geodesic length
times the fraction located on it, as everywhere in this package.
"""

from __future__ import annotations

from typing import Any

import psycopg

from layers.catalogue import SCHEMA


def features_downstream(conn: psycopg.Connection, table: str, within_m: float, window_m: float, *,
                        where: dict[str, list[str]] | None = None, columns: tuple[str, ...] = ("name",),
                        snaps: str = "point_snap", closure: str = "reach_closure") -> dict[int, list[dict[str, Any]]]:
    """For every snapped point, the features of ``table`` lying on the first ``window_m`` metres of
    river downstream of it: within ``within_m`` of the river (inside, for a polygon the river crosses).

    Each hit: key, the requested ``columns``, and ``at_m``, the distance downstream where the river
    first comes within ``within_m`` of the feature (0 when it already is at the point).  ``table``,
    ``columns`` and the column names of ``where`` must come from the layer catalogue (interpolated);
    ``where`` values are bound.  The closure must reach ``window_m`` beyond every origin (build it
    with a horizon of at least ``window_m`` / :func:`min_velocity`).
    """
    filters, params = [], {"near": within_m, "window": window_m}
    for i, (column, allowed) in enumerate((where or {}).items()):
        filters.append(f"f.{column} = ANY(%(w{i})s)")
        params[f"w{i}"] = list(allowed)
    cond = " AND ".join(filters) or "true"
    cols = ", ".join(f"f.{c}" for c in columns)
    rows = conn.execute(f"""
    WITH reaches AS (SELECT DISTINCT reach_id FROM "{closure}"),
    near AS MATERIALIZED (
        SELECT r.id AS reach_id, f.key, k.lo, k.hi
        FROM {SCHEMA}.river r JOIN reaches x ON x.reach_id = r.id
        JOIN {SCHEMA}.{table} f ON ST_DWithin(f.geom::geography, r.geom::geography, %(near)s) AND {cond}
        CROSS JOIN LATERAL (
            SELECT coalesce(min(least(ST_LineLocatePoint(r.geom, ST_StartPoint(d.geom)),
                                      ST_LineLocatePoint(r.geom, ST_EndPoint(d.geom)))),
                            ST_LineLocatePoint(r.geom, ST_ClosestPoint(r.geom, f.geom))) AS lo,
                   coalesce(max(greatest(ST_LineLocatePoint(r.geom, ST_StartPoint(d.geom)),
                                         ST_LineLocatePoint(r.geom, ST_EndPoint(d.geom)))),
                            ST_LineLocatePoint(r.geom, ST_ClosestPoint(r.geom, f.geom))) AS hi
            FROM ST_Dump(ST_CollectionExtract(ST_Intersection(
                r.geom, ST_Buffer(f.geom::geography, %(near)s, 'quad_segs=16')::geometry), 2)) d) k
    ), along AS MATERIALIZED (
        SELECT c.origin_id, n.key, c.offset_m + n.lo * c.length_m AS lo_m, c.offset_m + n.hi * c.length_m AS hi_m
        FROM "{closure}" c JOIN near n ON n.reach_id = c.reach_id
    ), hits AS (
        SELECT DISTINCT ON (s.pid, a.key) s.pid, a.key, greatest(a.lo_m - s.position_m, 0) AS at_m
        FROM "{snaps}" s JOIN along a ON a.origin_id = s.reach_id
        WHERE a.hi_m >= s.position_m AND a.lo_m <= s.position_m + %(window)s
        ORDER BY s.pid, a.key, a.lo_m
    )
    SELECT h.pid, h.key, h.at_m, {cols} FROM hits h JOIN {SCHEMA}.{table} f ON f.key = h.key
    ORDER BY h.pid, h.at_m, h.key""", params).fetchall()
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        hit = {"key": r["key"], "at_m": float(r["at_m"]), **{c: r.get(c) for c in columns}}
        out.setdefault(int(r["pid"]), []).append(hit)
    return out


def jurisdictions_downstream(conn: psycopg.Connection, level: str, window_s: float, *, min_count: int = 1,
                             snaps: str = "point_snap", closure: str = "reach_closure"
                             ) -> dict[int, list[dict[str, Any]]]:
    """For every snapped point, the jurisdictions of ``level`` the river passes from the point until
    ``window_s`` seconds downstream, in order of entry (``entry_s``, ``entry_m``; 0 for the one the
    point lies in), answered against the subdivided ``admin_piece`` polygons.

    Only points meeting at least ``min_count`` jurisdictions are returned (2: those whose river
    crosses a border of that level within the window).
    """
    if level not in ("city", "county", "province"):
        raise ValueError(f"level was {level!r} but is expected to be one of ['city', 'county', 'province']")
    rows = conn.execute(f"""
    WITH reaches AS (SELECT DISTINCT reach_id FROM "{closure}"),
    pieces AS MATERIALIZED (
        SELECT r.id AS reach_id, p.code,
               least(ST_LineLocatePoint(r.geom, ST_StartPoint(d.geom)),
                     ST_LineLocatePoint(r.geom, ST_EndPoint(d.geom))) AS lo,
               greatest(ST_LineLocatePoint(r.geom, ST_StartPoint(d.geom)),
                        ST_LineLocatePoint(r.geom, ST_EndPoint(d.geom))) AS hi
        FROM {SCHEMA}.river r JOIN reaches x ON x.reach_id = r.id
        JOIN {SCHEMA}.admin_piece p ON p.level = %(level)s AND ST_Intersects(p.geom, r.geom)
        CROSS JOIN LATERAL ST_Dump(ST_CollectionExtract(ST_Intersection(r.geom, p.geom), 2)) d
    ), along AS MATERIALIZED (
        SELECT c.origin_id, p.code,
               c.offset_m + p.lo * c.length_m AS lo_m, c.offset_m + p.hi * c.length_m AS hi_m,
               c.offset_s + p.lo * c.length_m / nullif(c.velocity_ms, 0) AS lo_s,
               c.offset_s + p.hi * c.length_m / nullif(c.velocity_ms, 0) AS hi_s
        FROM "{closure}" c JOIN pieces p ON p.reach_id = c.reach_id
    ), met AS (
        SELECT s.pid, a.code, min(greatest(a.lo_s - s.position_s, 0)) AS entry_s,
               min(greatest(a.lo_m - s.position_m, 0)) AS entry_m
        FROM "{snaps}" s JOIN along a ON a.origin_id = s.reach_id
        WHERE a.hi_m > s.position_m AND a.lo_s <= s.position_s + %(window)s
        GROUP BY s.pid, a.code
    ), counted AS (
        SELECT met.*, count(*) OVER (PARTITION BY pid) AS n FROM met
    )
    SELECT c.pid, c.code, a.name, c.entry_s, c.entry_m FROM counted c
    JOIN {SCHEMA}.admin_area a ON a.code = c.code
    WHERE c.n >= %(min)s
    ORDER BY c.pid, c.entry_s, c.code""", {"level": level, "window": window_s, "min": min_count}).fetchall()
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(int(r["pid"]), []).append(
            {"code": r["code"], "name": r["name"], "entry_s": float(r["entry_s"]), "entry_m": float(r["entry_m"])})
    return out
