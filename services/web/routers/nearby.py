"""``GET /nearby``: risk sites around a phone, nearest first, with distance and bearing.

Input and output coordinates are in ``crs`` (default CRS84; ``gcj02`` for AMap/Tencent phones,
``bd09`` for Baidu). The default answer is compact JSON; ``f=geojson`` gives a FeatureCollection.
Contacts are included only for roles that may see restricted fields.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Response

from gis.crs import CrsSpec, from_wgs84, to_wgs84
from layers.catalogue import RISK_CATEGORIES, RISK_LEVELS
from services.errors import InvalidParameter
from services.nearby import MAX_LIMIT, MAX_RADIUS_M, NearbyQuery, Site, find_nearby
from services.query.crs import content_crs, negotiate
from services.web.deps import IdentityDep, ReadPoolDep
from services.web.ogc.execute import read_connection
from services.web.ogc.render import json_response

router = APIRouter(tags=["Nearby"])

GEOJSON = "application/geo+json"


@router.get(
    "/nearby",
    summary="Risk sites near a point",
    description="The risk sites within `radius` metres of (`x`, `y`), nearest first, each with "
    "`distance_m` "
    "(geodesic, WGS84 spheroid) and `bearing_deg` (initial bearing from the point to the site, "
    "clockwise from north). Coordinates in and out are in `crs`.",
    responses={200: {"content": {"application/json": {}, GEOJSON: {}}}},
)
async def nearby(
    pool: ReadPoolDep,
    identity: IdentityDep,
    x: float = Query(..., description="Longitude (or easting, in a projected `crs`) of the point"),
    y: float = Query(..., description="Latitude (or northing, in a projected `crs`) of the point"),
    radius: float = Query(5000.0, gt=0, le=MAX_RADIUS_M, description="Search radius in metres"),
    limit: int = Query(20, ge=1, le=MAX_LIMIT, description="At most this many sites"),
    category: str | None = Query(None, description=f"Comma-separated categories: {list(RISK_CATEGORIES)}"),
    level: str | None = Query(None, description=f"Comma-separated risk levels: {list(RISK_LEVELS)}"),
    crs: str | None = Query(
        None, description="CRS of x/y in and out: CRS84 (default), EPSG:4326, EPSG:4490, EPSG:4549, gcj02 or bd09"
    ),
    f: str | None = Query(
        None,
        description="`json` (compact, default) or `geojson`",
        json_schema_extra={"enum": ["json", "geojson"]},
    ),
) -> Response:
    spec = _crs(crs)
    fmt = (f or "json").strip().lower()
    if fmt not in ("json", "geojson"):
        raise InvalidParameter(f"`f` was {f[:40]!r} but is expected to be 'json' or 'geojson'")
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(radius)):
        raise InvalidParameter("`x`, `y` and `radius` are expected to be finite numbers")
    wlon, wlat = (float(v) for v in to_wgs84(x, y, spec))
    if not (math.isfinite(wlon) and math.isfinite(wlat) and -180 <= wlon <= 180 and -90 <= wlat <= 90):
        which = "x" if not (math.isfinite(wlon) and -180 <= wlon <= 180) else "y"
        raise InvalidParameter(f"`{which}`: the point ({x}, {y}) in {spec.uri} is not a position on the earth")
    q = NearbyQuery(
        wlon,
        wlat,
        radius,
        limit,
        _choices(category, RISK_CATEGORIES, "category"),
        _choices(level, RISK_LEVELS, "level"),
    )
    async with read_connection(pool, identity) as conn:
        sites = await find_nearby(conn, q, with_restricted=identity.sees_restricted)
    xs, ys = _positions(sites, spec)
    headers = {"Content-Crs": content_crs(spec)}
    if fmt == "geojson":
        return json_response(_geojson(sites, xs, ys, spec, radius), GEOJSON, headers)
    return json_response(_compact(sites, xs, ys, spec, x, y, radius), headers=headers)


def _crs(value: str | None) -> CrsSpec:
    return negotiate(value, "crs")


def _choices(value: str | None, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if value is None or not value.strip():
        return ()
    items = tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
    for item in items:
        if item not in allowed:
            raise InvalidParameter(f"`{name}` was {item[:60]!r} but is expected to be among {list(allowed)}")
    return items


def _positions(sites: list[Site], spec: CrsSpec) -> tuple[np.ndarray, np.ndarray]:
    if not sites:
        return np.array([]), np.array([])
    xs, ys = from_wgs84(np.array([s.lon for s in sites]), np.array([s.lat for s in sites]), spec)
    return np.atleast_1d(xs), np.atleast_1d(ys)


def _facts(s: Site) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": s.key,
        "name": s.name,
        "category": s.category,
        "level": s.risk_level,
        "level_zh": s.level_zh,
        "industry": s.industry,
        "address": s.address,
        "status": s.status,
        "city": s.city_name,
        "county": s.county_name,
        "city_code": s.city_code,
        "county_code": s.county_code,
        "distance_m": round(s.distance_m, 1),
        "bearing_deg": round(s.bearing_deg, 1),
    }
    if s.contact is not None:
        out["contact"] = s.contact
    return out


def _compact(
    sites: list[Site], xs: np.ndarray, ys: np.ndarray, spec: CrsSpec, x: float, y: float, radius: float
) -> dict[str, Any]:
    return {
        "crs": spec.uri,
        "origin": {"x": x, "y": y},
        "radius_m": radius,
        "count": len(sites),
        "sites": [
            {**_facts(s), "x": round(float(sx), 7), "y": round(float(sy), 7)}
            for s, sx, sy in zip(sites, xs, ys, strict=True)
        ],
    }


def _geojson(
    sites: list[Site], xs: np.ndarray, ys: np.ndarray, spec: CrsSpec, radius: float
) -> dict[str, Any]:
    def coords(x: float, y: float) -> list[float]:
        pair = [round(float(x), 7), round(float(y), 7)]
        return pair[::-1] if spec.axis_latlon else pair

    return {
        "type": "FeatureCollection",
        "numberReturned": len(sites),
        "radius_m": radius,
        "features": [
            {
                "type": "Feature",
                "id": s.key,
                "geometry": {"type": "Point", "coordinates": coords(x, y)},
                "properties": _facts(s),
            }
            for s, x, y in zip(sites, xs, ys, strict=True)
        ],
    }
