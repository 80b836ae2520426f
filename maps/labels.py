"""Chinese and English words of the maps: domain values (categories, levels, kinds) and page text.

Field titles come from the layer catalogue; this module holds what the catalogue does not name in two
languages: the values of its domains, the hazard-flag vocabulary (issue 4) and the words of the pages.
One table serves the web viewer, the phone page and the report maps, so they always agree.
"""

from __future__ import annotations

from layers.catalogue import LAYERS, RISK_LEVEL_ZH

#: Chinese names of domain values, by field name (a value missing here is shown as it is stored).
VALUE_ZH: dict[str, dict[str, str]] = {
    "risk_level": dict(RISK_LEVEL_ZH),
    "air_level": dict(RISK_LEVEL_ZH),
    "water_level": dict(RISK_LEVEL_ZH),
    "category": {
        "chemical": "化工", "hazardous-waste": "危险废物", "tailings": "尾矿库", "wastewater-plant": "污水处理厂",
        "oil-and-gas-storage": "油气储存", "pharmaceutical": "制药", "metal-plating": "电镀", "other": "其他",
    },
    "status": {"active": "在产", "closed": "关停", "under-construction": "在建"},
    "medium": {"air": "大气", "water": "水"},
    "kind": {
        # protected_area, monitoring_station, water_reserve and hazard flags share the name `kind`.
        "nature-reserve": "自然保护区", "ecological-red-line": "生态保护红线", "wetland": "湿地",
        "forest-park": "森林公园", "scenic": "风景名胜区",
        "air-quality": "空气质量站", "national-section": "国控断面", "cross-border-section": "跨界断面",
        "automatic-water": "水质自动站",
        "river": "河流型", "lake-reservoir": "湖库型", "groundwater": "地下水型",
        "city-border": "邻近市界", "province-border": "邻近省界", "upstream": "位于他市上游",
        "protection-zone": "水源保护区", "protected-area": "生态保护区域",
    },
    "level": {
        "1": "一级保护区", "2": "二级保护区", "quasi": "准保护区",
        "province": "省", "city": "市", "county": "区县",
    },
    "rank": {"national": "国家级", "provincial": "省级", "municipal": "市级"},
    "river_class": {"yangtze-main": "长江干流", "major": "主要河流", "minor": "支流", "canal": "运河"},
    "size": {"small": "小型", "medium": "中型", "large": "大中型"},
    "severity": {"high": "高", "medium": "中", "low": "低"},
    "q_band": {"Q0": "Q0（Q<1）", "Q1": "Q1（1≤Q<10）", "Q2": "Q2（10≤Q<100）", "Q3": "Q3（Q≥100）"},
    "grade_status": {"graded": "已分级", "pending-m": "待评M值（Q、E已评，等级为M可能给出的范围）"},
}

#: English names where the stored value is not already readable once hyphens become spaces.
VALUE_EN: dict[str, dict[str, str]] = {
    "level": {"1": "level 1 zone", "2": "level 2 zone", "quasi": "quasi zone"},
    "kind": {"city-border": "near a city border", "province-border": "near a province border",
             "upstream": "upstream of another city"},
    # HJ 941-2018 bands: the public sees the band of Q, never Q itself (DESIGN 9)
    "q_band": {"Q0": "Q0 (Q < 1)", "Q1": "Q1 (1 ≤ Q < 10)", "Q2": "Q2 (10 ≤ Q < 100)", "Q3": "Q3 (Q ≥ 100)"},
    # HJ 941 needs M for a medium whose Q is 1 or more; until it is scored the label shows M? and the
    # levels M could give
    "grade_status": {"graded": "graded", "pending-m": "pending M (Q and E graded; the level is the range M could give)"},
}

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
    "near_me": {"en": "Risk sites near me", "zh": "附近风险源"},
    "locate": {"en": "Use my location", "zh": "使用我的位置"},
    "lookup": {"en": "Look up", "zh": "查询"},
    "lon": {"en": "Longitude", "zh": "经度"},
    "lat": {"en": "Latitude", "zh": "纬度"},
    "radius": {"en": "Radius (m)", "zh": "半径（米）"},
    "crs_gcj02": {"en": "GCJ-02 (AMap, Tencent, most Chinese phones)", "zh": "GCJ-02（高德、腾讯，多数国内手机）"},
    "crs_wgs84": {"en": "WGS84 (GPS)", "zh": "WGS84（GPS）"},
    "crs_note": {"en": "Coordinates in", "zh": "坐标系"},
    "none_near": {"en": "No risk site within the radius.", "zh": "半径内无风险源。"},
    "locating": {"en": "Finding your position…", "zh": "正在定位…"},
    "geo_failed": {"en": "Location unavailable: type a coordinate.", "zh": "无法定位，请输入坐标。"},
    "full_map": {"en": "Full map", "zh": "完整地图"},
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
