"""``/collections`` and ``/collections/{collectionId}``: every vector layer of the catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from gis.crs import CRS84
from layers.catalogue import LAYERS, Layer
from services.errors import NotFound
from services.identity import Identity
from services.observations.features import collection_document
from services.query.crs import SUPPORTED_URIS
from services.query.simplify import SIMPLIFY_DOC, ZOOM_DOC
from services.query.views import CollectionView, view
from services.web.deps import IdentityDep, ReadPoolDep
from services.web.ogc import links as L
from services.web.ogc.extents import BBox, extent_cache
from services.web.ogc.negotiation import output_format, schema_media_type
from services.web.ogc.render import html_response, json_response

router = APIRouter(tags=["Collections"])

F_QUERY = Query(
    None,
    description="Output format: `json` or `html` (default: from the Accept header, else json)",
    json_schema_extra={"enum": ["json", "html"]},
)


def resolve(collection_id: str, identity: Identity) -> CollectionView:
    """The collection ``collection_id`` as ``identity`` sees it; 404 naming the collections otherwise."""
    layer = LAYERS.get(collection_id)
    if layer is None:
        shown = collection_id if len(collection_id) <= 80 else collection_id[:80] + "..."
        raise NotFound(f"collection {shown!r} does not exist; the collections are {sorted(LAYERS)}")
    return view(layer, identity)


def collection_doc(request: Request, layer: Layer, bbox: BBox | None, fmt: str = "json") -> dict[str, Any]:
    """The collection's metadata document (OGC API Features Part 1 and 2, Tiles)."""
    base = f"/collections/{layer.name}"
    extra: dict[str, Any] = {}
    if layer.geometry_type != "Point":
        # lines and areas: the items' geometry can be simplified for display (points are never)
        extra["simplification"] = {
            "parameters": {"simplify": SIMPLIFY_DOC, "zoom": ZOOM_DOC},
            "example": L.url(request, base + "/items", {"zoom": "8", "f": "json"}),
        }
    spatial: dict[str, Any] = {
        "bbox": [list(bbox) if bbox else [-180.0, -90.0, 180.0, 90.0]],
        "crs": CRS84.uri,
    }
    return {
        "id": layer.name,
        "title": layer.title,
        "description": f"{layer.description} ({layer.title_zh})",
        "itemType": "feature",
        "extent": {"spatial": spatial},
        "crs": SUPPORTED_URIS,
        "storageCrs": CRS84.uri,
        "links": L.self_and_alternate(request, base, L.JSON, fmt, title=layer.title)
        + [
            L.link(
                L.url(request, base + "/items", {"f": "json"}), "items", L.GEOJSON, f"{layer.title} items"
            ),
            L.link(
                L.url(request, base + "/items", {"f": "html"}),
                "items",
                L.HTML,
                f"{layer.title} items as HTML",
            ),
            L.link(
                L.url(request, base + "/queryables"),
                "queryables",
                L.SCHEMA,
                "Queryables (GDAL and older clients)",
            ),
            L.link(L.url(request, base + "/queryables"), L.REL_QUERYABLES, L.SCHEMA, "Queryables"),
            L.link(L.url(request, base + "/schema"), "describedBy", L.SCHEMA, "Schema of the features"),
            L.link(L.url(request, base + "/tiles"), L.REL_TILESETS_VECTOR, L.JSON, "Vector tilesets"),
            L.link(
                L.url(request, base + "/tiles/WebMercatorQuad/tilejson.json"),
                "describedby",
                L.JSON,
                "TileJSON (WebMercatorQuad)",
            ),
        ],
        # Not part of the OGC schema, shown by the HTML view and handy for clients.
        "title_zh": layer.title_zh,
        "geometry_type": layer.geometry_type,
        **extra,
    }


@router.get(
    "/collections", summary="The collections (layers)", responses={200: {"content": {L.JSON: {}, L.HTML: {}}}}
)
async def collections(
    request: Request, pool: ReadPoolDep, identity: IdentityDep, f: str | None = F_QUERY
) -> Response:
    fmt = output_format(request, f)
    extents = await extent_cache(request).get(pool, LAYERS.values())
    docs = [collection_doc(request, layer, extents[layer.name], fmt) for layer in LAYERS.values()]
    # the observations (not a layer of the catalogue: a time-partitioned table read at its stations)
    docs.append(collection_document(L.base(request), extents["monitoring_station"]))
    out = {
        "links": L.self_and_alternate(request, "/collections", L.JSON, fmt, title="collections"),
        "collections": docs,
        "crs": SUPPORTED_URIS,
    }
    if fmt == "html":
        rows = [{**d, "bbox": d["extent"]["spatial"]["bbox"][0] if extents.get(d["id"], True) else None,
                 "queryables": d["id"] in LAYERS} for d in docs]
        return html_response(
            "collections.html",
            title="Collections",
            root=L.base(request),
            collections=rows,
            links=out["links"],
        )
    return json_response(out)


@router.get(
    "/collections/{collectionId}",
    summary="One collection's metadata",
    responses={200: {"content": {L.JSON: {}, L.HTML: {}}}, 404: {"description": "No such collection"}},
)
async def collection(
    request: Request,
    collectionId: str,
    pool: ReadPoolDep,
    identity: IdentityDep,  # noqa: N803
    f: str | None = F_QUERY,
) -> Response:
    v = resolve(collectionId, identity)
    fmt = output_format(request, f)
    extents = await extent_cache(request).get(pool, [v.layer])
    doc = collection_doc(request, v.layer, extents[v.layer.name], fmt)
    if fmt == "html":
        shown = {**doc, "bbox": doc["extent"]["spatial"]["bbox"][0] if extents[v.layer.name] else None}
        return html_response(
            "collection.html",
            title=v.layer.title,
            root=L.base(request),
            c=shown,
            fields=v.fields,
            links=doc["links"],
        )
    return json_response(doc)


@router.get(
    "/collections/{collectionId}/schema",
    summary="JSON Schema of the collection's features",
    responses={200: {"content": {L.SCHEMA: {}}}, 404: {"description": "No such collection"}},
)
async def schema(request: Request, collectionId: str, identity: IdentityDep) -> Response:  # noqa: N803
    v = resolve(collectionId, identity)
    return json_response(
        v.features_schema(L.url(request, f"/collections/{v.layer.name}/schema")), schema_media_type(request)
    )
