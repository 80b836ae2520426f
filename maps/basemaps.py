"""Basemaps of the planner's map: the offline reference map (default) and named online presets.

The offline basemap is what the database holds, drawn quietly under the thematic layers: city and county
boundaries and names, rivers, protected areas. It needs no network, which is what government networks
often are. A bureau switches online presets on in settings (``RISKATLAS_API_BASEMAPS``):

* ``tianditu-vec`` / ``tianditu-img``: 天地图 vector or imagery with its annotation layer, in Web
  Mercator (``_w`` tile matrix set), CGCS2000 ≈ WGS84: no offset against our data. Needs the bureau's key
  (``RISKATLAS_API_TIANDITU_KEY``); without one the preset is listed as unavailable, with the reason.
* ``osm``: OpenStreetMap's standard tiles (WGS84, no offset).
* ``amap``: AMap (高德) tiles are drawn in GCJ-02: our WGS84 data would sit hundreds of metres off them,
  and a vector tile cannot be shifted in the browser exactly, so the preset is refused with that reason.
* ``custom``: any XYZ URL (``RISKATLAS_API_BASEMAP_URL``), e.g. a bureau's own tile server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OFFLINE = "offline"
_TIANDITU = ("https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
             "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
             "&TILECOL={{x}}&tk={key}")


@dataclass(frozen=True)
class Basemap:
    """A basemap the switcher offers: raster tile layers bottom to top, or none (the offline map)."""

    name: str
    zh: str
    en: str
    tiles: tuple[tuple[str, ...], ...] = ()  # per layer, its tile URL templates
    attribution: str = ""
    available: bool = True
    reason_zh: str = ""
    reason_en: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """What the viewer reads: name, titles, availability and why not."""
        return {"name": self.name, "zh": self.zh, "en": self.en, "available": self.available,
                "reason": {"zh": self.reason_zh, "en": self.reason_en} if not self.available else None,
                "layers": len(self.tiles)}


PRESETS = ("tianditu-vec", "tianditu-img", "osm", "amap", "custom")


def _tianditu(name: str, zh: str, en: str, base: str, notes: str, key: str | None) -> Basemap:
    if not key:
        return Basemap(name, zh, en, available=False, reason_zh="需要天地图密钥（RISKATLAS_API_TIANDITU_KEY）",
                       reason_en="needs the bureau's Tianditu key (RISKATLAS_API_TIANDITU_KEY)")
    layers = tuple(tuple(_TIANDITU.format(s=s, layer=layer, key=key) for s in range(8)) for layer in (base, notes))
    return Basemap(name, zh, en, layers, "© 天地图 Tianditu (国家地理信息公共服务平台)")


def basemaps(enabled: tuple[str, ...] | list[str], tianditu_key: str | None = None,
             custom_url: str | None = None) -> list[Basemap]:
    """The offline basemap first, then each enabled preset (unknown names: ValueError naming them)."""
    unknown = [n for n in enabled if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown basemap presets {unknown}; the presets are {list(PRESETS)}")
    out = [Basemap(OFFLINE, "离线底图（本库数据）", "Offline reference map (this database)")]
    names = list(dict.fromkeys([*enabled, *(["custom"] if custom_url else [])]))
    for name in names:
        if name == "tianditu-vec":
            out.append(_tianditu(name, "天地图 矢量", "Tianditu vector", "vec", "cva", tianditu_key))
        elif name == "tianditu-img":
            out.append(_tianditu(name, "天地图 影像", "Tianditu imagery", "img", "cia", tianditu_key))
        elif name == "osm":
            out.append(Basemap(name, "OpenStreetMap", "OpenStreetMap",
                               (("https://tile.openstreetmap.org/{z}/{x}/{y}.png",),),
                               "© OpenStreetMap contributors"))
        elif name == "amap":
            out.append(Basemap(name, "高德地图", "AMap", available=False,
                               reason_zh="高德瓦片为GCJ-02坐标，本图数据为WGS84，叠加会偏移数百米，故不启用",
                               reason_en="AMap tiles are in GCJ-02: this map's WGS84 data would sit hundreds of "
                                         "metres off them, so the preset is refused"))
        elif name == "custom" and custom_url:
            out.append(Basemap(name, "自定义底图", "Custom basemap", ((custom_url,),), "basemap"))
    return out
