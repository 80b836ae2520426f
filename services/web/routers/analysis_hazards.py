"""``GET /analysis/border-hazards`` and ``GET /analysis/border-matrix``: the cross-border picture.

Thin handlers: the filters are checked and the SQL built by :mod:`services.hazards.query` and
:mod:`services.hazards.matrix`; PostGIS writes the GeoJSON; CSV and GeoPackage are rendered from rows
(the GeoPackage by pyogrio in a worker thread, off the event loop).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from psycopg.rows import dict_row
from starlette.concurrency import run_in_threadpool

from services.errors import InvalidParameter
from services.hazards import matrix, query
from services.hazards.query import FlagQuery
from services.web.deps import APISettingsDep, HeavyReadPoolDep, IdentityDep
from services.web.limits import apply_budget
from services.web.validation import MAX_OFFSET

router = APIRouter(prefix="/analysis", tags=["analysis"])

MEDIA = {"geojson": "application/geo+json", "csv": "text/csv; charset=utf-8",
         "gpkg": "application/geopackage+sqlite3"}


def _many(values: list[str] | None) -> tuple[str, ...]:
    """Repeated parameters and comma-separated lists alike: ``kind=a&kind=b`` or ``kind=a,b``."""
    return tuple(v.strip() for item in values or () for v in item.split(",") if v.strip())


@router.get("/border-hazards", summary="Border-zone hazard flags of the risk sources",
            response_description="GeoJSON FeatureCollection (CRS84), CSV or GeoPackage")
async def border_hazards(
    pool: HeavyReadPoolDep,
    api: APISettingsDep,
    identity: IdentityDep,
    city: Annotated[str | None, Query(description="City or province code or name; flags of sources in it or "
                                                  "naming it")] = None,
    kind: Annotated[list[str] | None, Query(description="city-border, province-border, upstream, "
                                                        "protection-zone, protected-area")] = None,
    severity: Annotated[list[str] | None, Query(description="low, medium, high")] = None,
    level: Annotated[str | None, Query(description="city: the other jurisdiction is a city; province: the flag "
                                                   "crosses a province line")] = None,
    risk_level: Annotated[list[str] | None, Query(description="general, larger, major")] = None,
    cross_border: Annotated[bool | None, Query(description="false: only flags about the source's own city's "
                                                           "zones and areas")] = None,
    f: Annotated[str, Query(description="geojson, csv or gpkg")] = "geojson",
    limit: Annotated[int | None, Query(description="Page size (default: the service default for GeoJSON, the "
                                                   "maximum for CSV and GeoPackage)")] = None,
    offset: Annotated[int, Query(le=MAX_OFFSET)] = 0,
) -> Response:
    """Each flag: the risk source (point), kind, other jurisdiction, distance (m), reason and severity."""
    if f not in query.FORMATS:
        raise InvalidParameter(f"`f` was {f!r} but is expected to be one of {list(query.FORMATS)}")
    default = api.default_limit if f == "geojson" else api.max_limit
    q = FlagQuery(city=city, kind=_many(kind), severity=_many(severity), risk_level=_many(risk_level),
                  level=level, cross_border=cross_border, limit=default if limit is None else limit, offset=offset)
    query.check(q, api.max_limit)
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await apply_budget(conn, identity)  # the flags hold no restricted field: identity sets the budget only
        code = None
        if city is not None:
            found = await (await cur.execute(query.JURISDICTION_SQL, {"j": city})).fetchall()
            code = query.resolve_city(found, city)
        sql = query.build_list(q, code)
        matched = (await (await cur.execute(sql.count, sql.params)).fetchone())["n"]
        if f == "geojson":
            rows = await (await cur.execute(sql.features, sql.params)).fetchall()
        else:
            rows = await (await cur.execute(sql.rows, sql.params)).fetchall()
    headers = {"X-Total-Count": str(matched), "Content-Crs": f"<{query.CRS84}>"}
    if f == "geojson":
        body = query.feature_collection([r["feature"] for r in rows], matched=int(matched), q=q)
        return Response(body, media_type=MEDIA[f], headers=headers)
    if f == "csv":
        headers["Content-Disposition"] = 'attachment; filename="border-hazards.csv"'
        return Response(query.to_csv(rows), media_type=MEDIA[f], headers=headers)
    data = await run_in_threadpool(query.to_gpkg, rows)
    headers["Content-Disposition"] = 'attachment; filename="border-hazards.gpkg"'
    return Response(data, media_type=MEDIA[f], headers=headers)


@router.get("/border-matrix", summary="Cross-border flags summed city x city or province x province")
async def border_matrix(
    pool: HeavyReadPoolDep,
    level: Annotated[str, Query(description="city or province")] = "city",
) -> JSONResponse:
    """Counts by (from, to) pair, kind and severity, with a dense matrix of the totals."""
    matrix.check_level(level)
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await apply_budget(conn, None)
        cells = await (await cur.execute(matrix.cells_sql(level))).fetchall()
        juris = await (await cur.execute(matrix.jurisdictions_sql(), {"level": level})).fetchall()
    doc: dict[str, Any] = matrix.assemble(level, juris, cells)
    return JSONResponse(doc)
