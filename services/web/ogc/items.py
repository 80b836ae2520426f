"""``/collections/{collectionId}/items`` and ``/items/{featureId}`` (Features Parts 1, 2 and 3)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from gis.crs import CRS84
from gis.simplify import MAX_ZOOM
from services.errors import InvalidParameter, NotFound
from services.query import tabular
from services.query.clauses import GEOM, Clause, FeatureQuery, by_id
from services.query.cql import FILTER_LANGS
from services.query.crs import SUPPORTED_URIS, content_crs, negotiate
from services.query.filters import conditions
from services.query.params import properties, sortby
from services.query.simplify import MAX_SIMPLIFY_M, SIMPLIFY_DOC, ZOOM_DOC, Simplification, simplification, simplified_sql
from services.query.temporal import datetime_clause
from services.query.views import CollectionView
from services.web.deps import APISettingsDep, IdentityDep, ReadPoolDep
from services.web.ogc import links as L
from services.web.ogc.collections import F_QUERY, resolve
from services.web.ogc.counts import count_cache
from services.web.ogc.execute import read_connection
from services.web.ogc.features import Page, body, count_page, feature_body, fetch_features, fetch_page
from services.web.ogc.minimap import svg_map
from services.web.ogc.negotiation import output_format
from services.web.ogc.render import html_response, timestamp
from services.web.validation import MAX_OFFSET

router = APIRouter(tags=["Features"])

MAX_FEATURE_ID_CHARS = 256

ITEMS_FORMATS = ("json", "html", "csv", "gpkg")
ITEMS_F_QUERY = Query(
    None,
    description="Output format: `json` (GeoJSON), `html`, `csv` (UTF-8 with BOM; lon/lat or WKT) or `gpkg` "
    "(GeoPackage); default: from the Accept header, else json",
    json_schema_extra={"enum": list(ITEMS_FORMATS)},
)

_CRS_DOC = f"Output CRS, one of {SUPPORTED_URIS} (EPSG:4326 and EPSG:4490 are latitude, longitude)"
SIMPLIFY_QUERY = Query(None, ge=0, le=MAX_SIMPLIFY_M, description=SIMPLIFY_DOC)
ZOOM_QUERY = Query(None, ge=0, le=MAX_ZOOM, description=ZOOM_DOC)


@router.get(
    "/collections/{collectionId}/items",
    summary="Features of a collection",
    description="Filter with `bbox`, a CQL2 `filter` (text or JSON) and `property=value` parameters for any "
    "queryable; page with `limit` and `offset` (or follow the `next` link).",
    responses={200: {"content": {L.GEOJSON: {}, L.HTML: {}}}, 404: {"description": "No such collection"}},
)
async def items(
    request: Request,
    pool: ReadPoolDep,
    identity: IdentityDep,
    settings: APISettingsDep,
    collectionId: str,  # noqa: N803 - the OGC parameter name, which GDAL looks for in the OpenAPI document
    f: str | None = ITEMS_F_QUERY,
    bbox: str | None = Query(None, description="minx,miny,maxx,maxy (4 or 6 numbers) in `bbox-crs`"),
    bbox_crs: str | None = Query(None, alias="bbox-crs", description="CRS of `bbox` (default CRS84)"),
    crs: str | None = Query(None, description=_CRS_DOC),
    datetime_: str | None = Query(
        None, alias="datetime",
        description="Features last changed at this instant or in this interval (RFC 3339, `start/end`, `..` "
        "for an open end; no offset: China Standard Time)",
    ),
    limit: int | None = Query(None, ge=1, description="Page size"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Features to skip"),
    filter: str | None = Query(None, description="CQL2 filter (text or JSON, see `filter-lang`)"),  # noqa: A002
    filter_lang: str | None = Query(
        None,
        alias="filter-lang",
        json_schema_extra={"enum": list(FILTER_LANGS)},
        description="cql2-text (default) or cql2-json",
    ),
    filter_crs: str | None = Query(None, alias="filter-crs", description="CRS of the filter's geometries"),
    properties_: str | None = Query(
        None, alias="properties", description="Comma-separated properties to return"
    ),
    sortby_: str | None = Query(
        None, alias="sortby", description="Comma-separated properties, - for descending"
    ),
    result_type: str = Query(
        "results",
        alias="resultType",
        json_schema_extra={"enum": ["results", "hits"]},
        description="`hits` returns only numberMatched (GDAL asks for it to count)",
    ),
    simplify: float | None = SIMPLIFY_QUERY,
    zoom: int | None = ZOOM_QUERY,
) -> Response:
    v = resolve(collectionId, identity)
    simpler = simplification(simplify, zoom, v.layer.geometry_type)
    if result_type not in ("results", "hits"):
        raise InvalidParameter(
            f"`resultType` was {result_type[:40]!r} but is expected to be 'results' or 'hits'"
        )
    fmt = output_format(request, f, ITEMS_FORMATS)
    out_crs = negotiate(crs, "crs")
    page_size = settings.default_limit if limit is None else limit
    if page_size > settings.max_limit:
        raise InvalidParameter(f"`limit` was {limit} but is expected to be at most {settings.max_limit}")
    where = conditions(
        v,
        bbox,
        bbox_crs,
        filter,
        filter_lang,
        filter_crs,
        request.query_params.multi_items(),
        settings.max_filter_depth,
    )
    when = datetime_clause(datetime_)
    if when is not None:
        where.append(when)
    q = FeatureQuery(v, properties(properties_, v), tuple(where), sortby(sortby_, v), page_size, offset,
                     _geometry(v, simpler))
    async with read_connection(pool, identity) as conn:
        counts = count_cache(request)
        page = await (
            count_page(conn, q, counts) if result_type == "hits" else fetch_page(conn, q, out_crs, counts)
        )
    path = f"/collections/{v.layer.name}/items"
    query = list(request.query_params.multi_items())
    head = {
        "numberMatched": page.matched,
        "numberReturned": len(page.features),
        "timeStamp": timestamp(),
        "links": page_links(request, path, query, q, page, fmt, v),
    }
    if simpler is not None:
        head["simplification"] = simpler.describe()
    if result_type == "hits":  # no features, so no pages to follow
        head["links"] = [lk for lk in head["links"] if lk["rel"] not in ("next", "prev")]
    headers = {"Content-Crs": content_crs(out_crs)}
    if fmt == "html":
        return _items_html(request, v, q, page, head, out_crs.uri, headers)
    if fmt in ("csv", "gpkg"):
        return await _table(v.layer.name, body(page.features, head), fmt, page.matched, len(page.features), headers)
    return Response(body(page.features, head), media_type=L.GEOJSON, headers=headers)


async def _table(name: str, collection: bytes, fmt: str, matched: int, returned: int,
                 headers: dict[str, str]) -> Response:
    """The page as CSV (UTF-8 with BOM) or a GeoPackage, as a download; the counts in headers."""
    headers = {**headers, "OGC-NumberMatched": str(matched), "OGC-NumberReturned": str(returned)}
    if fmt == "csv":
        text = await run_in_threadpool(tabular.features_csv, collection)
        headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return Response(text.encode("utf-8"), media_type=tabular.CSV_MEDIA, headers=headers)
    data = await run_in_threadpool(tabular.features_gpkg, collection, name)
    headers["Content-Disposition"] = f'attachment; filename="{name}.gpkg"'
    return Response(data, media_type=tabular.GPKG_MEDIA, headers=headers)


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    summary="One feature",
    responses={
        200: {"content": {L.GEOJSON: {}, L.HTML: {}}},
        404: {"description": "No such collection or feature"},
    },
)
async def item(
    request: Request,
    pool: ReadPoolDep,
    identity: IdentityDep,
    collectionId: str,  # noqa: N803
    featureId: str = Path(description="The feature's `key` (for admin_area, its code)"),  # noqa: N803
    f: str | None = F_QUERY,
    crs: str | None = Query(None, description=_CRS_DOC),
    simplify: float | None = SIMPLIFY_QUERY,
    zoom: int | None = ZOOM_QUERY,
) -> Response:
    v = resolve(collectionId, identity)
    simpler = simplification(simplify, zoom, v.layer.geometry_type)
    fmt = output_format(request, f)
    out_crs = negotiate(crs, "crs")
    missing = NotFound(
        f"feature {featureId[:MAX_FEATURE_ID_CHARS]!r} does not exist in collection {v.layer.name!r}"
    )
    if len(featureId) > MAX_FEATURE_ID_CHARS:
        raise missing
    q = FeatureQuery(v, v.fields, (by_id(v, featureId),), (), 1, 0, _geometry(v, simpler))
    async with read_connection(pool, identity) as conn:
        found = await fetch_features(conn, q, out_crs)
    if not found:
        raise missing
    path = f"/collections/{v.layer.name}/items/{_q(featureId)}"
    keep = {k: request.query_params[k] for k in ("crs", "simplify", "zoom") if request.query_params.get(k)}
    links = L.self_and_alternate(request, path, L.GEOJSON, fmt, keep, title="this feature") + [
        L.link(L.url(request, f"/collections/{v.layer.name}"), "collection", L.JSON, v.layer.title)
    ]
    headers = {"Content-Crs": content_crs(out_crs)}
    if fmt == "html":
        feature = orjson.loads(found[0])
        return html_response(
            "item.html",
            headers=headers,
            title=f"{v.layer.title_zh} {v.layer.title}: {feature['id']}",
            minimap=svg_map([feature], v.layer.style.color) if out_crs.uri == CRS84.uri else None,
            root=L.base(request),
            collection=v.layer.name,
            collection_title=f"{v.layer.title_zh} {v.layer.title}",
            feature=feature,
            fields=v.fields,
            summary=_summary(feature.get("geometry")),
            crs=out_crs.uri,
            links=links,
        )
    return Response(feature_body(found[0], links), media_type=L.GEOJSON, headers=headers)


def _geometry(v: CollectionView, simpler: Simplification | None) -> Clause | None:
    """The SQL of the simplified geometry, or None to output the stored one."""
    return None if simpler is None else simplified_sql(GEOM, simpler, v.layer.geometry_type)


def page_links(
    request: Request,
    path: str,
    query: list[tuple[str, str]],
    q: FeatureQuery,
    page: Page,
    fmt: str,
    v: CollectionView,
) -> list[dict[str, Any]]:
    """self, alternate, collection, and next/prev when there are more pages (same query, other offset)."""
    base = [(k, val) for k, val in query if k not in ("offset", "f")]

    def href(offset: int, f: str) -> str:
        items_ = base + ([("offset", str(offset))] if offset else []) + [("f", f)]
        return L.base(request) + path + "?" + "&".join(f"{_q(k)}={_q(val)}" for k, val in items_)

    json_type, html_type = L.GEOJSON, L.HTML
    out = [
        L.link(
            href(q.offset, "json"),
            "self" if fmt == "json" else "alternate",
            json_type,
            "this page as GeoJSON",
        ),
        L.link(
            href(q.offset, "html"), "self" if fmt == "html" else "alternate", html_type, "this page as HTML"
        ),
        L.link(href(q.offset, "csv"), "alternate", "text/csv", "this page as CSV (UTF-8 with BOM)"),
        L.link(href(q.offset, "gpkg"), "alternate", "application/geopackage+sqlite3", "this page as a GeoPackage"),
        L.link(L.url(request, f"/collections/{v.layer.name}"), "collection", L.JSON, v.layer.title),
    ]
    if q.offset + len(page.features) < page.matched:
        out.append(
            L.link(
                href(q.offset + q.limit, fmt if fmt == "html" else "json"),
                "next",
                html_type if fmt == "html" else json_type,
                "next page",
            )
        )
    if q.offset > 0:
        out.append(
            L.link(
                href(max(q.offset - q.limit, 0), fmt if fmt == "html" else "json"),
                "prev",
                html_type if fmt == "html" else json_type,
                "previous page",
            )
        )
    return out


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _items_html(
    request: Request,
    v: CollectionView,
    q: FeatureQuery,
    page: Page,
    head: dict[str, Any],
    crs_uri: str,
    headers: dict[str, str],
) -> Response:
    feats = [orjson.loads(t) for t in page.features]
    for ft in feats:
        ft["summary"] = _summary(ft.get("geometry"))
    links = head["links"]
    nxt = next((lk["href"] for lk in links if lk["rel"] == "next"), None)
    prev = next((lk["href"] for lk in links if lk["rel"] == "prev"), None)
    return html_response(
        "items.html",
        headers=headers,
        title=f"{v.layer.title_zh} {v.layer.title} — 要素 items",
        minimap=svg_map(feats, v.layer.style.color) if crs_uri == CRS84.uri else None,
        root=L.base(request),
        collection=v.layer.name,
        fields=q.fields,
        features=feats,
        number_matched=page.matched,
        number_returned=len(feats),
        offset=q.offset,
        next=nxt,
        prev=prev,
        crs=crs_uri,
        links=[lk for lk in links if lk["rel"] not in ("next", "prev")],
    )


def _summary(geometry: dict[str, Any] | None) -> str:
    """A short description of a GeoJSON geometry for the HTML view."""
    if not geometry:
        return ""
    kind = geometry.get("type", "")
    coords = geometry.get("coordinates")
    if kind == "Point" and coords:
        return f"Point ({coords[0]:.6f}, {coords[1]:.6f})"
    flat = orjson.dumps(coords).count(b"],[") + 1 if coords else 0
    return f"{kind} (about {flat} vertices)"
