"""The MapLibre GL style of the planner's map, made from the style document.

Two vector sources from the service's own tiles: ``base`` (the OGC API multi-layer tile, one MVT layer
per collection) and ``risk`` (``/map/tiles/risk_source``: the collection's tiles from the same builder
with only the properties the map draws with, whose URL the viewer changes to carry a CQL2 ``filter``
when the planner filters, so the server filters before its per-tile cap), a
GeoJSON source for the border-zone hazard flags, and an optional raster basemap.  No glyphs or sprite
are needed: labels are HTML markers and the risk-source shapes are SDF icons the viewer draws itself
(``shape-<name>`` images), so everything the map loads comes from the app.
"""

from __future__ import annotations

from typing import Any

from maps.basemaps import Basemap
from maps.basemaps import basemaps as available_basemaps
from maps.styles import style_document

BASE_COLLECTIONS = ("admin_area", "protected_area", "protection_zone", "river", "monitoring_station",
                    "water_reserve")
TILE_MAXZOOM = 16
BACKGROUND = "#f5f4ef"
EMPTY_GEOJSON: dict[str, Any] = {"type": "FeatureCollection", "features": []}


def match(field: str, palette: dict[str, str], fallback: str) -> Any:
    """A MapLibre ``match`` expression giving each value of ``field`` its colour."""
    if not palette:
        return fallback
    pairs: list[Any] = []
    for value, colour in palette.items():
        pairs += [value, colour]
    return ["match", ["coalesce", ["to-string", ["get", field]], ""], *pairs, fallback]


def _by_zoom(low: float, high: float) -> list[Any]:
    """A width or radius growing from ``low`` at zoom 6 to ``high`` at zoom 14."""
    return ["interpolate", ["linear"], ["zoom"], 6, low, 14, high]


def _admin_layers(s: dict[str, Any]) -> list[dict[str, Any]]:
    colour = s["color"]
    common = {"source": "base", "source-layer": "admin_area"}
    return [
        {"id": "admin_area-fill", "type": "fill", **common, "filter": ["==", ["get", "level"], "city"],
         "paint": {"fill-color": BACKGROUND, "fill-opacity": 0}},
        {"id": "admin_area-county", "type": "line", **common, "filter": ["==", ["get", "level"], "county"],
         "minzoom": 7, "paint": {"line-color": colour, "line-width": s["weight"] * 0.5, "line-opacity": 0.6,
                                 "line-dasharray": [3, 2]}},
        {"id": "admin_area-city", "type": "line", **common, "filter": ["==", ["get", "level"], "city"],
         "paint": {"line-color": colour, "line-width": _by_zoom(s["weight"], s["weight"] * 2.2)}},
        {"id": "admin_area-province", "type": "line", **common, "filter": ["==", ["get", "level"], "province"],
         "paint": {"line-color": colour, "line-width": _by_zoom(s["weight"] * 2.2, s["weight"] * 3.5),
                   "line-opacity": 0.8}},
        {"id": "admin_area-selected", "type": "line", **common, "filter": ["in", ["get", "code"], ["literal", []]],
         "paint": {"line-color": "#e08214", "line-width": 3.5}},
    ]


def _area_layers(name: str, s: dict[str, Any]) -> list[dict[str, Any]]:
    by = s.get("color_by")
    fill = match(by, s["palette"], s["fill"]) if by else s["fill"]
    line = match(by, s["palette"], s["color"]) if by else s["color"]
    common = {"source": "base", "source-layer": name}
    return [
        {"id": f"{name}-fill", "type": "fill", **common,
         "paint": {"fill-color": fill, "fill-opacity": s["fill_opacity"]}},
        {"id": f"{name}-line", "type": "line", **common,
         "paint": {"line-color": line, "line-width": s["weight"] * 0.8, "line-opacity": s["opacity"]}},
    ]


def _river_layer(s: dict[str, Any]) -> dict[str, Any]:
    width = ["match", ["get", "river_class"], "yangtze-main", 2.5, "major", 1.4, "canal", 1.0, 0.7]
    return {"id": "river", "type": "line", "source": "base", "source-layer": "river",
            "layout": {"line-cap": "round", "line-join": "round"},
            "paint": {"line-color": s["color"], "line-opacity": s["opacity"],
                      "line-width": ["interpolate", ["linear"], ["zoom"], 6, ["*", width, s["weight"] * 0.6],
                                     14, ["*", width, s["weight"] * 2]]}}


