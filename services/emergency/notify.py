"""Who must be told: every jurisdiction reached, in order of first arrival, and the bulletin (text, CSV).

A jurisdiction is reached by a spill when the path enters it within the horizon (first arrival: the
cloud's leading edge at the entry point), or by a release to air when a threat zone covers part of
it (first arrival: the nearest covered point's distance from the source over the wind speed).  When
both reach it, the earlier counts and both reasons are given.  Labels are Chinese and English.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from services.emergency.common import CHINA_TIME, duration

__all__ = ["from_spill", "from_plume", "merge", "bulletin", "to_text", "to_csv", "issued_now"]

LEVEL_ZH = {"province": "省", "city": "市", "county": "区县"}
LEVEL_RANK = {"province": 0, "city": 1, "county": 2}
RECEPTOR_LABEL = {"intake": ("取水口", "intake"), "cross_border_section": ("跨界断面", "cross-border section")}

CSV_COLUMNS = (
    ("order", "序号 No."), ("type", "类别 Type"), ("code", "代码 Code"), ("name", "名称 Name"),
    ("name_en", "英文名 Name (en)"), ("first_arrival_time", "首次到达 First arrival"),
    ("first_arrival_h", "首次到达(小时) First arrival (h)"), ("peak_time", "峰值时间 Peak time"),
    ("peak", "峰值 Peak"), ("unit", "单位 Unit"), ("via", "途径 Via"), ("detail", "说明 Detail"),
)


def from_spill(jurisdictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jurisdictions a spill path enters, as notification entries in order of first arrival."""
    out = [{
        "level": j["level"], "level_zh": LEVEL_ZH[j["level"]], "code": j["code"], "name": j["name"],
        "name_en": j.get("name_en"), "parent_code": j.get("parent_code"),
        "first_arrival_s": j["leading_edge_s"], "first_arrival_time": j["leading_edge_time"],
        "peak_s": j.get("peak_s"), "peak_time": j.get("peak_time"), "peak": j.get("peak_mg_l"), "unit": "mg/L",
        "via": ["river"], "via_zh": ["河流"],
        "detail": f"{j['river']}: enters {j['entry_m'] / 1000:.1f} km downstream",
        "detail_zh": f"{j['river']}下游{j['entry_m'] / 1000:.1f}公里处进入",
    } for j in jurisdictions]
    return _ordered(out)


def from_plume(jurisdictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jurisdictions a threat zone covers, as notification entries in order of first arrival."""
    out = [{
        "level": j["level"], "level_zh": LEVEL_ZH[j["level"]], "code": j["code"], "name": j["name"],
        "name_en": j.get("name_en"), "parent_code": j.get("parent_code"),
        "first_arrival_s": j["first_arrival_s"], "first_arrival_time": j["first_arrival_time"],
        "peak_s": None, "peak_time": None, "peak": None, "unit": "mg/m³",
        "via": ["air"], "via_zh": ["大气"],
        "detail": f"{j['zone']} zone, {j['distance_m']:.0f} m from the source"
                  + (f", population {j['population']:.0f}" if j.get("population") is not None else ""),
        "detail_zh": f"{'毒性终点浓度-1' if j['zone'] == 'endpoint-1' else '毒性终点浓度-2'}影响区，距源{j['distance_m']:.0f}米",
    } for j in jurisdictions]
    return _ordered(out)


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
                for f in ("first_arrival_s", "first_arrival_time"):
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
        peak = f"; 峰值 peak {e['peak']:.3g} {e['unit']} {e['peak_time']}" if e.get("peak") else ""
        lines.append(f"  {e['order']:>2}. {e['name']}{en} [{e['level_zh']} {e['level']} {e['code']}] — "
                     f"首次到达 first arrival {e['first_arrival_time']} (+{duration(e['first_arrival_s'])}){peak}; "
                     f"途径 via {'/'.join(e['via_zh'])} {'/'.join(e['via'])}: {e['detail_zh']} / {e['detail']}")
    if b["receptors"]:
        lines += ["", "取水口与跨界断面 / Intakes and cross-border sections:"]
        for i, p in enumerate(b["receptors"], start=1):
            zh, en = RECEPTOR_LABEL[p["receptor"]]
            peak = f"{p['peak_mg_l']:.3g} mg/L" if p.get("peak_mg_l") is not None else "-"
            over = ""
            if p.get("exceeds_class_iii"):
                over = (f"; 超III类 exceeds class III {p['class_iii_exceeded_from']} – "
                        f"{p['class_iii_exceeded_until']}")
            lines.append(f"  {i:>2}. {zh} {en}: {p['name']} — 首次到达 first arrival {p['leading_edge_time']}, "
                         f"峰值 peak {peak} {p['peak_time']}, 尾部 tail {p['tail_time']}{over}")
    if b["zones"]:
        lines += ["", "大气威胁区 / Air threat zones:"]
        for z in b["zones"]:
            pop = (f"{z['population']:.0f} (按格网中心 cell centres) / {z['population_area_weighted']:.0f} "
                   "(按面积加权 area-weighted)" if z.get("population") is not None else "-")
            lines.append(f"  {z['endpoint_zh']} {z['endpoint']} ({z['loc_mg_m3']:g} mg/m³): 最远 far edge "
                         f"{z['far_edge_m']:.0f} m{' (capped 截断)' if z['capped'] else ''}, 面积 area "
                         f"{z['area_km2']:.3g} km², 人口 population {pop}")
    if b["warnings"]:
        lines += ["", "提示 / Warnings:"] + [f"  - {w}" for w in b["warnings"]]
    lines += ["", "模型估算，仅供应急决策参考，请以监测数据为准。/ Model estimates for emergency screening; "
                  "confirm by monitoring."]
    return "\n".join(lines) + "\n"


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
                    f"{e['detail_zh']} / {e['detail']}"])
    start = len(b["notify"])
    for i, p in enumerate(b["receptors"], start=start + 1):
        zh, en = RECEPTOR_LABEL[p["receptor"]]
        detail = f"{p['river']}; {p.get('water_class') or ''}".strip("; ")
        w.writerow([i, f"{zh} {en}", p["key"], p["name"], "", p["leading_edge_time"], _hours(p["leading_edge_s"]),
                    p.get("peak_time") or "", _num(p.get("peak_mg_l")), "mg/L", "河流 river", detail])
    return buf.getvalue()


def _hours(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 3600.0:.2f}"


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def issued_now() -> datetime:
    """The issue time of a bulletin: now, in China time."""
    return datetime.now(CHINA_TIME)
