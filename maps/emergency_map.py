"""Folium maps of an emergency analysis: a spill's path and receptors, or a plume's threat zones.

Input is the plain GeoJSON result of ``/analysis/spill`` or ``/analysis/plume`` (a dict in WGS84);
nothing here knows the services.  The HTML is self-contained (Leaflet inlined by
:mod:`maps.offline`); with no basemap URL the map shows the result on a plain background, which is
what works on a network with no internet.  Labels are Chinese and English.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import folium

from layers.catalogue import MONITORING_STATION, PROTECTED_AREA, PROTECTION_ZONE, RISK_SOURCE, WATER_RESERVE
from maps.offline import make_offline

__all__ = ["emergency_map", "save_map"]

BEYOND = "<br><small><i>超出模拟范围 beyond the modelled range</i></small>"
WGS84_URIS = ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "http://www.opengis.net/def/crs/EPSG/0/4326",
              "http://www.opengis.net/def/crs/EPSG/0/4490")
RELEASE_COLOR = "#d7191c"
#: Width (px) of the notify panel at the bottom left; the map is fitted to keep the result clear of it.
PANEL_WIDTH = 340
ZONE_COLORS = {"endpoint-1": "#b2182b", "endpoint-2": "#f4a582"}
RECEPTOR_COLORS = {
    "intake": WATER_RESERVE.style.color, "water_reserve": WATER_RESERVE.style.color,
    "protection_zone": PROTECTION_ZONE.style.color, "protected_area": PROTECTED_AREA.style.color,
    "monitoring_station": MONITORING_STATION.style.color, "cross_border_section": "#e66101",
    "risk_source": RISK_SOURCE.style.color,
}
RECEPTOR_LABELS = {
    "intake": "取水口 intake", "protection_zone": "水源保护区 protection zone",
    "cross_border_section": "跨界断面 cross-border section", "monitoring_station": "监测站 station",
    "protected_area": "生态保护区域 protected area", "risk_source": "风险源 risk source",
    "water_reserve": "水源地 water source",
}


def emergency_map(result: dict[str, Any], tiles: str | None = None, attribution: str | None = None,
                  context: dict[str, Any] | None = None) -> folium.Map:
    """A folium map of a spill or plume result (WGS84 coordinates; ValueError otherwise).

    ``tiles`` is an optional XYZ basemap URL (with ``attribution``); none by default. ``context``
    (:func:`maps.emergency_context.emergency_context`) adds the city and county boundaries and names
    under the result. A plume map shows the wind as an arrow at the release point. The map is fitted so
    that nothing of the result lies under the notify panel (bottom left).
    """
    if result.get("crs") not in WGS84_URIS:
        raise ValueError(f"the map needs WGS84 coordinates but the result is in {result.get('crs')!r}; "
                         "ask for output_crs CRS84")
    kind = result.get("analysis")
    if kind not in ("spill", "plume"):
        raise ValueError(f"analysis was {kind!r} but is expected to be 'spill' or 'plume'")
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    if tiles:
        folium.TileLayer(tiles=tiles, attr=attribution or "basemap", name="底图 basemap").add_to(m)
    features = result["features"]
    if context:
        _context_layers(m, context)
    if kind == "spill":
        _spill_layers(m, features)
    else:
        _plume_layers(m, features)
    _release(m, features)
    if kind == "plume":
        _wind(m, result)
    folium.LayerControl(collapsed=False).add_to(m)
    m.get_root().html.add_child(folium.Element(_panel(result)))
    extent = result_extent(result)
    if extent:
        bounds = [[extent[1], extent[0]], [extent[3], extent[2]]]
        # the panel covers the left PANEL_WIDTH pixels at the bottom: keep the result to its right
        m.fit_bounds(bounds, padding_top_left=(PANEL_WIDTH + 30, 20), padding_bottom_right=(20, 20))
    return make_offline(m)


def _context_layers(m: folium.Map, context: dict[str, Any]) -> None:
    """City (heavier) and county outlines in grey, and their names at a point inside each."""
    outlines = folium.FeatureGroup(name="行政区划 boundaries")
    names = folium.FeatureGroup(name="地名 place names")
    for a in context.get("areas", []):
        city = a["level"] == "city"
        folium.GeoJson(a["geometry"], interactive=False, style_function=lambda _, c=city: {
            "color": "#555" if c else "#999", "weight": 2.2 if c else 1, "fill": False,
            "dashArray": None if c else "4 3"}).add_to(outlines)
        size = 13 if city else 11
        label = (f'<div class="ra-place" style="font:{"700" if city else "400"} {size}px sans-serif;color:#333;'
                 f'white-space:nowrap;text-shadow:0 0 3px #fff,0 0 3px #fff;transform:translate(-50%,-50%)">'
                 f'{html.escape(a["name"])}<br><small>{html.escape(a.get("name_en") or "")}</small></div>')
        folium.Marker((a["lat"], a["lon"]), icon=folium.DivIcon(html=label, icon_size=(0, 0)),
                      interactive=False).add_to(names)
    outlines.add_to(m)
    names.add_to(m)


def _wind(m: folium.Map, result: dict[str, Any]) -> None:
    """An arrow at the release pointing downwind, with the wind's direction and speed."""
    model = result.get("model") or {}
    release = next((f for f in result["features"] if f["properties"].get("role") == "release"), None)
    if release is None or model.get("downwind_bearing_deg") is None:
        return
    lon, lat = release["geometry"]["coordinates"][:2]
    bearing = float(model["downwind_bearing_deg"])
    label = (f'<div class="ra-wind" data-bearing="{bearing:.1f}" style="width:64px;height:64px;'
             f'transform:translate(-32px,-32px) rotate({bearing:.1f}deg)">'
             '<svg viewBox="0 0 64 64" width="64" height="64"><path d="M32 4 L42 22 L35 22 L35 60 L29 60 L29 22 '
             'L22 22 Z" fill="#1f4e79" stroke="#fff" stroke-width="1.5"/></svg></div>')
    tip = (f"风 Wind: 来自 from {model.get('wind_from_deg'):.0f}°, {model.get('wind_speed_m_s'):.1f} m/s · "
           f"下风向 downwind {bearing:.0f}°")
    group = folium.FeatureGroup(name="风向 wind")
    folium.Marker((lat, lon), icon=folium.DivIcon(html=label, icon_size=(0, 0)), tooltip=tip).add_to(group)
    group.add_to(m)


