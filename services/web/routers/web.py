"""The web pages: the planner's map ``/map``, report maps, and their static files (the phone page: ``mobile``).

Everything a page loads is served here (``/static`` from ``maps/static``, MapLibre included), so the
pages work on a network with no internet.  ``/styles.json`` is the one style document (made from the
layer catalogue) that the viewer and the folium report maps share; ``/map/style.json`` is the MapLibre
style made from it for this service's tiles.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from psycopg.rows import dict_row

from layers.catalogue import RISK_SOURCE
from maps import pages
from maps.basemaps import OFFLINE, basemaps
from maps.maplibre import map_style
from maps.overview import MapInputError, UnknownCity, build_overview
from maps.styles import style_document
from services.errors import InvalidParameter, NotFound
from services.query.filters import conditions
from services.query.views import CollectionView, view
from services.web.deps import APISettingsDep, DBSettingsDep, IdentityDep, ReadPoolDep
from services.web.limits import apply_budget
from services.web.ogc.mvt import MAX_ZOOM, grid_conditions, tile_sql
from services.web.ogc.render import json_response
from services.web.ogc.tile_response import tile_response
from services.web.ogc.tiles import BINS_QUERY

router = APIRouter(tags=["Web"])
router.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")

#: What the web map's risk-source tiles carry: enough to draw a source and find its record; the popup reads
#: the rest from the items endpoint. A tile of 20,000 sources is then about a third of the full one.
MAP_TILE_FIELDS = ("key", "category", "risk_level", "city_code")
MVT = "application/vnd.mapbox-vector-tile"

#: Pages change with the code, not the data: let browsers keep them briefly.
PAGE_HEADERS = {"Cache-Control": "no-cache"}


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/map", response_class=HTMLResponse, summary="The planner's web map")
async def web_map(request: Request, settings: APISettingsDep,
                  lang: str = Query("zh", pattern="^(zh|en)$")) -> HTMLResponse:
    return HTMLResponse(pages.map_page(_root(request), lang, True, settings.max_limit), headers=PAGE_HEADERS)


@router.get("/styles.json", summary="Cartography of every layer, from the layer catalogue")
async def styles() -> Response:
    return json_response(style_document())


@router.get("/map/style.json", summary="MapLibre style of the web map over this service's vector tiles")
async def maplibre_style(request: Request, pool: ReadPoolDep, settings: APISettingsDep) -> Response:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await apply_budget(conn, None)
        values = [r["value"] for r in await (await cur.execute(pages.CREDITS_SQL)).fetchall()]
    base = str(request.base_url).rstrip("/")
    return json_response(map_style(base, attribution=pages.credits(values), basemaps=_basemaps(settings),
                                   bins_above=settings.map_bins_above))


def _basemaps(settings: Any) -> list[Any]:
    return basemaps(settings.basemaps, settings.tianditu_key, settings.basemap_url)


@router.get("/map/basemaps.json", summary="The basemaps of the web map: the offline one first, then the presets on")
async def basemap_list(settings: APISettingsDep) -> Response:
    return json_response({"default": OFFLINE, "basemaps": [b.to_dict() for b in _basemaps(settings)]})


@router.get("/map/labels.json", summary="Label points and extents of the cities and counties")
async def labels(pool: ReadPoolDep) -> Response:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await apply_budget(conn, None)
        rows: list[dict[str, Any]] = await (await cur.execute(pages.LABELS_SQL)).fetchall()
    return json_response(pages.labels_document(rows))


@router.get("/maps/overview.html", response_class=HTMLResponse,
            summary="A self-contained report map (folium) of one city",
            responses={400: {"description": "Unknown layer"}, 404: {"description": "Unknown city"}})
async def overview(
    db_settings: DBSettingsDep, settings: APISettingsDep, identity: IdentityDep,
    city: str = Query(..., min_length=1, max_length=12, description="City code (GB/T 2260), e.g. 320100"),
    layers: str | None = Query(None, description="Comma-separated layers (default: all)"),
    flags: bool = Query(False, description="Add the border-zone hazard flags"),
) -> HTMLResponse:
    names = [p.strip() for p in layers.split(",") if p.strip()] if layers else None
    try:
        report = await run_in_threadpool(build_overview, db_settings, city, names, flags=flags,
                                         restricted=identity.sees_restricted, basemap_url=settings.basemap_url,
                                         context=identity.context)
    except UnknownCity as exc:
        raise NotFound(str(exc)) from None
    except MapInputError as exc:
        raise InvalidParameter(str(exc)) from None
    return HTMLResponse(report.html, headers={"Cache-Control": "private, no-store"})


@router.get("/map/tiles/risk_source/{z}/{y}/{x}", summary="Lean risk-source vector tiles of the web map",
            description="The collection's tiles (same builder, same CQL2 `filter` on every queryable) with only "
                        f"{list(MAP_TILE_FIELDS)} as properties.",
            responses={200: {"content": {MVT: {}}}, 204: {"description": "No feature in this tile"}})
async def risk_tiles(
    request: Request, pool: ReadPoolDep, identity: IdentityDep, settings: APISettingsDep,
    z: int = Path(ge=0, le=MAX_ZOOM), y: int = Path(ge=0), x: int = Path(ge=0),
    filter: str | None = Query(None, description="CQL2 text filter on the risk sources' queryables"),  # noqa: A002
    bins_above: int | None = BINS_QUERY,
) -> Response:
    if x >= 2**z or y >= 2**z:
        raise InvalidParameter(f"tile {z}/{y}/{x} does not exist: y (row) and x (column) are within 0..{2**z - 1}")
    full = view(RISK_SOURCE, identity)
    lean = CollectionView(RISK_SOURCE, tuple(f for f in full.fields if f.name in MAP_TILE_FIELDS),
                          via_visible=any(f.restricted for f in full.fields))
    where = conditions(full, None, None, filter, None, None, (), settings.max_filter_depth) if filter else []
    grid_where = (grid_conditions(full, filter, None, None, settings.max_filter_depth)
                  if bins_above and settings.bin_grid else None)
    clause = tile_sql([lean], z, x, y, settings.tile_max_features, where, bins_above=bins_above, grid_where=grid_where)
    return await tile_response(request, pool, clause, identity, settings.tile_cache_seconds, views=[lean],
                               z=z, x=x, y=y, variant=("map", filter, bins_above, settings.tile_max_features, grid_where is not None))
