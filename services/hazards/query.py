"""Reading the flags: filters, paging, and the GeoJSON / CSV / GeoPackage renderings.

:func:`build_list` checks a :class:`FlagQuery` and returns the SQL (bound values separate) that both
the API (async pool) and the CLI (psycopg) run; PostGIS writes each feature's GeoJSON text.  Filters:

* ``city`` -- a city or province code, Chinese or English name: flags whose source lies in it or whose
  other jurisdiction is it;
* ``kind``, ``severity``, ``risk_level`` -- one value or several;
* ``level`` -- ``city``: the other jurisdiction is a city (every kind but province-border);
  ``province``: the source's province differs from the other jurisdiction's (the flags summed by the
  province matrix);
* ``cross_border`` -- true leaves out flags about the source's own city's zones and areas.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from layers.catalogue import RISK_LEVELS, SCHEMA
from services.errors import InvalidParameter
from services.hazards.rules import KINDS
from services.query.tabular import geopackage

SEVERITIES = ("low", "medium", "high")
LEVELS = ("city", "province")
FORMATS = ("geojson", "csv", "gpkg")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

#: The columns of a flag as clients see them, in order (SQL expressions over ``f``, ``sa``, ``oa``).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_key", "f.source_key"),
    ("source_name", "f.source_name"),
    ("source_city", "f.source_city"),
    ("source_city_name", "sa.name"),
    ("risk_level", "f.risk_level"),
    ("kind", "f.kind"),
    ("other_code", "f.other_code"),
    ("other_name", "f.other_name"),
    ("other_level", "f.other_level"),
    ("cross_border", "f.cross_border"),
    ("feature_key", "nullif(f.feature_key, '')"),
    ("feature_name", "f.feature_name"),
    ("zone_level", "f.zone_level"),
    ("distance_m", "round(f.distance_m::numeric, 1)"),
    ("threshold_m", "f.threshold_m"),
    ("travel_time_h", "round((f.travel_time_s / 3600)::numeric, 2)"),
    ("severity", "f.severity"),
    ("reason", "f.reason"),
    ("reason_zh", "f.reason_zh"),
    ("detail", "f.detail"),
    ("computed_at", "f.computed_at"),
)

#: Provinces of the source and of the other jurisdiction.
SOURCE_PROVINCE = "sa.parent_code"
OTHER_PROVINCE = "CASE WHEN f.other_level = 'province' THEN f.other_code ELSE oa.parent_code END"
FROM = f"""{SCHEMA}.hazard_flag f
        JOIN {SCHEMA}.admin_area sa ON sa.code = f.source_city
        JOIN {SCHEMA}.admin_area oa ON oa.code = f.other_code"""
ORDER = """array_position(ARRAY['high', 'medium', 'low'], f.severity), f.source_key, f.kind, f.other_code,
        f.feature_key"""

#: The jurisdictions a ``city`` filter may name (code, Chinese name or English name, any case).
JURISDICTION_SQL = f"""SELECT code, name, level FROM {SCHEMA}.admin_area
    WHERE level IN ('city', 'province') AND (code = %(j)s OR name = %(j)s OR lower(name_en) = lower(%(j)s))
    ORDER BY code"""


@dataclass(frozen=True)
class FlagQuery:
    """What a client asks of the flags (values unchecked until :func:`build_list`)."""

    city: str | None = None
    kind: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    risk_level: tuple[str, ...] = ()
    level: str | None = None
    cross_border: bool | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class ListSQL:
    """The statements of one listing: the page (rows of GeoJSON text or columns) and the count."""

    features: str
    rows: str
    count: str
    params: dict[str, Any]


def check(q: FlagQuery, max_limit: int) -> None:
    """400 naming the first parameter that is not allowed."""
    for name, values, allowed in (("kind", q.kind, KINDS), ("severity", q.severity, SEVERITIES),
                                  ("risk_level", q.risk_level, RISK_LEVELS)):
        for v in values:
            if v not in allowed:
                raise InvalidParameter(f"`{name}` was {v!r} but is expected to be one of {list(allowed)}")
    if q.level is not None and q.level not in LEVELS:
        raise InvalidParameter(f"`level` was {q.level!r} but is expected to be one of {list(LEVELS)}")
    if not 1 <= q.limit <= max_limit:
        raise InvalidParameter(f"`limit` was {q.limit} but is expected to be between 1 and {max_limit}")
    if q.offset < 0:
        raise InvalidParameter(f"`offset` was {q.offset} but is expected to be >= 0")


def resolve_city(rows: Sequence[dict[str, Any]], asked: str) -> str:
    """The one code matching a ``city`` filter (rows of :data:`JURISDICTION_SQL`); 400 otherwise."""
    if not rows:
        raise InvalidParameter(f"`city` was {asked!r} but is not a city or province code or name of the region")
    return rows[0]["code"]


def build_list(q: FlagQuery, city_code: str | None) -> ListSQL:
    """The SQL of one page of flags matching ``q`` (``city`` already resolved to ``city_code``)."""
    where, params = _where(q, city_code)
    props = ", ".join(f"'{name}', {expr}" for name, expr in COLUMNS)
    features = f"""
        SELECT '{{"type":"Feature","id":' || f.id || ',"geometry":' || ST_AsGeoJSON(f.geom, 7)
               || ',"properties":' || json_build_object({props})::text || '}}' AS feature
        FROM {FROM}
        WHERE {where}
        ORDER BY {ORDER}
        LIMIT %(limit)s OFFSET %(offset)s"""
    rows = f"""
        SELECT {', '.join(f'{expr} AS {name}' for name, expr in COLUMNS)},
               ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat
        FROM {FROM}
        WHERE {where}
        ORDER BY {ORDER}
        LIMIT %(limit)s OFFSET %(offset)s"""
    count = f"SELECT count(*) AS n FROM {FROM} WHERE {where}"
    return ListSQL(features, rows, count, {**params, "limit": q.limit, "offset": q.offset})


def _where(q: FlagQuery, city_code: str | None) -> tuple[str, dict[str, Any]]:
    """The WHERE conditions of ``q``, clause by clause, with their bound values."""
    clauses, params = ["TRUE"], {}
    if city_code is not None:
        clauses.append(f"(f.source_city = %(city)s OR {SOURCE_PROVINCE} = %(city)s OR f.other_code = %(city)s "
                       f"OR {OTHER_PROVINCE} = %(city)s)")
        params["city"] = city_code
    for name, column in (("kind", "f.kind"), ("severity", "f.severity"), ("risk_level", "f.risk_level")):
        values = getattr(q, name)
        if values:
            clauses.append(f"{column} = ANY(%({name})s::text[])")
            params[name] = list(values)
    if q.level == "city":
        clauses.append("f.other_level = 'city'")
    elif q.level == "province":
        clauses.append(f"{SOURCE_PROVINCE} IS DISTINCT FROM {OTHER_PROVINCE}")
    if q.cross_border is not None:
        clauses.append("f.cross_border = %(cross_border)s")
        params["cross_border"] = q.cross_border
    return " AND ".join(clauses), params


# --------------------------------------------------------------------------------------------------
# renderings


def feature_collection(features: Sequence[str], *, matched: int, q: FlagQuery) -> str:
    """A GeoJSON FeatureCollection (CRS84) around features PostGIS wrote; paging facts in the head."""
    head: dict[str, Any] = {"type": "FeatureCollection", "numberMatched": matched,
                            "numberReturned": len(features), "crs": CRS84, "limit": q.limit, "offset": q.offset}
    if q.offset + len(features) < matched:
        head["next_offset"] = q.offset + len(features)
    return "{" + json.dumps(head, ensure_ascii=False)[1:-1] + ',"features":[' + ",".join(features) + "]}"


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV (UTF-8 with a byte-order mark and a header; ``detail`` as JSON text; lon/lat in CRS84)."""
    buf = io.StringIO()
    buf.write("\ufeff")  # spreadsheet programs read the Chinese names as UTF-8 only with it
    names = [name for name, _ in COLUMNS] + ["lon", "lat"]
    w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)
                    for k, v in r.items()})
    return buf.getvalue()


