"""``POST /analysis/overlay``: layer A x predicate x layer B, with filters, measures and paging.

The body is checked and the SQL built by :func:`services.overlay.build`; restricted fields appear only
for roles that may see them; the result cap is the service's ``max_limit``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from services import overlay
from services.errors import InvalidParameter
from services.query import tabular
from services.web.deps import APISettingsDep, HeavyReadPoolDep, IdentityDep, connection
from services.web.limits import apply_budget
from services.web.validation import MAX_OFFSET

router = APIRouter(prefix="/analysis", tags=["analysis"])


class OverlayBody(BaseModel):
    """An overlay request; unknown members are refused (400) rather than ignored."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "left": "risk_source", "predicate": "within-distance", "right": "protection_zone", "distance_m": 500,
        "left_filter": "risk_level = 'major'", "right_filter": {"level": "1"}, "output": "pairs",
        "measures": ["distance"], "limit": 100}})

    left: str = Field(description="Left layer (catalogue name)")
    predicate: str = Field(description="intersects, within, contains or within-distance")
    right: str = Field(description="Right layer (catalogue name)")
    distance_m: float | None = Field(default=None, description="Metres, for within-distance only")
    left_filter: str | dict[str, Any] | None = Field(
        default=None, description="CQL2 text, CQL2 JSON ({op, args}) or {property: value or [values]}")
    right_filter: str | dict[str, Any] | None = Field(
        default=None, description="CQL2 text, CQL2 JSON ({op, args}) or {property: value or [values]}")
    output: str = Field(default="pairs", description="pairs or left-with-count")
    measures: list[str] = Field(default_factory=list, description="area (m2), length (m), distance (m)")
    geometry: str = Field(default="left", description="left, right, intersection or none")
    limit: int | None = Field(default=None, description="Page size; without it a result over the cap is a 400")
    offset: int = Field(default=0, le=MAX_OFFSET)


FORMATS = ("geojson", "csv", "gpkg")


@router.post("/overlay", summary="Overlay two layers",
             response_description="GeoJSON FeatureCollection (CRS84), CSV (UTF-8 with BOM) or GeoPackage",
             responses={200: {"content": {"application/geo+json": {}, "text/csv": {},
                                          "application/geopackage+sqlite3": {}}}})
async def run_overlay(body: OverlayBody, pool: HeavyReadPoolDep, api: APISettingsDep, identity: IdentityDep,
                      f: str = Query("geojson", description="geojson, csv or gpkg",
                                     json_schema_extra={"enum": list(FORMATS)})) -> Response:
    """Pairs (attributes of both sides as ``left_*``/``right_*``) or left features with ``match_count``."""
    fmt = f.strip().lower()
    if fmt not in FORMATS:
        raise InvalidParameter(f"`f` was {f[:40]!r} but is expected to be one of {list(FORMATS)}")
    req = overlay.OverlayRequest(body.left, body.predicate, body.right, body.distance_m, body.left_filter,
                                 body.right_filter, body.output, tuple(body.measures), body.geometry, body.limit,
                                 body.offset)
    q = overlay.build(req, cap=api.max_limit, may_see_restricted=identity.sees_restricted,
                      max_filter_depth=api.max_filter_depth)
    async with connection(pool, identity) as conn, conn.cursor(row_factory=dict_row) as cur:
        await apply_budget(conn, identity)
        rows = await (await cur.execute(q.text, q.params)).fetchall()
    result = overlay.finish(q, [r["feature"] for r in rows])
    headers = {"Content-Crs": f"<{overlay.CRS84}>"}
    name = f"overlay-{body.left}-{body.right}"
    if fmt == "csv":
        text = await run_in_threadpool(tabular.features_csv, result.collection_text())
        headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return Response(text.encode("utf-8"), media_type=tabular.CSV_MEDIA, headers=headers)
    if fmt == "gpkg":
        data = await run_in_threadpool(tabular.features_gpkg, result.collection_text(), "overlay")
        headers["Content-Disposition"] = f'attachment; filename="{name}.gpkg"'
        return Response(data, media_type=tabular.GPKG_MEDIA, headers=headers)
    return Response(result.collection_text(), media_type="application/geo+json", headers=headers)
