"""The river network: snap a point to its reach, walk downstream, and say what the walk meets.

The graph lives in PostGIS: each ``river`` reach is digitised in flow direction and joined to the
next by ``from_node``/``to_node`` (derived from its end points at load).  The walk is a recursive
CTE, so no graph is held in Python and a new load is seen at once.  Reach velocity, width, depth
and slope fall back to the documented defaults of their river class (``gis.river_transport``)
where the reach does not carry them.  Lengths are geodesic metres.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg

from gis.crs import LOCAL_METRIC_PROJ
from gis.river_transport import RIVER_CLASSES
from layers.catalogue import SCHEMA

DEFAULT_SNAP_M = 2_000.0
METRIC_PROJ = LOCAL_METRIC_PROJ


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
    # Candidates by the index, then the nearest point found in the local transverse Mercator, where
    # "nearest" means metres (in lon/lat degrees it can lie hundreds of metres along the river).
    row = conn.execute(
        f"""WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g),
            c AS (SELECT r.id, r.key, r.name, ST_Transform(r.geom, %(proj)s) AS mg,
                         ST_Transform(p.g, %(proj)s) AS mp, p.g
                  FROM p, LATERAL (SELECT * FROM {SCHEMA}.river ORDER BY geom <-> p.g LIMIT 8) r),
            n AS (SELECT id, key, name, ST_LineLocatePoint(mg, mp) AS fraction,
                         ST_Transform(ST_ClosestPoint(mg, mp), %(proj)s, 4326) AS at, g FROM c)
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


def _steps_json(steps: list[Step]) -> str:
    """The walk as JSON rows (index, distances, times, GeoJSON) for :data:`_PARTS_CTE`."""
    return json.dumps([{"i": i, "reach_id": s.reach_id, "start_m": s.start_m, "end_m": s.end_m,
                        "t_start_s": s.t_start_s, "t_end_s": s.t_end_s, "g": json.dumps(s.geojson)}
                       for i, s in enumerate(steps)])


#: The walk's steps as rows with geometry: ``parts`` (i, reach_id, start_m, end_m, t_start_s, t_end_s,
#: geom); bound from ``%(steps)s`` = :func:`_steps_json`.
_PARTS_CTE = """s AS (
              SELECT * FROM jsonb_to_recordset(%(steps)s::jsonb) AS x(i int, reach_id bigint, start_m float8,
                     end_m float8, t_start_s float8, t_end_s float8, g text)
            ), parts AS (
              SELECT s.*, ST_SetSRID(ST_GeomFromGeoJSON(s.g), 4326) AS geom FROM s
            )"""


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
        f"""WITH {_PARTS_CTE}, hits AS (
              SELECT a.code, a.name, p.start_m, p.end_m, p.t_start_s, p.t_end_s,
                     (ST_Dump(ST_CollectionExtract(ST_Intersection(p.geom, a.geom), 2))).geom AS piece, p.geom
              FROM parts p JOIN {SCHEMA}.admin_area a ON a.level = %(level)s AND ST_Intersects(a.geom, p.geom)
            ), located AS (
              SELECT code, name,
                     start_m + ST_LineLocatePoint(geom, ST_StartPoint(piece)) * (end_m - start_m) AS at_m,
                     t_start_s + ST_LineLocatePoint(geom, ST_StartPoint(piece)) * (t_end_s - t_start_s) AS at_s
              FROM hits
            )
            SELECT code, name, min(at_m) AS entry_m, min(at_s) AS entry_s FROM located
            GROUP BY code, name ORDER BY entry_s, code""",
        {"steps": _steps_json(steps), "level": level}).fetchall()
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
        f"""WITH {_PARTS_CTE}, near AS (
              SELECT DISTINCT ON (f.key) f.key, p.reach_id, {cols},
                     ST_Distance(f.geom::geography, p.geom::geography) AS d,
                     ST_LineLocatePoint(p.geom, CASE WHEN ST_Dimension(f.geom) = 2 AND ST_Intersects(f.geom, p.geom)
                         THEN ST_StartPoint(ST_GeometryN(ST_CollectionExtract(ST_Intersection(p.geom, f.geom), 2), 1))
                         ELSE ST_ClosestPoint(p.geom, f.geom) END) AS frac,
                     p.start_m, p.end_m, p.t_start_s, p.t_end_s
              FROM parts p JOIN {SCHEMA}.{table} f
                ON ST_DWithin(f.geom::geography, p.geom::geography, %(within)s)
              ORDER BY f.key, p.t_start_s
            )
            SELECT *, start_m + coalesce(frac, 0) * (end_m - start_m) AS at_m,
                   t_start_s + coalesce(frac, 0) * (t_end_s - t_start_s) AS at_s
            FROM near ORDER BY at_s, key""",
        {"steps": _steps_json(steps), "within": within_m}).fetchall()
    out = []
    for r in rows:
        r = dict(r)
        props = {c: r.get(c) for c in columns}
        out.append(Met(table, r["key"], r.get("name"), float(r["d"]), float(r["at_m"]), float(r["at_s"]),
                       int(r["reach_id"]), props))
    return out


