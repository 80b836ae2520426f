"""Chinese and English words of the maps: domain values (categories, levels, kinds) and page text.

Field titles and the names of domain values come from the layer catalogue (labelled domains, and the
hazard flags' vocabulary declared there); this module adds the words of the pages. One table serves
the web viewer, the phone page and the report maps, so they always agree.
"""

from __future__ import annotations

from layers.catalogue import FLAG_KIND_LABELS, LAYERS, SEVERITY_LABELS, Label


def _domain_labels() -> dict[str, dict[str, Label]]:
    """Every labelled domain of the catalogue by field name, and the hazard flags' (kind, severity)."""
    out: dict[str, dict[str, Label]] = {}
    for layer in LAYERS.values():
        for f in layer.fields:
            if f.labels:
                out.setdefault(f.name, {}).update(dict(f.labels))
    out.setdefault("kind", {}).update(FLAG_KIND_LABELS)  # protected areas, stations, sources and flags share `kind`
    out["severity"] = dict(SEVERITY_LABELS)
    return out


#: The zh/en names of domain values, by field name: all from the catalogue (a value missing here is
#: shown as it is stored).
DOMAIN_LABELS: dict[str, dict[str, Label]] = _domain_labels()
VALUE_ZH: dict[str, dict[str, str]] = {f: {v: lab.zh for v, lab in d.items()} for f, d in DOMAIN_LABELS.items()}
VALUE_EN: dict[str, dict[str, str]] = {f: {v: lab.en for v, lab in d.items()} for f, d in DOMAIN_LABELS.items()}

UNGRADED = {"en": "not graded", "zh": "未分级"}
PENDING_M = {"en": "pending M score", "zh": "待评M值"}

#: Words of the pages, in both languages.
UI: dict[str, dict[str, str]] = {
    "title": {"en": "riskatlas — environmental risk map", "zh": "riskatlas 环境风险地图"},
    "layers": {"en": "Layers", "zh": "图层"},
    "legend": {"en": "Legend", "zh": "图例"},
    "filters": {"en": "Filters", "zh": "筛选"},
    "city": {"en": "City", "zh": "城市"},
    "all_cities": {"en": "All cities", "zh": "全部城市"},
    "category": {"en": "Category", "zh": "类别"},
    "level": {"en": "Risk level", "zh": "风险等级"},
    "search": {"en": "Search by name", "zh": "按名称搜索"},
    "no_match": {"en": "Nothing found", "zh": "未找到"},
    "more_matches": {"en": "{n} more match: type more to narrow", "zh": "另有 {n} 项匹配，请输入更多字词缩小范围"},
    "flags": {"en": "Border-zone hazards", "zh": "跨界风险隐患"},
    "flags_only": {"en": "Flagged sources only", "zh": "仅显示跨界隐患"},
    "matrix": {"en": "City × city hazards", "zh": "城市间风险矩阵"},
    "matrix_hint": {"en": "Row: city of the source; column: the other city. Click a count to zoom to the pair.",
                    "zh": "行：风险源所在城市；列：受影响城市。点击数字缩放至该城市对。"},
    "matrix_empty": {"en": "No border-zone hazard flags yet (run `riskatlas flags refresh`).",
                     "zh": "尚无跨界隐患（请运行 riskatlas flags refresh）。"},
    "matrix_unavailable": {"en": "The border-hazard service is not available.", "zh": "跨界隐患服务不可用。"},
    "synthetic": {"en": "Synthetic data", "zh": "合成数据"},
    "details": {"en": "Details", "zh": "详情"},
    "loading": {"en": "Loading…", "zh": "加载中…"},
    "language": {"en": "中文", "zh": "English"},
    "reset": {"en": "Reset", "zh": "重置"},
    "severity": {"en": "Severity", "zh": "严重程度"},
    "other": {"en": "Other jurisdiction", "zh": "相邻辖区"},
    "distance": {"en": "Distance", "zh": "距离"},
    "flagged": {"en": "Border-zone hazards of this source", "zh": "该风险源的跨界隐患"},
    "basemap": {"en": "Basemap", "zh": "底图"},
    "share": {"en": "Link to this map", "zh": "本图链接"},
    "near_me": {"en": "Risk sites near me", "zh": "附近风险源"},
    "locate": {"en": "Use my location", "zh": "使用我的位置"},
    "lookup": {"en": "Look up", "zh": "查询"},
    "lon": {"en": "Longitude", "zh": "经度"},
    "lat": {"en": "Latitude", "zh": "纬度"},
    "radius": {"en": "Radius (m)", "zh": "半径（米）"},
    "crs_gcj02": {"en": "GCJ-02 (copied from AMap or Tencent maps)", "zh": "GCJ-02（抄自高德、腾讯地图）"},
    "crs_wgs84": {"en": "WGS84 (GPS, this browser's position)", "zh": "WGS84（GPS、浏览器）"},
    "crs_note": {"en": "Coordinates in", "zh": "坐标系"},
    "none_near": {"en": "No risk site within the radius.", "zh": "半径内无风险源。"},
    "locating": {"en": "Finding your position…", "zh": "正在定位…"},
    "geo_failed": {"en": "Location unavailable: type a coordinate.", "zh": "无法定位，请输入坐标。"},
    "full_map": {"en": "Full map", "zh": "完整地图"},
    "crs_device": {"en": "This device's position", "zh": "本机定位"},
    "crs_typed": {"en": "Typed coordinates", "zh": "输入的坐标"},
    "offline": {"en": "Offline", "zh": "离线"},
    "offline_none": {"en": "Offline; no sites kept on this phone yet: open this page once online.",
                     "zh": "离线，本机尚未保存风险源：请联网打开本页一次。"},
    "offline_from": {"en": "sites kept on this phone, as of", "zh": "本机保存的风险源，更新于"},
    "widen": {"en": "Search within", "zh": "扩大到"},
    "outside_region": {"en": "Outside the region: no city of it holds this position.", "zh": "该位置不在本区域内。"},
    "previous": {"en": "Last results", "zh": "上次查询的结果"},
    "in_place": {"en": "Position in", "zh": "位置"},
    "navigate_amap": {"en": "Navigate (AMap)", "zh": "高德导航"},
    "navigate_baidu": {"en": "Navigate (Baidu)", "zh": "百度导航"},
    "call": {"en": "Call", "zh": "拨打"},
    "server_error": {"en": "The service could not answer", "zh": "服务暂时无法应答"},
    "generated": {"en": "Generated", "zh": "生成时间"},
    "sources": {"en": "risk sources", "zh": "个风险源"},
}


def value_label(field: str, value: str, lang: str) -> str:
    """The name of a domain value in ``lang`` (``en`` or ``zh``); the value itself when unknown."""
    if lang == "zh":
        return VALUE_ZH.get(field, {}).get(value, value)
    return VALUE_EN.get(field, {}).get(value, value.replace("-", " "))


def value_labels() -> dict[str, dict[str, dict[str, str]]]:
    """Every domain value of the catalogue (and of the flags) with its English and Chinese name."""
    fields: dict[str, set[str]] = {name: set(values) for name, values in VALUE_ZH.items()}
    for layer in LAYERS.values():
        for f in layer.fields:
            if f.domain:
                fields.setdefault(f.name, set()).update(f.domain)
    return {name: {v: {"en": value_label(name, v, "en"), "zh": value_label(name, v, "zh")} for v in sorted(values)}
            for name, values in sorted(fields.items())}