def _point_layer(name: str, s: dict[str, Any]) -> dict[str, Any]:
    return {"id": name, "type": "circle", "source": "base", "source-layer": name,
            "paint": {"circle-color": s["color"], "circle-radius": _by_zoom(s["radius"] * 0.6, s["radius"] * 1.3),
                      "circle-stroke-color": "#ffffff", "circle-stroke-width": 1, "circle-opacity": s["opacity"]}}


#: A risk-source tile holding more sources than this comes as counts per cell (``risk_source_bins``, made in
#: PostGIS), so a national inventory draws at regional zoom without sending every point; the demo's tiles
#: never hold as many, so it always shows its single sites.
BINS_ABOVE = 4000

#: Below this zoom risk sources are dots coloured by level (tens of thousands of icons would take seconds to
#: place and their shapes cannot be told apart at that scale); from it on, shapes by category.
SHAPES_FROM_ZOOM = 9


def _risk_dots(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "risk_source-dot", "type": "circle", "source": "risk", "source-layer": "risk_source",
        "maxzoom": SHAPES_FROM_ZOOM,
        "layout": {"circle-sort-key": ["match", ["get", "risk_level"], "major", 3, "larger", 2, "general", 1, 0]},
        "paint": {"circle-color": match(s["color_by"], s["palette"], s["missing_color"]),
                  "circle-radius": ["interpolate", ["linear"], ["zoom"], 5, 1.6, SHAPES_FROM_ZOOM, 3.6],
                  "circle-stroke-color": "#ffffff", "circle-stroke-width": 0.4, "circle-opacity": s["opacity"]},
    }


def _risk_bins(s: dict[str, Any]) -> dict[str, Any]:
    """The cells of a binned risk-source tile: a disc growing with the count, coloured by the highest level
    in it (its counts by level in the popup)."""
    palette = s["palette"]
    colour = ["case", [">", ["get", "n_major"], 0], palette["major"], [">", ["get", "n_larger"], 0], palette["larger"],
              [">", ["get", "n_general"], 0], palette["general"], s["missing_color"]]
    return {
        "id": "risk_source-bins", "type": "circle", "source": "risk", "source-layer": "risk_source_bins",
        "layout": {"circle-sort-key": ["get", "n"]},
        "paint": {"circle-color": colour, "circle-opacity": 0.8, "circle-stroke-color": "#ffffff",
                  "circle-stroke-width": 0.8,
                  "circle-radius": ["interpolate", ["linear"], ["sqrt", ["get", "n"]], 1, 2.5, 10, 6, 40, 13]},
    }


def _risk_layer(s: dict[str, Any]) -> dict[str, Any]:
    shape = ["match", ["get", s["shape_by"]]]
    for value, name in s["shapes"].items():
        shape += [value, f"shape-{name}"]
    shape.append("shape-circle")
    return {
        "id": "risk_source", "type": "symbol", "source": "risk", "source-layer": "risk_source",
        "minzoom": SHAPES_FROM_ZOOM,
        "layout": {"icon-image": shape, "icon-allow-overlap": True, "icon-ignore-placement": True,
                   "icon-size": ["interpolate", ["linear"], ["zoom"], SHAPES_FROM_ZOOM, 0.45, 14, 0.8],
                   "symbol-sort-key": ["match", ["get", "risk_level"], "major", 3, "larger", 2, "general", 1, 0]},
        "paint": {"icon-color": match(s["color_by"], s["palette"], s["missing_color"]),
                  "icon-halo-color": "#ffffff", "icon-halo-width": 1.2, "icon-opacity": s["opacity"]},
    }


def _flag_layer(f: dict[str, Any]) -> dict[str, Any]:
    """A hollow symbol around each flagged source: its shape the kind of flag, its colour the severity;
    small at regional zoom so that neighbouring flags stay apart, high severity drawn on top."""
    shape: list[Any] = ["match", ["get", "kind"]]
    for kind in f["kinds"]:
        shape += [kind, f"shape-flag-{kind}"]
    shape.append("shape-flag-city-border")
    return {"id": "flags", "type": "symbol", "source": "flags",
            "layout": {"icon-image": shape, "icon-allow-overlap": True, "icon-ignore-placement": True,
                       "icon-size": ["interpolate", ["linear"], ["zoom"], 6, 0.45, 10, 0.75, 14, 1.1],
                       "symbol-sort-key": ["match", ["get", "severity"], "high", 3, "medium", 2, 1]},
            "paint": {"icon-color": match(f["color_by"], f["palette"], f["color"]), "icon-opacity": f["opacity"],
                      "icon-halo-color": "#ffffff", "icon-halo-width": 0.8}}