# -------------------------------------------------------------------------------------------------
# Added for the emergency services (issue 6): entries into polygons answered with the geometry index
# (the subdivided ``admin_piece`` for jurisdictions), and the graph around a walk.


@dataclass(frozen=True)
class Entry:
    """Where a walk first enters a polygon feature: the step (index into the steps), metres, seconds.

    ``key`` is the admin code for jurisdictions, the feature key otherwise; ``properties`` holds the
    requested columns (for jurisdictions: level, name_en, parent_code).
    """

    layer: str
    key: str
    name: str | None
    step: int
    entry_m: float
    entry_s: float
    properties: dict[str, Any]


def _first_entries_sql(polygons: str, on: str, key: str) -> str:
    """Where the walk first enters each polygon of ``polygons`` joined ``on`` the step ``p``.

    Returns rows (key, i, entry_m, entry_s).  Arguments come from this module only.
    """
    return f"""WITH {_PARTS_CTE}, hits AS (
              SELECT a.{key} AS key, p.i, p.start_m, p.end_m, p.t_start_s, p.t_end_s, p.geom,
                     (ST_Dump(ST_CollectionExtract(ST_Intersection(p.geom, a.geom), 2))).geom AS piece
              FROM parts p JOIN {polygons} a ON {on}
            ), located AS (
              SELECT key, i, ST_LineLocatePoint(geom, ST_StartPoint(piece)) AS frac,
                     start_m, end_m, t_start_s, t_end_s
              FROM hits
            )
            SELECT DISTINCT ON (key) key, i, start_m + frac * (end_m - start_m) AS entry_m,
                   t_start_s + frac * (t_end_s - t_start_s) AS entry_s
            FROM located ORDER BY key, t_start_s + frac * (t_end_s - t_start_s)"""


def jurisdictions_entered(conn: psycopg.Connection, steps: list[Step],
                          levels: tuple[str, ...] = ("province", "city", "county")) -> list[Entry]:
    """Jurisdictions of the given levels the walk passes, in order of entry, from one query.

    The same answer as :func:`jurisdictions_along` for each level, computed against the subdivided
    ``admin_piece`` polygons (small pieces: the GiST index and ST_Intersection stay cheap) instead of
    whole provinces of tens of thousands of vertices; about ten times faster on the demo region.
    """
    bad = [lv for lv in levels if lv not in ("city", "county", "province")]
    if bad:
        raise ValueError(f"levels were {bad!r} but are expected to be among ['city', 'county', 'province']")
    if not steps:
        return []
    first = _first_entries_sql(f"{SCHEMA}.admin_piece", "a.level = ANY(%(levels)s) AND ST_Intersects(a.geom, p.geom)",
                               "code")
    rows = conn.execute(
        f"""WITH f AS ({first})
            SELECT f.*, a.name, a.name_en, a.level, a.parent_code
            FROM f JOIN {SCHEMA}.admin_area a ON a.code = f.key
            ORDER BY f.entry_s, f.key""",
        {"steps": _steps_json(steps), "levels": list(levels)}).fetchall()
    return [Entry("admin_area", r["key"], r["name"], int(r["i"]), float(r["entry_m"]), float(r["entry_s"]),
                  {"level": r["level"], "name_en": r["name_en"], "parent_code": r["parent_code"]})
            for r in rows]


