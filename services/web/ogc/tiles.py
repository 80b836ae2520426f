"""OGC API Tiles: tile matrix sets, tileset metadata, TileJSON and Mapbox Vector Tiles.

* ``/tileMatrixSets`` and ``/tileMatrixSets/WebMercatorQuad`` (the definition from morecantile);
* per collection: ``/collections/{id}/tiles`` (tilesets), ``.../tiles/WebMercatorQuad`` (tileset
  metadata), ``.../tilejson.json`` and ``.../{tileMatrix}/{tileRow}/{tileCol}`` (MVT, with an optional
  CQL2 ``filter``);
* for the web map: ``/tiles``, ``/tiles/WebMercatorQuad``, its TileJSON, and
  ``/tiles/WebMercatorQuad/{z}/{y}/{x}`` with one layer per collection (``collections=`` to choose).

Tiles are made in PostGIS and kept in the tile cache (services.tiles) until a change of the data touches
them, so a load shows at once and untouched tiles stay warm; the ETag is a hash of the bytes,
``If-None-Match`` gives 304, and Cache-Control allows clients to keep a tile for ``tile_cache_seconds``
(``private`` for identified roles, whose tiles may hold restricted fields).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import morecantile
from fastapi import APIRouter, Path, Query, Request, Response

from layers.catalogue import LAYERS
from services.errors import InvalidParameter, NotFound
from services.identity import Identity
from services.query.cql import FILTER_LANGS
from services.query.crs import CRS84
from services.query.filters import conditions
from services.query.views import CollectionView, field_schema, view
from services.web.deps import APISettingsDep, IdentityDep, ReadPoolDep
from services.web.ogc import links as L
from services.web.ogc.collections import resolve
from services.web.ogc.extents import BBox, extent_cache
from services.web.ogc.mvt import MAX_ZOOM, TMS_ID, grid_conditions, tile_fields, tile_sql
from services.web.ogc.render import json_response
from services.web.ogc.tile_response import tile_response

router = APIRouter(tags=["Tiles"])

BINS_QUERY = Query(
    None, alias="bins-above", ge=1, le=100_000,
    description="Aggregate a point layer holding more than this many features in the tile: it is sent as "
    "the layer `<collection>_bins`, one point per 64-unit cell with `n` and `n_<class>` (counts by risk "
    "level for sources; `n_none`: not graded), computed in PostGIS. Without it every feature is sent, up "
    "to the tile's feature cap.",
)

WEB_MERCATOR_URI = "http://www.opengis.net/def/crs/EPSG/0/3857"
#: Drawing order of the multi-layer tile: areas, then lines, then points.
_ORDER = {"MultiPolygon": 0, "LineString": 1, "Point": 2}
_DIMENSION = {"Point": 0, "LineString": 1, "MultiPolygon": 2}
_TILEJSON_TYPES = {
    "text": "String",
    "int": "Number",
    "float": "Number",
    "bool": "Boolean",
    "date": "String",
    "timestamp": "String",
}

TMS_PATH = Path(description="Tile matrix set; only WebMercatorQuad is offered")
Z_PATH = Path(ge=0, le=MAX_ZOOM, description="Zoom level (tile matrix)")
ROW_PATH = Path(ge=0, le=2**MAX_ZOOM - 1, description="Tile row, from the top")
_PROPERTIES_DOC = (
    "Comma-separated properties to put in the tile (default: the id, name, jurisdiction codes, "
    "enumerated, numeric and boolean fields)"
)
COL_PATH = Path(ge=0, le=2**MAX_ZOOM - 1, description="Tile column, from the left")


@cache
def web_mercator_quad() -> morecantile.TileMatrixSet:
    return morecantile.tms.get(TMS_ID)


@router.get("/tileMatrixSets", summary="Tile matrix sets")
async def tile_matrix_sets(request: Request) -> Response:
    tms = web_mercator_quad()
    return json_response(
        {
            "tileMatrixSets": [
                {
                    "id": TMS_ID,
                    "title": tms.title,
                    "uri": str(tms.uri),
                    "links": [
                        L.link(L.url(request, f"/tileMatrixSets/{TMS_ID}"), "self", L.JSON, tms.title),
                        L.link(
                            L.url(request, f"/tileMatrixSets/{TMS_ID}"),
                            L.REL_TILING_SCHEME,
                            L.JSON,
                            tms.title,
                        ),
                    ],
                }
            ]
        }
    )


@router.get(
    "/tileMatrixSets/{tileMatrixSetId}",
    summary="A tile matrix set's definition",
    responses={404: {"description": "No such tile matrix set"}},
)
async def tile_matrix_set(tileMatrixSetId: str = TMS_PATH) -> Response:  # noqa: N803
    _check_tms(tileMatrixSetId)
    return json_response(web_mercator_quad().model_dump(mode="json", exclude_none=True))


@router.get(
    "/collections/{collectionId}/tiles",
    summary="Vector tilesets of a collection",
    responses={404: {"description": "No such collection"}},
)
async def collection_tilesets(request: Request, collectionId: str, identity: IdentityDep) -> Response:  # noqa: N803
    v = resolve(collectionId, identity)
    base = f"/collections/{v.layer.name}/tiles"
    return json_response(
        {
            "links": [L.link(L.url(request, base), "self", L.JSON, f"{v.layer.title} tilesets")],
            "tilesets": [_tileset_summary(request, base, v.layer.title)],
        }
    )


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}",
    summary="Tileset metadata of a collection",
    responses={404: {"description": "No such collection or tile matrix set"}},
)
async def collection_tileset(
    request: Request,
    pool: ReadPoolDep,
    identity: IdentityDep,
    collectionId: str,  # noqa: N803
    tileMatrixSetId: str = TMS_PATH,
) -> Response:  # noqa: N803
    v = resolve(collectionId, identity)
    _check_tms(tileMatrixSetId)
    extents = await extent_cache(request).get(pool, [v.layer])
    return json_response(
        _tileset(
            request, f"/collections/{v.layer.name}/tiles", v.layer.title, [v], _union([extents[v.layer.name]])
        )
    )


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}/tilejson.json",
    summary="TileJSON of a collection",
    responses={404: {"description": "No such collection or tile matrix set"}},
)
async def collection_tilejson(
    request: Request,
    pool: ReadPoolDep,
    identity: IdentityDep,
    collectionId: str,  # noqa: N803
    tileMatrixSetId: str = TMS_PATH,
) -> Response:  # noqa: N803
    v = resolve(collectionId, identity)
    _check_tms(tileMatrixSetId)
    extents = await extent_cache(request).get(pool, [v.layer])
    return json_response(
        _tilejson(
            request,
            f"/collections/{v.layer.name}/tiles/{TMS_ID}",
            v.layer.title,
            [v],
            _union([extents[v.layer.name]]),
        )
    )


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    summary="A vector tile of a collection",
    responses={
        200: {"content": {L.MVT: {}}},
        204: {"description": "No feature in this tile"},
        304: {"description": "Not modified (If-None-Match)"},
        404: {"description": "No such collection or tile matrix set"},
    },
)
async def collection_tile(
    request: Request,
    pool: ReadPoolDep,
    identity: IdentityDep,
    settings: APISettingsDep,
    collectionId: str,  # noqa: N803
    tileMatrixSetId: str = TMS_PATH,  # noqa: N803
    tileMatrix: int = Z_PATH,  # noqa: N803
    tileRow: int = ROW_PATH,  # noqa: N803
    tileCol: int = COL_PATH,  # noqa: N803
    filter: str | None = Query(None, description="CQL2 filter on the collection's queryables"),  # noqa: A002
    filter_lang: str | None = Query(
        None, alias="filter-lang", json_schema_extra={"enum": list(FILTER_LANGS)}
    ),
    filter_crs: str | None = Query(None, alias="filter-crs"),
    properties: str | None = Query(None, description=_PROPERTIES_DOC),
    bins_above: int | None = BINS_QUERY,
) -> Response:
    v = resolve(collectionId, identity)
    _check_tile(tileMatrixSetId, tileMatrix, tileRow, tileCol)
    where = []
    if filter is not None and filter.strip():
        where = conditions(v, None, None, filter, filter_lang, filter_crs, (), settings.max_filter_depth)
    grid_where = (grid_conditions(v, filter, filter_lang, filter_crs, settings.max_filter_depth)
                  if bins_above and settings.bin_grid else None)
    clause = tile_sql(
        [v], tileMatrix, tileCol, tileRow, settings.tile_max_features, where, _names(properties), bins_above,
        grid_where,
    )
    return await tile_response(request, pool, clause, identity, settings.tile_cache_seconds, views=[v],
                               z=tileMatrix, x=tileCol, y=tileRow,
                               variant=("collection", filter, filter_lang, filter_crs, properties, bins_above,
                                        settings.tile_max_features, grid_where is not None))


@router.get("/tiles", summary="Vector tilesets of all collections together (for the web map)")
async def dataset_tilesets(request: Request) -> Response:
    return json_response(
        {
            "links": [L.link(L.url(request, "/tiles"), "self", L.JSON, "tilesets")],
            "tilesets": [_tileset_summary(request, "/tiles", "All layers")],
        }
    )


@router.get(
    "/tiles/{tileMatrixSetId}",
    summary="Tileset metadata of all collections",
    responses={404: {"description": "No such tile matrix set"}},
)
async def dataset_tileset(
    request: Request, pool: ReadPoolDep, identity: IdentityDep, tileMatrixSetId: str = TMS_PATH
) -> Response:  # noqa: N803
    _check_tms(tileMatrixSetId)
    views = _views(None, identity)
    extents = await extent_cache(request).get(pool, [v.layer for v in views])
    return json_response(_tileset(request, "/tiles", "All layers", views, _union(extents.values())))


@router.get(
    "/tiles/{tileMatrixSetId}/tilejson.json",
    summary="TileJSON of all collections",
    responses={404: {"description": "No such tile matrix set"}},
)
async def dataset_tilejson(
    request: Request,
    pool: ReadPoolDep,
    identity: IdentityDep,
    tileMatrixSetId: str = TMS_PATH,  # noqa: N803
    collections: str | None = Query(None, description="Comma-separated collections"),
) -> Response:
    _check_tms(tileMatrixSetId)
    views = _views(collections, identity)
    extents = await extent_cache(request).get(pool, [v.layer for v in views])
    doc = _tilejson(request, f"/tiles/{TMS_ID}", "riskatlas", views, _union(extents.values()))
    if collections:
        doc["tiles"] = [t + "?collections=" + ",".join(v.layer.name for v in views) for t in doc["tiles"]]
    return json_response(doc)


@router.get(
    "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    summary="A vector tile of all collections",
    responses={
        200: {"content": {L.MVT: {}}},
        204: {"description": "No feature in this tile"},
        304: {"description": "Not modified (If-None-Match)"},
        404: {"description": "No such tile matrix set"},
    },
)
async def dataset_tile(
    request: Request,
    pool: ReadPoolDep,
    identity: IdentityDep,
    settings: APISettingsDep,
    tileMatrixSetId: str = TMS_PATH,  # noqa: N803
    tileMatrix: int = Z_PATH,  # noqa: N803
    tileRow: int = ROW_PATH,  # noqa: N803
    tileCol: int = COL_PATH,  # noqa: N803
    collections: str | None = Query(None, description="Comma-separated collections (default: all)"),
    bins_above: int | None = BINS_QUERY,
) -> Response:
    _check_tile(tileMatrixSetId, tileMatrix, tileRow, tileCol)
    views = _views(collections, identity)
    grid_where = [] if bins_above and settings.bin_grid else None
    clause = tile_sql(views, tileMatrix, tileCol, tileRow, settings.tile_max_features, bins_above=bins_above,
                      grid_where=grid_where)
    return await tile_response(request, pool, clause, identity, settings.tile_cache_seconds, views=views,
                               z=tileMatrix, x=tileCol, y=tileRow,
                               variant=("dataset", bins_above, settings.tile_max_features, grid_where is not None))


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [p.strip() for p in value.split(",") if p.strip()]


def _check_tms(tms_id: str) -> None:
    if tms_id != TMS_ID:
        shown = tms_id if len(tms_id) <= 60 else tms_id[:60] + "..."
        raise NotFound(f"tile matrix set {shown!r} is not offered; use {TMS_ID!r}")


def _check_tile(tms_id: str, z: int, row: int, col: int) -> None:
    _check_tms(tms_id)
    n = 2**z
    if row >= n or col >= n:
        raise InvalidParameter(
            f"tile {z}/{row}/{col} does not exist: at zoom {z} rows and columns are expected "
            f"within 0..{n - 1}"
        )


def _views(collections: str | None, identity: Identity) -> list[CollectionView]:
    if collections is None or not collections.strip():
        names = list(LAYERS)
    else:
        names = []
        for name in (p.strip() for p in collections.split(",")):
            if not name:
                continue
            if name not in LAYERS:
                raise InvalidParameter(
                    f"`collections`: {name[:60]!r} is not a collection; the collections are {sorted(LAYERS)}"
                )
            if name not in names:
                names.append(name)
    views = [view(LAYERS[n], identity) for n in names]
    return sorted(views, key=lambda v: _ORDER[v.layer.geometry_type])


def _union(boxes: Any) -> BBox | None:
    present = [b for b in boxes if b]
    if not present:
        return None
    return (
        min(b[0] for b in present),
        min(b[1] for b in present),
        max(b[2] for b in present),
        max(b[3] for b in present),
    )


def _tileset_summary(request: Request, base: str, title: str) -> dict[str, Any]:
    tms = web_mercator_quad()
    return {
        "title": f"{title} ({TMS_ID})",
        "dataType": "vector",
        "crs": WEB_MERCATOR_URI,
        "tileMatrixSetURI": str(tms.uri),
        "links": [
            L.link(L.url(request, f"{base}/{TMS_ID}"), "self", L.JSON, "tileset metadata"),
            L.link(L.url(request, f"/tileMatrixSets/{TMS_ID}"), L.REL_TILING_SCHEME, L.JSON, TMS_ID),
        ],
    }


def _tileset(
    request: Request, base: str, title: str, views: list[CollectionView], box: BBox | None
) -> dict[str, Any]:
    tms = web_mercator_quad()
    template = L.base(request) + f"{base}/{TMS_ID}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
    doc: dict[str, Any] = {
        "title": title,
        "dataType": "vector",
        "crs": WEB_MERCATOR_URI,
        "tileMatrixSetURI": str(tms.uri),
        "links": [
            L.link(L.url(request, f"{base}/{TMS_ID}"), "self", L.JSON, "this tileset"),
            L.link(L.url(request, f"/tileMatrixSets/{TMS_ID}"), L.REL_TILING_SCHEME, L.JSON, TMS_ID),
            L.link(template, "item", L.MVT, "Mapbox vector tiles", templated=True),
            L.link(L.url(request, f"{base}/{TMS_ID}/tilejson.json"), "describedby", L.JSON, "TileJSON"),
        ],
        "layers": [
            {
                "id": v.layer.name,
                "title": v.layer.title,
                "dataType": "vector",
                "geometryDimension": _DIMENSION[v.layer.geometry_type],
                "propertiesSchema": {
                    "type": "object",
                    "properties": {f.name: field_schema(f) for f in v.fields if f.name in tile_fields(v)},
                },
            }
            for v in views
        ],
    }
    if box:
        doc["boundingBox"] = {"lowerLeft": [box[0], box[1]], "upperRight": [box[2], box[3]], "crs": CRS84.uri}
    return doc


def _fitting_zoom(bounds: list[float]) -> int:
    """The deepest zoom at which ``bounds`` (lon/lat) spans at most 1,024 pixels (so 512 or more): a city's
    data opens near z10, a province's near z8, China's at z4, the world's at z2 (TileJSON's centre is
    where a client starts)."""
    span = max(bounds[2] - bounds[0], (bounds[3] - bounds[1]) * 1.2, 1e-6)
    return int(max(0, min(14, math.floor(math.log2(1440.0 / span)))))


def _tilejson(
    request: Request, base: str, name: str, views: list[CollectionView], box: BBox | None
) -> dict[str, Any]:
    bounds = list(box) if box else [-180.0, -85.0511287798066, 180.0, 85.0511287798066]
    return {
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [L.base(request) + base + "/{z}/{y}/{x}"],
        "minzoom": 0,
        "maxzoom": 22,
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, _fitting_zoom(bounds)],
        "vector_layers": [
            {
                "id": v.layer.name,
                "description": f"{v.layer.title} ({v.layer.title_zh})",
                "minzoom": 0,
                "maxzoom": 22,
                "fields": {
                    f.name: _TILEJSON_TYPES.get(f.type, "String")
                    for f in v.fields
                    if f.name in tile_fields(v)
                },
            }
            for v in views
        ],
    }
