"""What one walked path meets: jurisdictions and polygons entered, point features passed, in order of arrival.

Polygons are answered with the geometry index (the subdivided ``admin_piece`` for jurisdictions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from layers.catalogue import SCHEMA
from services.river.walk import Step


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

    Computed against the subdivided ``admin_piece`` polygons (small pieces: the GiST index and ST_Intersection stay cheap) instead of
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


def points_along(conn: psycopg.Connection, steps: list[Step], table: str, within_m: float,
                 columns: tuple[str, ...] = ("name",)) -> list[Met]:
    """Point features of a catalogue layer within ``within_m`` of the walked path, in order of arrival.

    Each point is located at its closest point on the nearest step (ties: the earliest), so a point
    lying exactly on the path is located where it lies, not at the start of its step.
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