def save_map(result: dict[str, Any], path: str | Path, tiles: str | None = None,
             attribution: str | None = None, context: dict[str, Any] | None = None) -> Path:
    """Write :func:`emergency_map` of ``result`` to ``path`` (HTML) and return the path."""
    path = Path(path)
    emergency_map(result, tiles, attribution, context).save(str(path))
    return path


def _spill_layers(m: folium.Map, features: list[dict[str, Any]]) -> None:
    path = folium.FeatureGroup(name="下游路径 downstream path")
    for f in (f for f in features if f["properties"].get("role") == "reach"):
        p = f["properties"]
        tip = (f"{p['river']} {p['reach_key']}<br>进入 enters {p['enters_time']}<br>离开 leaves {p['leaves_time']}"
               f"<br>u {p['velocity_m_s']} m/s, A {p['area_m2']:.0f} m², D {p['dispersion_m2_s']:.0f} m²/s"
               f"<br>末端峰值 peak at end {_num(p.get('end_peak_mg_l'))} mg/L")
        coords = [(lat, lon) for lon, lat in f["geometry"]["coordinates"]]
        folium.PolyLine(coords, color=_reach_color(p), weight=5 if p["mass_share"] > 0.5 else 3, opacity=0.9,
                        tooltip=tip).add_to(path)
    path.add_to(m)
    receptors = folium.FeatureGroup(name="沿程受体 receptors along the path")
    for f in (f for f in features if f["properties"].get("role") == "receptor"):
        p = f["properties"]
        tip = _spill_times(p)
        _draw(receptors, f["geometry"], RECEPTOR_COLORS[p["receptor"]], tip)
    receptors.add_to(m)


