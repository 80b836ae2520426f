"""A slower reference for what a downstream walk meets, for the tests to check the product's queries.

Whole ``admin_area`` polygons instead of the subdivided ``admin_piece`` (against
:func:`services.river.jurisdictions_entered` and the set-based grading facts), and features within a
distance of the path, polygons included (against the set-based receptors of the grading).  The
product does not call these; they live here so that a test compares two different computations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg

from layers.catalogue import SCHEMA
from services.river import Met, Step


def _steps_json(steps: list[Step]) -> str:
    """The walk as JSON rows (index, distances, times, GeoJSON) for :data:`_PARTS_CTE`."""
    return json.dumps([{"i": i, "reach_id": s.reach_id, "start_m": s.start_m, "end_m": s.end_m,
                        "t_start_s": s.t_start_s, "t_end_s": s.t_end_s, "g": json.dumps(s.geojson)}
                       for i, s in enumerate(steps)])


#: The walk's steps as rows with geometry, bound from ``%(steps)s`` = :func:`_steps_json`.
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