def areas_entered(conn: psycopg.Connection, steps: list[Step], table: str,
                  columns: tuple[str, ...] = ("name",)) -> list[Entry]:
    """Polygons of a catalogue layer the walked path crosses, in order of first entry.

    ``table`` and ``columns`` must come from the layer catalogue (they are interpolated).  Uses
    ST_Intersects on the geometry, so the layer's GiST index answers; a polygon the path only touches
    at a point is not counted.
    """
    if not steps:
        return []
    cols = ", ".join(f"f.{c}" for c in columns)
    first = _first_entries_sql(f"{SCHEMA}.{table}", "ST_Intersects(a.geom, p.geom)", "key")
    rows = conn.execute(
        f"""WITH e AS ({first})
            SELECT e.*, {cols} FROM e JOIN {SCHEMA}.{table} f ON f.key = e.key
            ORDER BY e.entry_s, e.key""",
        {"steps": _steps_json(steps)}).fetchall()
    return [Entry(table, r["key"], r.get("name"), int(r["i"]), float(r["entry_m"]), float(r["entry_s"]),
                  {c: r.get(c) for c in columns})
            for r in rows]


@dataclass(frozen=True)
class ReachRecord:
    """A reach's nodes and its hydraulic attributes as stored (None where the class default applies)."""

    reach_id: int
    from_node: int | None
    to_node: int | None
    velocity_ms: float | None
    width_m: float | None
    depth_m: float | None
    slope: float | None
    flow_m3s: float | None


def reach_records(conn: psycopg.Connection, reach_ids: list[int]) -> dict[int, ReachRecord]:
    """Nodes and stored attributes of the given reaches, by id (to find branches and stated defaults)."""
    if not reach_ids:
        return {}
    rows = conn.execute(
        f"""SELECT id AS reach_id, from_node, to_node, velocity_ms, width_m, depth_m, slope, flow_m3s
            FROM {SCHEMA}.river WHERE id = ANY(%s)""", (list(reach_ids),)).fetchall()
    return {int(r["reach_id"]): ReachRecord(**dict(r)) for r in rows}


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
    defaults, params = _defaults_sql()
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


# -------------------------------------------------------------------------------------------------
# Added for risk grading and monitoring coverage (issue 7): many points at once, on top of
# :func:`downstream_closure`.  The caller fills a temporary table of points, snaps them in one
# statement, builds the closure from their reaches, then asks which features lie on the first
# ``window_m`` metres downstream of each point, or which jurisdictions the river enters within
# ``window_s`` seconds.  A feature or jurisdiction counts when the part of a reach near it (within
# ``within_m``, or inside it) overlaps the point's window; along branches the quickest path decides,
# as in :func:`features_along`.  Positions along a reach are its geodesic length times the fraction
# located on it, as everywhere in this module.


def min_velocity(conn: psycopg.Connection) -> float | None:
    """The slowest reach velocity of the network (m/s; class defaults where a reach has none)."""
    defaults, params = _defaults_sql()
    row = conn.execute(
        f"""SELECT min(coalesce(r.velocity_ms, d.u)) AS u FROM {SCHEMA}.river r
            JOIN {defaults} ON d.river_class = r.river_class
            WHERE coalesce(r.velocity_ms, d.u) > 0""", params).fetchone()
    return None if row is None or row["u"] is None else float(row["u"])