def _plume_layers(m: folium.Map, features: list[dict[str, Any]]) -> None:
    zones = folium.FeatureGroup(name="威胁区 threat zones")
    for f in (f for f in features if f["properties"].get("role") == "zone" and f["geometry"]):
        p = f["properties"]
        tip = (f"<b>{p['endpoint_zh']} {p['endpoint']}</b> ({p['loc_mg_m3']:g} mg/m³)<br>最远 far edge "
               f"{p['far_edge_m']:.0f} m{_capped(p)}<br>面积 area {p['area_km2']:.3g} km²"
               f"<br>人口（面积加权）population (area-weighted) {_num(p.get('population'))}")
        folium.GeoJson(f["geometry"], tooltip=tip,
                       style_function=lambda _, c=ZONE_COLORS[p["endpoint"]]: {
                           "color": c, "fillColor": c, "weight": 2, "fillOpacity": 0.35}).add_to(zones)
    zones.add_to(m)
    receptors = folium.FeatureGroup(name="区内受体 receptors inside")
    for f in (f for f in features if f["properties"].get("role") == "receptor"):
        p = f["properties"]
        tip = (f"<b>{html.escape(str(p['name']))}</b><br>{RECEPTOR_LABELS[p['layer']]} "
               f"({html.escape(str(p['kind']))})"
               f"<br>{p['zone_zh']} {p['zone']}<br>距源 distance {p['distance_m']:.0f} m"
               f"<br>到达 arrival {p['first_arrival_time']}")
        _draw(receptors, f["geometry"], RECEPTOR_COLORS[p["layer"]], tip)
    receptors.add_to(m)


def _spill_times(p: dict[str, Any]) -> str:
    """A spill receptor's tooltip: its threshold and where it comes from, above/peak/back-below times."""
    t = p.get("threshold")
    lines = [f"<b>{html.escape(str(p['name']))}</b>", RECEPTOR_LABELS[p["receptor"]]]
    if t is None:
        lines.append("无阈值 no threshold")
    else:
        lines.append(f"阈值 threshold {_num(p['threshold_mg_l'])} mg/L<br><small>{html.escape(t['source_zh'])}<br>"
                     f"{html.escape(t['source'])}</small>")
    if p.get("exceeds"):
        start = p.get("exceeds_from_time") or f"不早于 not before {p.get('not_before_time')}"
        lines.append(f"<b>超过阈值 above threshold</b> {start}")
        lines.append(f"回落 back below {p.get('exceeds_until_time') or '-'}")
    elif p.get("exceeds") is False:
        lines.append("未超过阈值 stays below threshold")
    lines.append(f"峰值 peak {_num(p.get('peak_mg_l'))} mg/L {p.get('peak_time') or ''}")
    lines.append(f"水流到达 water arrives {p.get('advective_time') or '-'}")
    return "<br>".join(lines)


def _capped(p: dict[str, Any]) -> str:
    """A capped zone's note: cut at the cap, and how far its centreline goes on above the end-point."""
    if not p.get("capped"):
        return ""
    more = f"{'>' if p.get('continues_past_followed_range') else ''}{p['continues_to_m'] / 1000:.1f} km"
    return f"（截断，中心线延续至约{more}）<br>(capped; the centreline continues to about {more})"


def _release(m: folium.Map, features: list[dict[str, Any]]) -> None:
    group = folium.FeatureGroup(name="事故点 release")
    for f in features:
        p = f["properties"]
        if p.get("role") in ("release", "snap"):
            lon, lat = f["geometry"]["coordinates"]
            label = ("事故点 release" if p["role"] == "release" else f"入河点 snapped to {p['river']}")
            folium.CircleMarker((lat, lon), radius=8 if p["role"] == "release" else 5, color=RELEASE_COLOR,
                                fill=True, fill_opacity=0.9, tooltip=label).add_to(group)
    group.add_to(m)


