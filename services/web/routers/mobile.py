"""The inspector's phone page ``/m`` and what makes it an installable app that opens offline.

``/m`` (the page), ``/m/manifest.webmanifest`` (its web app manifest), ``/m/sw.js`` (its service
worker, allowed to control ``/m``) and ``/m/where`` (which city and county hold a point: the page asks
when a search finds nothing, to tell an empty radius from a point outside the region).
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from gis.crs import to_wgs84
from maps import mobile
from services.errors import InvalidParameter
from services.nearby.where import where
from services.query.crs import negotiate
from services.web.deps import IdentityDep, ReadPoolDep
from services.web.ogc.execute import read_connection
from services.web.ogc.render import json_response

router = APIRouter(tags=["Web"])

#: The page, manifest and worker change with the code, not the data: browsers revalidate them.
PAGE_HEADERS = {"Cache-Control": "no-cache"}


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/m", response_class=HTMLResponse, summary="The inspector's phone page: risk sites near me")
async def mobile_page(request: Request) -> HTMLResponse:
    return HTMLResponse(mobile.mobile_page(_root(request)), headers=PAGE_HEADERS)


@router.get("/m/manifest.webmanifest", summary="Web app manifest of the phone page (installable, standalone)")
async def manifest(request: Request) -> Response:
    return json_response(mobile.manifest(_root(request)), "application/manifest+json", PAGE_HEADERS)


@router.get("/m/sw.js", summary="Service worker of the phone page: the page opens without a network")
async def service_worker(request: Request) -> Response:
    root = _root(request)
    return Response(mobile.service_worker(root), media_type="text/javascript",
                    headers={**PAGE_HEADERS, "Service-Worker-Allowed": f"{root}/m"})


@router.get("/m/where", summary="Which city and county hold a point (null outside the region)")
async def where_is(
    pool: ReadPoolDep, identity: IdentityDep,
    x: float = Query(..., description="Longitude (or easting, in a projected `crs`) of the point"),
    y: float = Query(..., description="Latitude (or northing, in a projected `crs`) of the point"),
    crs: str | None = Query(None, description="CRS of x/y: CRS84 (default), EPSG:4326, EPSG:4490, gcj02 or bd09"),
) -> Response:
    spec = negotiate(crs, "crs")
    lon, lat = (float(v) for v in to_wgs84(x, y, spec))
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidParameter(f"`x`, `y`: the point ({x}, {y}) in {spec.uri} is not a position on the earth")
    async with read_connection(pool, identity) as conn:
        p = await where(conn, lon, lat)
    return json_response({"in_region": p.in_region, "city_code": p.city_code, "city": p.city, "city_en": p.city_en,
                          "county_code": p.county_code, "county": p.county, "county_en": p.county_en})
