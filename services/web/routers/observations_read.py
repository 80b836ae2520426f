"""Reading the observations: the latest state of every station (one request for the map), a station's
series (JSON or CSV), and the AQI tables. Nothing in an observation is restricted: anonymous callers
read the same answers.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from maps.public import public_page
from services.errors import InvalidParameter
from services.observations.air import aqi_tables
from services.observations.latest import geojson, latest_states
from services.observations.public import public_document
from services.observations.series import station_series, to_csv
from services.observations.water_state import legend
from services.web.deps import IdentityDep, PoolDep
from services.web.ogc.execute import read_connection
from services.web.ogc.render import json_response

router = APIRouter(tags=["Observations"])
GEOJSON = "application/geo+json"


@router.get("/observations/latest", summary="Every station with its latest values and state (GeoJSON)",
            description="One FeatureCollection of the monitoring stations (WGS84 lon/lat points), each with its "
                        "latest value per parameter and `state`: for air the hourly AQI (HJ 633-2012), category, "
                        "colour and primary pollutant(s); for water the GB 3838-2002 class of its latest sample "
                        "(worst factor) against its target class. `properties.state_colour` colours the map.",
            responses={200: {"content": {GEOJSON: {}}}})
async def latest(pool: PoolDep, identity: IdentityDep,
                 medium: str | None = Query(None, pattern="^(air|water)$", description="Only `air` or `water`"),
                 city: str | None = Query(None, pattern="^[0-9]{6}$", description="Only this city (GB/T 2260)")
                 ) -> Response:
    async with read_connection(pool, identity) as conn:
        stations = await latest_states(conn, medium, city)
    doc = geojson(stations)
    doc["legend"] = {"air": [c.to_dict() for c in aqi_tables().categories], "water": legend()}
    return json_response(doc, GEOJSON, {"Cache-Control": "public, max-age=60"})


@router.get("/stations/{key}/series", summary="A station's values over a time range, with class or AQI",
            description="`parameter`: comma-separated codes of the parameter catalogue, or `aqi` (hourly AQI) and "
                        "`aqi_daily` (daily AQI) for air stations; default `aqi` for air, every parameter for "
                        "water. `datetime`: `start/end` in ISO 8601 (`..` open; a date is the whole day; no zone "
                        "means China Standard Time); default the 30 days up to the latest observation; at most "
                        "370 days. Water values carry their GB 3838 class (`class_num` 1-5, 6 worse than V), air "
                        "values their IAQI. `format=csv` gives one line per value.",
            responses={200: {"content": {"application/json": {}, "text/csv": {}}}, 404: {"description": "No such station"}})
async def series(pool: PoolDep, identity: IdentityDep,
                 key: str = Path(..., min_length=1, max_length=120),
                 parameter: str | None = Query(None, max_length=400),
                 datetime: str | None = Query(None, max_length=80),
                 format: str = Query("json", description="`json` or `csv`"),  # noqa: A002
                 ) -> Response:
    fmt = format.strip().lower()
    if fmt not in ("json", "csv"):
        raise InvalidParameter(f"`format` was {format[:40]!r} but is expected to be 'json' or 'csv'")
    if "\x00" in key:
        raise InvalidParameter("`key` contains a NUL character")
    async with read_connection(pool, identity) as conn:
        doc = await station_series(conn, key, parameter, datetime)
    if fmt == "csv":
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)
        return Response(to_csv(doc), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}-series.csv"'})
    return json_response(doc)


@router.get("/public/data.json", summary="The public page's data: cities' AQI with health advice, sections' classes",
            description="Each city's AQI now (its latest hour) and the day's (the daily AQI of the latest complete "
                        "day), city value = the mean of its stations' concentrations, then IAQI and AQI "
                        "(HJ 633-2012); category, colour, health effects and advice in Chinese and English; each "
                        "cross-border section's latest GB 3838 class against its target. No login; nothing "
                        "restricted.")
async def public_data(pool: PoolDep) -> Response:
    async with read_connection(pool) as conn:
        doc = await public_document(conn)
    return json_response(doc, headers={"Cache-Control": "public, max-age=60"})


@router.get("/public", response_class=HTMLResponse, summary="The public page: air quality and border sections now")
async def public(request: Request) -> HTMLResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return HTMLResponse(public_page(root), headers={"Cache-Control": "no-cache"})