def _draw(group: folium.FeatureGroup, geometry: dict[str, Any] | None, color: str, tip: str) -> None:
    if not geometry:
        return
    if geometry["type"] == "Point":
        lon, lat = geometry["coordinates"]
        folium.CircleMarker((lat, lon), radius=6, color=color, fill=True, fill_opacity=0.8, tooltip=tip).add_to(group)
    else:
        folium.GeoJson(geometry, tooltip=tip, style_function=lambda _, c=color: {
            "color": c, "fillColor": c, "weight": 1.5, "fillOpacity": 0.2}).add_to(group)


def _reach_color(p: dict[str, Any]) -> str:
    """Red where the class III limit is exceeded at the reach end, amber above a tenth of it, blue otherwise."""
    ratio = p.get("end_ratio_to_class_iii")
    if ratio is None:
        return "#2b83ba"
    return "#d7191c" if ratio > 1 else "#fdae61" if ratio > 0.1 else "#2b83ba"


def _panel(result: dict[str, Any]) -> str:
    """The "who must be told" list, fixed at the bottom left of the map."""
    inc = result["incident"]
    sub = inc["substance"]
    rows = "".join(
        f"<tr><td>{e['order']}</td><td>{html.escape(e['name'])}<br><small>{html.escape(e.get('name_en') or '')}"
        f"</small>{BEYOND if e.get('beyond_modelled_range') else ''}</td><td>{e['level_zh']}</td>"
        f"<td>{_short_time(e['first_arrival_time'])}</td></tr>"
        for e in result.get("notify", []))
    warnings = "".join(f"<li>{html.escape(w['zh'])}<br><small>{html.escape(w['en'])}</small></li>"
                       for w in result.get("warnings", []))
    if warnings:
        warnings = f'<b>提示 Warnings</b><ul class="warnings" style="margin:2px 0;padding-left:16px">{warnings}</ul>'
    model = result.get("model") or {}
    wind = ""
    if result.get("analysis") == "plume" and model.get("wind_from_deg") is not None:
        wind = (f"风 Wind: 来自 from {model['wind_from_deg']:.0f}° · {model.get('wind_speed_m_s', 0):.1f} m/s"
                f" → 下风向 downwind {model.get('downwind_bearing_deg', 0):.0f}°<br>")
    return (
        f'<details open class="ra-notify" style="position:fixed;bottom:30px;left:10px;z-index:9999;'
        f"background:white;padding:8px;max-height:60%;overflow:auto;font:12px sans-serif;border:1px solid #888;"
        f'width:{PANEL_WIDTH}px;box-sizing:border-box">'
        f"<summary><b>{html.escape(inc['kind_zh'])} / {html.escape(inc['kind'])}</b> · "
        "需通知 Who must be told</summary>"
        f"{html.escape(sub['name_zh'])} {html.escape(sub['name'])} — {html.escape(inc['release_time'])}<br>{wind}"
        '<table style="border-collapse:collapse"><tr><th>#</th><th>名称 Name</th><th>级别</th>'
        f"<th>首次到达 First arrival</th></tr>{rows}</table>{warnings}"
        "<small>模型估算 model estimates</small></details>"
    )


def _short_time(iso: str | None) -> str:
    """'2026-03-01T08:00+08:00' as '03-01 08:00'."""
    return (iso or "")[5:16].replace("T", " ")


def result_extent(result: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of every coordinate in the result's features, or None without any."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        elif isinstance(c, (list, tuple)):
            for v in c:
                walk(v)

    for f in result.get("features", []):
        if f.get("geometry"):
            walk(f["geometry"]["coordinates"])
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.3g}" if isinstance(v, float) and abs(v) < 1000 else f"{v:,.0f}"
