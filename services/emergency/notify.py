"""Who must be told: every jurisdiction reached, in order of first arrival, and the bulletin (text, CSV).

A jurisdiction is reached by a spill when the path enters it within the horizon (first arrival: when
the concentration at the entry point first exceeds its threshold, see :func:`spill_arrival`), or by a
release to air when a threat zone covers part of
it (first arrival: the nearest covered point's distance from the source over the wind speed).  When
both reach it, the earlier counts and both reasons are given.  Labels are Chinese and English.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from services.emergency.common import CHINA_TIME, duration

__all__ = ["from_spill", "from_plume", "merge", "bulletin", "to_text", "to_csv", "issued_now", "spill_arrival",
           "receptor_times"]

LEVEL_ZH = {"province": "省", "city": "市", "county": "区县"}
LEVEL_RANK = {"province": 0, "city": 1, "county": 2}
RECEPTOR_LABEL = {"intake": ("取水口", "intake"), "cross_border_section": ("跨界断面", "cross-border section")}

CSV_COLUMNS = (
    ("order", "序号 No."), ("type", "类别 Type"), ("code", "代码 Code"), ("name", "名称 Name"),
    ("name_en", "英文名 Name (en)"), ("first_arrival_time", "首次到达 First arrival"),
    ("first_arrival_h", "首次到达(小时) First arrival (h)"), ("peak_time", "峰值时间 Peak time"),
    ("peak", "峰值 Peak"), ("unit", "单位 Unit"), ("via", "途径 Via"), ("detail", "说明 Detail"),
    ("threshold", "阈值 Threshold"), ("threshold_source", "阈值来源 Threshold source"),
    ("below_time", "回落至阈值以下 Back below threshold"),
)
ARRIVAL_BASIS = {
    "threshold": ("浓度首次超过阈值", "concentration first exceeds the threshold"),
    "not_before": ("超过阈值，但不早于此时（模型超出适用范围）",
                   "exceeds the threshold, not before this time (the model is outside its range)"),
    "advective": ("水流到达（浓度未超过阈值）", "the water arrives (the concentration stays below the threshold)"),
    "advective_no_threshold": ("水流到达（无阈值）", "the water arrives (no threshold)"),
    "air": ("烟羽到达（距源距离/风速）", "the plume arrives (distance from the source / wind speed)"),
}


def spill_arrival(v: dict[str, Any]) -> tuple[float, str]:
    """The first arrival at a point of a spill's path (seconds) and its basis (a key of ARRIVAL_BASIS).

    When the concentration exceeds the point's threshold: the time it first does, or, where the 1-D
    model outruns the fastest water, the earliest time possible; otherwise the mean water's arrival.
    """
    if v.get("exceeds"):
        if v.get("exceeds_from_s") is not None:
            return v["exceeds_from_s"], "threshold"
        return v["not_before_s"], "not_before"
    return v["advective_s"], "advective" if v.get("threshold_mg_l") is not None else "advective_no_threshold"


def from_spill(jurisdictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jurisdictions a spill path enters, as notification entries in order of first arrival."""
    out = []
    for j in jurisdictions:
        t, basis = spill_arrival(j)
        threshold = j.get("threshold") or {}
        out.append({
            "level": j["level"], "level_zh": LEVEL_ZH[j["level"]], "code": j["code"], "name": j["name"],
            "name_en": j.get("name_en"), "parent_code": j.get("parent_code"),
            "first_arrival_s": t, "first_arrival_time": _clock_of(j, basis),
            "first_arrival_basis": basis, "first_arrival_basis_zh": ARRIVAL_BASIS[basis][0],
            "first_arrival_basis_en": ARRIVAL_BASIS[basis][1],
            "threshold_mg_l": j.get("threshold_mg_l"), "threshold_source": threshold.get("source"),
            "threshold_source_zh": threshold.get("source_zh"), "below_time": j.get("exceeds_until_time"),
            "peak_s": j.get("peak_s"), "peak_time": j.get("peak_time"), "peak": j.get("peak_mg_l"), "unit": "mg/L",
            "via": ["river"], "via_zh": ["河流"],
            "detail": f"{j['river']}: enters {j['entry_m'] / 1000:.1f} km downstream",
            "detail_zh": f"{j['river']}下游{j['entry_m'] / 1000:.1f}公里处进入",
        })
    return _ordered(out)