def snap_points(conn: psycopg.Connection, max_distance_m: float, *, points: str = "bulk_point",
                table: str = "point_snap") -> int:
    """Snap every point of the temporary table ``points`` (pid bigint, geom Point 4326) to its nearest
    reach within ``max_distance_m`` (geodesic), as :func:`snap` does one point.

    Fills the temporary table ``table`` (dropped at commit): pid, reach_id, distance_m, position_m
    (metres from the reach's start) and position_s (seconds from it).  Points with no reach that near
    get no row.  The candidates come from the reach GiST index through a degree box wide enough for
    ``max_distance_m`` at the point's latitude.  Returns the number of points snapped.
    """
    defaults, params = _defaults_sql()
    conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    # the reaches once in the local transverse Mercator: positions along them are found in metres,
    # exactly as snap() finds them for one point
    conn.execute("DROP TABLE IF EXISTS river_metric")
    conn.execute(f"""CREATE TEMP TABLE river_metric ON COMMIT DROP AS
                     SELECT id, ST_Transform(geom, %(proj)s) AS mgeom FROM {SCHEMA}.river""",
                 {"proj": METRIC_PROJ})
    conn.execute("ALTER TABLE river_metric ADD PRIMARY KEY (id)")
    conn.execute(f"""
    CREATE TEMP TABLE "{table}" ON COMMIT DROP AS
    SELECT p.pid, c.id AS reach_id, c.distance_m, c.fraction * c.length_m AS position_m,
           c.fraction * c.length_m / nullif(c.u, 0) AS position_s
    FROM "{points}" p
    CROSS JOIN LATERAL (
        SELECT r.id, ST_LineLocatePoint(m.mgeom, ST_Transform(p.geom, %(proj)s)) AS fraction,
               ST_Distance(r.geom::geography, p.geom::geography) AS distance_m,
               ST_Length(r.geom::geography) AS length_m, coalesce(r.velocity_ms, d.u) AS u
        FROM {SCHEMA}.river r JOIN {defaults} ON d.river_class = r.river_class
        JOIN river_metric m ON m.id = r.id
        WHERE ST_DWithin(r.geom, p.geom,
                         1.01 * %(max)s / (110574.0 * cos(radians(least(abs(ST_Y(p.geom)), 85.0)))))
        ORDER BY ST_Distance(r.geom::geography, p.geom::geography), r.id
        LIMIT 1) c
    WHERE c.distance_m <= %(max)s""", {"max": max_distance_m, "proj": METRIC_PROJ, **params})
    conn.execute(f'ALTER TABLE "{table}" ADD PRIMARY KEY (pid)')
    conn.execute(f'ANALYZE "{table}"')
    return int(conn.execute(f'SELECT count(*) AS n FROM "{table}"').fetchone()["n"])


def snapped_reaches(conn: psycopg.Connection, table: str = "point_snap") -> list[int]:
    """The distinct reaches points were snapped to (the origins of the closure to build)."""
    return [int(r["reach_id"]) for r in conn.execute(f'SELECT DISTINCT reach_id FROM "{table}"').fetchall()]


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


def points_along(conn: psycopg.Connection, steps: list[Step], table: str, within_m: float,
                 columns: tuple[str, ...] = ("name",)) -> list[Met]:
    """Point features of a catalogue layer within ``within_m`` of the walked path, in order of arrival.

    Each point is located at its closest point on the nearest step (ties: the earliest).  Unlike
    :func:`features_along`, a point lying exactly on the path is located where it lies, not at the
    start of its step (there the intersection is a point, which that function's line extraction drops).
    ``table`` and ``columns`` must come from the layer catalogue (they are interpolated).
    """
    if not steps:
        return []
    cols = ", ".join(f"f.{c}" for c in columns)
    rows = conn.execute(
        f"""WITH {_PARTS_CTE}, near AS (
              SELECT DISTINCT ON (f.key) f.key, p.reach_id, {cols},
                     ST_Distance(f.geom::geography, p.geom::geography) AS d,
                     ST_LineLocatePoint(p.geom, f.geom) AS frac, p.start_m, p.end_m, p.t_start_s, p.t_end_s
              FROM parts p JOIN {SCHEMA}.{table} f ON ST_DWithin(f.geom::geography, p.geom::geography, %(within)s)
              ORDER BY f.key, ST_Distance(f.geom::geography, p.geom::geography), p.t_start_s
            )
            SELECT *, start_m + frac * (end_m - start_m) AS at_m, t_start_s + frac * (t_end_s - t_start_s) AS at_s
            FROM near ORDER BY at_s, key""",
        {"steps": _steps_json(steps), "within": within_m}).fetchall()
    return [Met(table, r["key"], r.get("name"), float(r["d"]), float(r["at_m"]), float(r["at_s"]), int(r["reach_id"]),
                {c: r.get(c) for c in columns}) for r in rows]