def to_gpkg(rows: Sequence[dict[str, Any]], layer: str = "hazard_flag") -> bytes:
    """The rows as a GeoPackage (EPSG:4326 points), written by pyogrio to a temporary file."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    frame = pd.DataFrame([{k: v for k, v in r.items() if k not in ("lon", "lat")} for r in rows],
                         columns=[name for name, _ in COLUMNS])
    frame["detail"] = frame["detail"].map(lambda v: json.dumps(v, ensure_ascii=False) if v is not None else None)
    for col in ("distance_m", "threshold_m", "travel_time_h"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame["computed_at"] = frame["computed_at"].astype(str)
    geometry = shapely.points([r["lon"] for r in rows], [r["lat"] for r in rows]) if rows else []
    return geopackage(gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326"), layer)


# --------------------------------------------------------------------------------------------------
# running it with psycopg (CLI, notebooks); the API runs the same SQL on its async pool


def city_code(conn: Any, asked: str | None) -> str | None:
    """Resolve a ``city`` filter to its code (400 if unknown); None stays None."""
    if asked is None:
        return None
    return resolve_city(conn.execute(JURISDICTION_SQL, {"j": asked}).fetchall(), asked)


def list_rows(conn: Any, q: FlagQuery, max_limit: int = 10_000) -> tuple[list[dict[str, Any]], int]:
    """One page of flags as column dicts (with lon/lat) and the number matched."""
    check(q, max_limit)
    sql = build_list(q, city_code(conn, q.city))
    rows = [dict(r) for r in conn.execute(sql.rows, sql.params).fetchall()]
    return rows, int(conn.execute(sql.count, sql.params).fetchone()["n"])


def list_geojson(conn: Any, q: FlagQuery, max_limit: int = 10_000) -> str:
    """One page of flags as a GeoJSON FeatureCollection (text)."""
    check(q, max_limit)
    sql = build_list(q, city_code(conn, q.city))
    features = [r["feature"] for r in conn.execute(sql.features, sql.params).fetchall()]
    matched = int(conn.execute(sql.count, sql.params).fetchone()["n"])
    return feature_collection(features, matched=matched, q=q)