def basemap_layer_ids(b: Basemap) -> list[str]:
    """The style layers of a raster basemap, bottom to top (``bm-<name>-<i>``)."""
    return [f"bm-{b.name}-{i}" for i in range(len(b.tiles))]


def map_style(base_url: str, basemap_url: str | None = None, attribution: str = "",
              bounds: tuple[float, float, float, float] | None = None,
              basemaps: list[Basemap] | None = None, bins_above: int = BINS_ABOVE) -> dict[str, Any]:
    """The MapLibre style (spec v8) for a service at ``base_url`` (absolute, no trailing slash).

    A risk-source tile holding more than ``bins_above`` sources comes as counts per cell.

    ``basemaps`` (:func:`maps.basemaps.basemaps`) become raster layers above the background, hidden:
    the viewer's switcher shows one of them, or none for the offline reference map. ``basemap_url``
    alone is the "custom" preset.
    """
    if basemaps is None:
        basemaps = available_basemaps((), None, basemap_url)
    doc = style_document()
    ls = doc["layers"]
    tiles = "/tiles/WebMercatorQuad/{z}/{y}/{x}"
    sources: dict[str, Any] = {
        "base": {"type": "vector", "tiles": [f"{base_url}{tiles}?collections={','.join(BASE_COLLECTIONS)}"],
                 "maxzoom": TILE_MAXZOOM, "attribution": attribution},
        "risk": {"type": "vector",
                 "tiles": [f"{base_url}/map/tiles/risk_source/{{z}}/{{y}}/{{x}}?bins-above={bins_above}"],
                 "maxzoom": TILE_MAXZOOM},
        "flags": {"type": "geojson", "data": EMPTY_GEOJSON, "promoteId": "id"},
        "selected": {"type": "geojson", "data": EMPTY_GEOJSON},
    }
    if bounds:
        for name in ("base", "risk"):
            sources[name]["bounds"] = list(bounds)
    layers: list[dict[str, Any]] = [{"id": "background", "type": "background",
                                     "paint": {"background-color": BACKGROUND}}]
    for b in basemaps:
        if not b.available:
            continue
        for layer_id, urls in zip(basemap_layer_ids(b), b.tiles, strict=True):
            sources[layer_id] = {"type": "raster", "tiles": list(urls), "tileSize": 256, "attribution": b.attribution}
            layers.append({"id": layer_id, "type": "raster", "source": layer_id, "layout": {"visibility": "none"},
                           "paint": {"raster-opacity": 0.9}})
    layers += _admin_layers(ls["admin_area"])
    layers += _area_layers("protected_area", ls["protected_area"])
    layers += _area_layers("protection_zone", ls["protection_zone"])
    layers.append(_river_layer(ls["river"]))
    layers.append(_point_layer("monitoring_station", ls["monitoring_station"]))
    layers.append(_point_layer("water_reserve", ls["water_reserve"]))
    layers.append(_flag_layer(doc["flags"]))
    layers.append(_risk_bins(ls["risk_source"]))
    layers.append(_risk_dots(ls["risk_source"]))
    layers.append(_risk_layer(ls["risk_source"]))
    layers.append({"id": "selected", "type": "circle", "source": "selected",
                   "paint": {"circle-radius": 13, "circle-opacity": 0, "circle-stroke-color": "#e08214",
                             "circle-stroke-width": 3}})
    return {"version": 8, "name": "riskatlas", "sources": sources, "layers": layers}


#: Which style layers belong to each entry of the layer switcher.
SWITCHER: dict[str, tuple[str, ...]] = {
    "admin_area": ("admin_area-county", "admin_area-city", "admin_area-province"),
    "protected_area": ("protected_area-fill", "protected_area-line"),
    "protection_zone": ("protection_zone-fill", "protection_zone-line"),
    "river": ("river",),
    "monitoring_station": ("monitoring_station",),
    "water_reserve": ("water_reserve",),
    "risk_source": ("risk_source-bins", "risk_source-dot", "risk_source"),
    "flags": ("flags",),
}
