"""The landing page ``/``, ``/conformance`` and the OpenAPI 3.0 document ``/api``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.web.deps import APISettingsDep
from services.web.ogc import links as L
from services.web.ogc.collections import F_QUERY
from services.web.ogc.negotiation import output_format
from services.web.ogc.openapi import document
from services.web.ogc.render import html_response, json_response

router = APIRouter(tags=["Capabilities"])

_F1 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
_F2 = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/"
_F3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
_COMMON = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/"

#: The conformance classes this service implements.
CONFORMANCE: list[str] = [
    _COMMON + "core",
    _COMMON + "landing-page",
    _COMMON + "json",
    _COMMON + "html",
    _COMMON + "oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    _F1 + "core",
    _F1 + "oas30",
    _F1 + "html",
    _F1 + "geojson",
    _F2 + "crs",
    _F3 + "filter",
    _F3 + "features-filter",
    _F3 + "queryables",
    _F3 + "queryables-query-parameters",
    _CQL2 + "cql2-text",
    _CQL2 + "cql2-json",
    _CQL2 + "basic-cql2",
    _CQL2 + "advanced-comparison-operators",
    _CQL2 + "case-insensitive-comparison",
    _CQL2 + "property-property",
    _CQL2 + "basic-spatial-functions",
    _CQL2 + "basic-spatial-functions-plus",
    _CQL2 + "spatial-functions",
    _TILES + "core",
    _TILES + "tileset",
    _TILES + "tilesets-list",
    _TILES + "geodata-tilesets",
    _TILES + "dataset-tilesets",
    _TILES + "mvt",
    _TILES + "oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]


@router.get("/", summary="Landing page", responses={200: {"content": {L.JSON: {}, L.HTML: {}}}})
async def landing(request: Request, settings: APISettingsDep, f: str | None = F_QUERY) -> Response:
    fmt = output_format(request, f)
    links = L.self_and_alternate(request, "/", L.JSON, fmt, title="landing page") + [
        L.link(L.url(request, "/api"), "service-desc", L.OPENAPI, "OpenAPI 3.0 definition"),
        L.link(L.url(request, "/docs"), "service-doc", L.HTML, "Interactive API documentation"),
        L.link(L.url(request, "/conformance"), "conformance", L.JSON, "Conformance classes"),
        L.link(L.url(request, "/conformance"), L.REL_CONFORMANCE, L.JSON, "Conformance classes"),
        L.link(L.url(request, "/collections"), "data", L.JSON, "Collections"),
        L.link(L.url(request, "/collections"), L.REL_DATA, L.JSON, "Collections"),
        L.link(L.url(request, "/tileMatrixSets"), L.REL_TILING_SCHEMES, L.JSON, "Tile matrix sets"),
        L.link(L.url(request, "/tiles"), L.REL_TILESETS_VECTOR, L.JSON, "Vector tiles of all layers"),
    ]
    doc = {"title": settings.title, "description": settings.description, "links": links}
    if fmt == "html":
        return html_response(
            "landing.html",
            title=settings.title,
            root=L.base(request),
            description=settings.description,
            links=links,
        )
    return json_response(doc)


@router.get(
    "/conformance", summary="Conformance classes", responses={200: {"content": {L.JSON: {}, L.HTML: {}}}}
)
async def conformance(request: Request, f: str | None = F_QUERY) -> Response:
    fmt = output_format(request, f)
    links = L.self_and_alternate(request, "/conformance", L.JSON, fmt, title="conformance")
    if fmt == "html":
        return html_response(
            "conformance.html", title="Conformance", root=L.base(request), conforms=CONFORMANCE, links=links
        )
    return json_response({"conformsTo": CONFORMANCE, "links": links})


@router.get("/api", summary="OpenAPI 3.0 definition", responses={200: {"content": {L.OPENAPI: {}}}})
async def api(request: Request, settings: APISettingsDep) -> Response:
    return json_response(document(request.app, settings), L.OPENAPI)
