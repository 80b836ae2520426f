"""``/collections/observations``: observations as an OGC API Features collection (GeoJSON and HTML).

Registered before the catalogue's OGC routes, whose ``/collections/{id}`` would otherwise take the name.
"""

from __future__ import annotations

import html
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from layers.catalogue import LAYERS
from services.errors import InvalidParameter
from services.observations.features import COLLECTION, check_paging, collection_document, observation_features, where_clause
from services.web.deps import IdentityDep, ReadPoolDep
from services.web.ogc.execute import read_connection
from services.web.ogc.extents import extent_cache
from services.web.ogc.render import json_response

router = APIRouter(tags=["Observations"])
GEOJSON = "application/geo+json"


@router.get(f"/collections/{COLLECTION}", summary="The observations collection")
async def collection(request: Request, pool: ReadPoolDep) -> Response:
    stations = LAYERS["monitoring_station"]
    bbox = (await extent_cache(request).get(pool, [stations]))[stations.name]
    return json_response(collection_document(str(request.base_url).rstrip("/"), bbox))


@router.get(f"/collections/{COLLECTION}/items", summary="Observations as point features at their stations",
            description="`datetime`: an instant or `start/end` on the observed time (`..` open; no offset: China "
                        "Standard Time); only the monthly partitions it spans are read. `station`, `parameter`: "
                        "comma-separated keys and codes. `bbox` (in `bbox-crs`, default CRS84): the stations "
                        "inside the box. `limit` (≤ 10000) and `offset` page; `f=html` for a table.",
            responses={200: {"content": {GEOJSON: {}, "text/html": {}}}})
async def items(request: Request, pool: ReadPoolDep, identity: IdentityDep,
                datetime: Annotated[str | None, Query(max_length=80)] = None,
                station: Annotated[str | None, Query(max_length=4000)] = None,
                parameter: Annotated[str | None, Query(max_length=1000)] = None,
                bbox: Annotated[str | None, Query(max_length=200, description="minx,miny,maxx,maxy (4 or 6 "
                                                  "numbers) in `bbox-crs`: observations of the stations inside")] = None,
                bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200,
                                                      description="CRS of `bbox` (default CRS84)")] = None,
                limit: Annotated[int | None, Query()] = None,
                offset: Annotated[int | None, Query()] = None,
                f: Annotated[str, Query(max_length=10)] = "json") -> Response:
    if f not in ("json", "html"):
        raise InvalidParameter(f"`f` was {f[:10]!r} but is expected to be 'json' or 'html'")
    n, o = check_paging(limit, offset)
    where = where_clause(datetime, station, parameter, bbox, bbox_crs)
    async with read_connection(pool, identity) as conn:
        features = await observation_features(conn, where, n, o)
    links = [{"rel": "self", "href": str(request.url), "type": GEOJSON}]
    if len(features) == n:
        links.append({"rel": "next", "type": GEOJSON,
                      "href": str(request.url.include_query_params(offset=o + n, limit=n))})
    if f == "html":
        return Response(_html(features, links), media_type="text/html; charset=utf-8")
    # the features arrive as GeoJSON text built by PostGIS: joined, never parsed again
    body = (f'{{"type":"FeatureCollection","numberReturned":{len(features)},"links":{json.dumps(links)},'
            f'"features":[{",".join(features)}]}}')
    return Response(body.encode(), media_type=GEOJSON,
                    headers={"Content-Crs": "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"})


def _html(features: list[str], links: list[dict[str, str]]) -> str:
    """The page as an escaped HTML table, Chinese first."""
    rows = []
    for text in features:
        p = json.loads(text)["properties"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(p[k] if p[k] is not None else ''))}</td>" for k in
                                     ("observed_at", "station", "station_name", "parameter_zh", "value", "unit",
                                      "flag")) + "</tr>")
    nxt = next((lk["href"] for lk in links if lk["rel"] == "next"), None)
    more = f'<p><a rel="next" href="{html.escape(nxt.replace("f=json", "f=html"))}">下一页 / next</a></p>' if nxt else ""
    return ("<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>监测数据 / Observations</title>"
            "<h1>监测数据 / Observations</h1><table><tr><th>时间 / time</th><th>站点 / station</th><th>名称 / name</th>"
            "<th>参数 / parameter</th><th>值 / value</th><th>单位 / unit</th><th>标记 / flag</th></tr>"
            + "".join(rows) + "</table>" + more + "</html>")
