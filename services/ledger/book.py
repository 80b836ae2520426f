"""The ledger of a month and city pair: each record with its classes and amounts, totals by city pair."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from layers.catalogue import SCHEMA
from layers.substances import CLASSES, WaterLimit, water_limits
from services.errors import InvalidParameter
from services.ledger.amounts import factor_amounts, month_volume_m3, record_class
from services.ledger.config import LedgerConfig, load_config
from services.ledger.sections import SectionCities, section_cities

UNITS = {
    "concentration": "mg/L (= g/m³)", "flow": "m³/s, the month's mean", "load": "t per month",
    "rate": "yuan per t", "amount": "yuan; positive: owed by the upstream city to the downstream city",
    "load_formula": "(measured − target) mg/L × flow m³/s × days in month × 86 400 s ÷ 1 000 000 g/t",
}


@dataclass
class Ledger:
    """Records with their classes and amounts, and totals by city pair and month."""

    records: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=lambda: dict(UNITS))
    rule: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"units": self.units, "rule": self.rule, "pairs": self.pairs, "records": self.records}


_PAIR = re.compile(r"^(\d{6}|outside)-(\d{6}|outside)$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def parse_pair(text: str | None) -> tuple[str | None, str | None] | None:
    """``UPSTREAM-DOWNSTREAM`` city codes (``outside`` for beyond the region) or None for every pair."""
    if text is None or not text.strip():
        return None
    hit = _PAIR.match(text.strip())
    if not hit:
        raise InvalidParameter(f"`pair` was {text[:40]!r} but is expected to be two 6-digit city codes, upstream "
                               "first, e.g. 341100-320100 (or 'outside' for beyond the region)")
    up, down = hit.groups()
    return (None if up == "outside" else up, None if down == "outside" else down)


def build_ledger(conn: psycopg.Connection, *, month: str | None = None, pair: str | None = None,
                 config: LedgerConfig | None = None) -> Ledger:
    """The ledger of the records of ``month`` (YYYY-MM; all months when None) and city ``pair``."""
    if month is not None and not _MONTH.match(month):
        raise InvalidParameter(f"`month` was {month[:20]!r} but is expected to be YYYY-MM")
    wanted = parse_pair(pair)
    config = config or load_config()
    limits = water_limits()
    rows = conn.execute(
        f"""SELECT r.station_key, to_char(r.month, 'YYYY-MM') AS month, r.flow_m3s, r.codmn, r.cod, r.nh3n, r.tp, r.tn,
                   m.name AS station_name, m.kind, m.target_class
            FROM {SCHEMA}.section_record r JOIN {SCHEMA}.monitoring_station m ON m.key = r.station_key
            WHERE %(month)s::text IS NULL OR to_char(r.month, 'YYYY-MM') = %(month)s
            ORDER BY r.month, r.station_key""", {"month": month}).fetchall()
    cities = section_cities(conn, sorted({r["station_key"] for r in rows}), config.snap_max_m)
    names = {r["code"]: r["name"] for r in conn.execute(
        f"SELECT code, name FROM {SCHEMA}.admin_area WHERE level = 'city'").fetchall()}
    ledger = Ledger(rule={"clause": config.clause, "check": config.check, "bidirectional": config.bidirectional,
                          "factors": [{"factor": f.factor, "rate_yuan_per_t": f.rate_yuan_per_t, "enabled": f.enabled,
                                       "group": f.group, "check": f.check} for f in config.factors]})
    totals: dict[tuple[str, Any, Any], dict[str, Any]] = {}
    for r in rows:
        c = cities[r["station_key"]]
        if wanted is not None and (c.upstream, c.downstream) != wanted:
            continue
        rec = _record(r, c, config, limits, names)
        ledger.records.append(rec)
        if rec["amount_yuan"] is None or c.upstream == c.downstream:
            continue
        t = totals.setdefault((r["month"], c.upstream, c.downstream), {
            "month": r["month"], "upstream_code": c.upstream, "upstream_name": names.get(c.upstream or ""),
            "downstream_code": c.downstream, "downstream_name": names.get(c.downstream or ""),
            "amount_yuan": 0.0, "by_factor": {}, "sections": []})
        t["amount_yuan"] += rec["amount_yuan"]
        for f in rec["factors"]:
            t["by_factor"][f["factor"]] = t["by_factor"].get(f["factor"], 0.0) + f["amount_yuan"]
        t["sections"].append(r["station_key"])
    ledger.pairs = [totals[k] for k in sorted(totals, key=lambda k: (k[0], k[1] or "", k[2] or ""))]
    return ledger


def _record(r: dict[str, Any], c: SectionCities, config: LedgerConfig, limits: dict[str, WaterLimit],
            names: dict[str, str]) -> dict[str, Any]:
    """One record with its classes, target and amounts (or why it has none)."""
    values = {rule.factor: r[rule.column] for rule in config.factors}
    overall, per = record_class(values, config.class_factors, limits)
    target = config.targets.get(r["station_key"]) or r["target_class"]
    out: dict[str, Any] = {
        "station_key": r["station_key"], "station_name": r["station_name"], "kind": r["kind"], "month": r["month"],
        "flow_m3s": r["flow_m3s"], "volume_m3": month_volume_m3(r["flow_m3s"], r["month"]),
        "values_mg_l": {f: v for f, v in values.items() if v is not None}, "factor_classes": per, "class": overall,
        "target_class": target, "meets_target": None if overall is None or target is None else
        (overall != "worse than V" and CLASSES.index(overall) <= CLASSES.index(target)),
        "upstream_code": c.upstream, "upstream_name": names.get(c.upstream or ""),
        "downstream_code": c.downstream, "downstream_name": names.get(c.downstream or ""),
        "reach_key": c.reach_key, "factors": [], "amount_yuan": None, "note": c.note,
    }
    if target is None:
        out["note"] = "the section has no target class (monitoring_station.target_class or targets in the configuration)"
        return out
    out["factors"] = factor_amounts(values, r["flow_m3s"], r["month"], target, config, limits)
    out["amount_yuan"] = sum(f["amount_yuan"] for f in out["factors"])
    return out