def _clock_of(v: dict[str, Any], basis: str) -> str | None:
    """The clock time of a point's first arrival on ``basis``."""
    return v[{"threshold": "exceeds_from_time", "not_before": "not_before_time"}.get(basis, "advective_time")]


def from_plume(jurisdictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jurisdictions a threat zone covers, as notification entries in order of first arrival."""
    out = [{
        "level": j["level"], "level_zh": LEVEL_ZH[j["level"]], "code": j["code"], "name": j["name"],
        "name_en": j.get("name_en"), "parent_code": j.get("parent_code"),
        "first_arrival_s": j["first_arrival_s"], "first_arrival_time": j["first_arrival_time"],
        "first_arrival_basis": "air", "first_arrival_basis_zh": ARRIVAL_BASIS["air"][0],
        "first_arrival_basis_en": ARRIVAL_BASIS["air"][1],
        "peak_s": None, "peak_time": None, "peak": None, "unit": "mg/m³",
        "via": ["air"], "via_zh": ["大气"],
        "beyond_modelled_range": j.get("beyond_modelled_range", False),
        "population": j.get("population"), "population_basis": j.get("population_basis"),
        "detail": _plume_detail_en(j), "detail_zh": _plume_detail_zh(j),
    } for j in jurisdictions]
    return _ordered(out)


def _plume_detail_en(j: dict[str, Any]) -> str:
    if j.get("beyond_modelled_range"):
        return (f"beyond the modelled range: the {j['zone']} centreline enters {j['distance_m'] / 1000:.1f} km "
                "from the source, still above the end-point (not drawn)")
    pop = f", population {j['population']:.0f} (area-weighted)" if j.get("population") is not None else ""
    return f"{j['zone']} zone, {j['distance_m']:.0f} m from the source{pop}"


def _plume_detail_zh(j: dict[str, Any]) -> str:
    zone = "毒性终点浓度-1" if j["zone"] == "endpoint-1" else "毒性终点浓度-2"
    if j.get("beyond_modelled_range"):
        return f"超出模拟范围：{zone}下风向中心线在距源{j['distance_m'] / 1000:.1f}公里处进入，浓度仍高于终点值（未绘出）"
    pop = f"，人口{j['population']:.0f}（面积加权）" if j.get("population") is not None else ""
    return f"{zone}影响区，距源{j['distance_m']:.0f}米{pop}"


def merge(*lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per jurisdiction: the earliest first arrival, every route (river, air) and detail."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for entries in lists:
        for e in entries:
            key = (e["level"], e["code"])
            if key not in merged:
                merged[key] = dict(e)
                continue
            m = merged[key]
            if e["first_arrival_s"] < m["first_arrival_s"]:
                for f in ("first_arrival_s", "first_arrival_time", "first_arrival_basis", "first_arrival_basis_zh",
                          "first_arrival_basis_en"):
                    m[f] = e[f]
            m["via"] = m["via"] + [v for v in e["via"] if v not in m["via"]]
            m["via_zh"] = m["via_zh"] + [v for v in e["via_zh"] if v not in m["via_zh"]]
            m["detail"] = f"{m['detail']}; {e['detail']}"
            m["detail_zh"] = f"{m['detail_zh']}；{e['detail_zh']}"
    return _ordered(list(merged.values()))


def _ordered(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries.sort(key=lambda e: (e["first_arrival_s"], LEVEL_RANK[e["level"]], e["code"]))
    for i, e in enumerate(entries, start=1):
        e["order"] = i
    return entries


def bulletin(spill: dict[str, Any] | None, plume: dict[str, Any] | None, issued: datetime) -> dict[str, Any]:
    """The bulletin of one incident: whom to tell (merged, ordered), intakes and sections, zones, warnings."""
    notify = merge(spill["notify"] if spill else [], plume["notify"] if plume else [])
    receptors = []
    if spill:
        for f in spill["features"]:
            p = f["properties"]
            if p.get("role") == "receptor" and p["receptor"] in RECEPTOR_LABEL:
                receptors.append(p)
    zones = [f["properties"] for f in plume["features"] if f["properties"].get("role") == "zone"] if plume else []
    return {
        "issued": issued.isoformat(timespec="minutes"),
        "incidents": [x["incident"] for x in (spill, plume) if x],
        "notify": notify, "receptors": receptors, "zones": zones,
        "warnings": (spill["warnings"] if spill else []) + (plume["warnings"] if plume else []),
    }


def to_text(b: dict[str, Any]) -> str:
    """The bulletin as short bilingual text, for a message or a fax."""
    lines = ["突发环境事件预警通报 / Environmental emergency warning bulletin",
             f"发布时间 / Issued: {b['issued']}", ""]
    for inc in b["incidents"]:
        s, loc = inc["substance"], inc["location"]
        amount = (f"{inc['mass_t']:g} t" if "mass_t" in inc else f"{inc['release_rate_kg_s']:g} kg/s")
        lines.append(f"事件 / Incident: {inc['kind_zh']} / {inc['kind']} — {s['name_zh']} {s['name']} ({s['cas']}), "
                     f"{amount}, {inc['release_time']}")
        lines.append(f"位置 / Location: {loc['lon']:.6f}, {loc['lat']:.6f} (WGS84; given as {loc['x']}, {loc['y']} "
                     f"in {loc['crs']})")
    lines += ["", "需通知的行政区（按首次到达先后）/ Jurisdictions to notify (in order of first arrival):"]
    if not b["notify"]:
        lines.append("  （无 / none）")
    for e in b["notify"]:
        en = f" {e['name_en']}" if e.get("name_en") else ""
        peak = f"; 峰值 peak {e['peak']:.3g} {e['unit']} {e.get('peak_time') or '-'}" if e.get("peak") else ""
        basis = (f" [{e['first_arrival_basis_zh']}{_threshold_text(e)} / {e['first_arrival_basis_en']}]"
                 if e.get("first_arrival_basis") not in (None, "air") else "")  # the route says it for air
        lines.append(f"  {e['order']:>2}. {e['name']}{en} [{e['level_zh']} {e['level']} {e['code']}] — "
                     f"首次到达 first arrival {e['first_arrival_time']} (+{duration(e['first_arrival_s'])}){basis}{peak}; "
                     f"途径 via {'/'.join(e['via_zh'])} {'/'.join(e['via'])}: {e['detail_zh']} / {e['detail']}")
    if b["receptors"]:
        lines += ["", "取水口与跨界断面 / Intakes and cross-border sections:"]
        for i, p in enumerate(b["receptors"], start=1):
            zh, en = RECEPTOR_LABEL[p["receptor"]]
            lines.append(f"  {i:>2}. {zh} {en}: {p['name']} — {receptor_times(p)}")
    if b["zones"]:
        lines += ["", "大气威胁区 / Air threat zones:"]
        for z in b["zones"]:
            pop = f"{z['population']:.0f}" if z.get("population") is not None else "-"
            capped = ""
            if z["capped"]:
                more = f"{z['continues_to_m'] / 1000:.1f} km"
                if z.get("continues_past_followed_range"):
                    more = f"> {more}"
                capped = f"（截断，中心线延续至约{more}；capped, continues to about {more}）"
            lines.append(f"  {z['endpoint_zh']} {z['endpoint']} ({z['loc_mg_m3']:g} mg/m³): 最远 far edge "
                         f"{z['far_edge_m']:.0f} m{capped}, 面积 area "
                         f"{z['area_km2']:.3g} km², 人口（面积加权）population (area-weighted) {pop}")
    if b["warnings"]:
        lines += ["", "提示 / Warnings:"] + [f"  - {w['zh']} / {w['en']}" for w in b["warnings"]]
    lines += ["", "模型估算，仅供应急决策参考，请以监测数据为准。/ Model estimates for emergency screening; "
                  "confirm by monitoring."]
    return "\n".join(lines) + "\n"


def receptor_times(p: dict[str, Any]) -> str:
    """A spill point's threshold, when it is exceeded, its peak and when it falls back below, in words (zh / en)."""
    t = p.get("threshold")
    if t is None:
        head = "无阈值 no threshold"
    else:
        head = f"阈值 threshold {p['threshold_mg_l']:.3g} mg/L（{t['source_zh']} / {t['source']}）"
    peak = f"{p['peak_mg_l']:.3g} mg/L" if p.get("peak_mg_l") is not None else "-"
    peak_at = p.get("peak_time") or (f"不早于 not before {p['not_before_time']}" if p.get("not_before_time") else "-")
    if p.get("exceeds"):
        start = p.get("exceeds_from_time") or f"不早于 not before {p['not_before_time']}"
        window = f"超过阈值 above threshold {start} – 回落 back below {p.get('exceeds_until_time') or '-'}"
    elif p.get("exceeds") is False:
        window = "未超过阈值 stays below threshold"
    else:
        window = f"水流到达 water arrives {p.get('advective_time')}"
    return f"{head}; {window}; 峰值 peak {peak} {peak_at}"


def _threshold_text(e: dict[str, Any]) -> str:
    """The threshold a river arrival refers to, for the text bulletin."""
    if e["first_arrival_basis"] in ("threshold", "not_before") and e.get("threshold_mg_l") is not None:
        return f" {e['threshold_mg_l']:.3g} mg/L"
    return ""


def to_csv(b: dict[str, Any]) -> str:
    """The bulletin as CSV (UTF-8 with BOM for spreadsheet programs): one row per party to tell."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([label for _, label in CSV_COLUMNS])
    for e in b["notify"]:
        w.writerow([e["order"], f"{e['level_zh']} {e['level']}", e["code"], e["name"], e.get("name_en") or "",
                    e["first_arrival_time"], _hours(e["first_arrival_s"]), e.get("peak_time") or "",
                    _num(e.get("peak")), e["unit"], "/".join(f"{z} {x}" for z, x in zip(e["via_zh"], e["via"])),
                    f"{e['detail_zh']} / {e['detail']}", _num(e.get("threshold_mg_l")),
                    _source(e.get("threshold_source_zh"), e.get("threshold_source")), e.get("below_time") or ""])
    start = len(b["notify"])
    for i, p in enumerate(b["receptors"], start=start + 1):
        zh, en = RECEPTOR_LABEL[p["receptor"]]
        detail = f"{p['river']}; {p.get('water_class') or ''}".strip("; ")
        t, basis = spill_arrival(p)
        source = p.get("threshold") or {}
        w.writerow([i, f"{zh} {en}", p["key"], p["name"], "", _clock_of(p, basis), _hours(t),
                    p.get("peak_time") or "", _num(p.get("peak_mg_l")), "mg/L", "河流 river",
                    f"{detail}; {ARRIVAL_BASIS[basis][0]} / {ARRIVAL_BASIS[basis][1]}", _num(p.get("threshold_mg_l")),
                    _source(source.get("source_zh"), source.get("source")), p.get("exceeds_until_time") or ""])
    return buf.getvalue()


def _source(zh: str | None, en: str | None) -> str:
    return f"{zh} / {en}" if zh else ""


def _hours(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 3600.0:.2f}"


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def issued_now() -> datetime:
    """The issue time of a bulletin: now, in China time."""
    return datetime.now(CHINA_TIME)
