"""The ledger of a month and city pair: each record with its classes and amounts, totals by city pair."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from layers.catalogue import SCHEMA
from layers.substances import CLASSES, WaterLimit, water_limits
from services.errors import InvalidParameter
from services.ledger.amounts import factor_amounts, index_amount, month_volume_m3, record_class
from services.ledger.config import IndexScheme, LedgerConfig, PerTonneScheme, load_config
from services.ledger.sections import SectionCities, section_cities

COLUMN_FACTOR = {"codmn": "CODMn", "cod": "COD", "nh3n": "NH3-N", "tp": "TP", "tn": "TN"}
UNITS = {
    "concentration": "mg/L (= g/m³)", "flow": "m³/s, the month's mean", "load": "t per month",
    "rate": "yuan per t", "amount": "yuan; positive: owed by the upstream city to the downstream city",
    "load_formula": "(measured − target) mg/L × flow m³/s × days in month × 86 400 s ÷ 1 000 000 g/t",
    "per_tonne": "each exceeding factor pays load × rate; a factor better than target pays nothing and offsets "
                 "nothing unless its scheme rewards better water",
    "index_formula": "P = K × Σ wᵢ × Cᵢ/Sᵢ; upstream pays the fixed sum when P > threshold, downstream when "
                     "P ≤ threshold; a month accrues 1/12 of the yearly sum",
}


@dataclass
class Ledger:
    """Records with their schemes, classes and amounts, totals by city pair and month, and the yearly
    index of the sections under a fixed-amount agreement."""

    records: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    years: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=lambda: dict(UNITS))
    rule: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"units": self.units, "rule": self.rule, "pairs": self.pairs, "years": self.years,
                "records": self.records}


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
    """The ledger of the records of ``month`` (YYYY-MM; all months when None) and city ``pair``.

    Each record names its scheme and shows its computation; ``pairs`` sums the amounts by month and
    city pair; ``years`` gives, for each section under a fixed-amount index scheme, the yearly index
    from the mean concentrations of the months loaded (what the agreements settle on).
    """
    if month is not None and not _MONTH.match(month):
        raise InvalidParameter(f"`month` was {month[:20]!r} but is expected to be YYYY-MM")
    wanted = parse_pair(pair)
    config = config or load_config()
    limits = water_limits()
    rows = conn.execute(
        f"""SELECT r.station_key, to_char(r.month, 'YYYY-MM') AS month, r.flow_m3s, r.codmn, r.cod, r.nh3n, r.tp, r.tn,
                   m.name AS station_name, m.kind, m.target_class, m.synthetic
            FROM {SCHEMA}.section_record r JOIN {SCHEMA}.monitoring_station m ON m.key = r.station_key
            WHERE %(month)s::text IS NULL OR to_char(r.month, 'YYYY-MM') = %(month)s
            ORDER BY r.month, r.station_key""", {"month": month}).fetchall()
    cities = section_cities(conn, sorted({r["station_key"] for r in rows}), config.snap_max_m)
    names = {r["code"]: r["name"] for r in conn.execute(
        f"SELECT code, name FROM {SCHEMA}.admin_area WHERE level = 'city'").fetchall()}
    ledger = Ledger(rule={"schemes": {k: s.describe() for k, s in config.schemes.items()},
                          "sections": config.sections, "pairs": config.pairs,
                          "province_pairs": config.province_pairs})
    totals: dict[tuple[str, Any, Any], dict[str, Any]] = {}
    yearly: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        c = cities[r["station_key"]]
        if wanted is not None and (c.upstream, c.downstream) != wanted:
            continue
        rec = _record(r, c, config, limits, names)
        ledger.records.append(rec)
        if rec["scheme"] and rec["scheme"]["kind"] == "fixed-amount-index" and rec["target_class"]:
            yearly.setdefault((r["station_key"], r["month"][:4]), []).append(rec)
        if rec["amount_yuan"] is None or c.upstream == c.downstream:
            continue
        t = totals.setdefault((r["month"], c.upstream, c.downstream), {
            "month": r["month"], "upstream_code": c.upstream, "upstream_name": names.get(c.upstream or ""),
            "downstream_code": c.downstream, "downstream_name": names.get(c.downstream or ""),
            "amount_yuan": 0.0, "by_factor": {}, "by_scheme": {}, "sections": [], "synthetic": False})
        t["amount_yuan"] += rec["amount_yuan"]
        key = rec["scheme"]["key"]
        t["by_scheme"][key] = t["by_scheme"].get(key, 0.0) + rec["amount_yuan"]
        for f in rec["factors"]:
            t["by_factor"][f["factor"]] = t["by_factor"].get(f["factor"], 0.0) + f["amount_yuan"]
        t["sections"].append(r["station_key"])
        t["synthetic"] = t["synthetic"] or bool(rec["synthetic"])
    ledger.pairs = [totals[k] for k in sorted(totals, key=lambda k: (k[0], k[1] or "", k[2] or ""))]
    ledger.years = [_year(key, recs, config, limits) for key, recs in sorted(yearly.items())]
    return ledger


def _record(r: dict[str, Any], c: SectionCities, config: LedgerConfig, limits: dict[str, WaterLimit],
            names: dict[str, str]) -> dict[str, Any]:
    """One record with its classes, target, scheme and amounts (or why it has none)."""
    values = {col: r[col] for col in COLUMN_FACTOR}
    by_factor = {COLUMN_FACTOR[col]: v for col, v in values.items()}
    overall, per = record_class(by_factor, config.class_factors, limits)
    target = config.targets.get(r["station_key"]) or r["target_class"]
    scheme, why = config.scheme_for(r["station_key"], c.upstream, c.downstream)
    out: dict[str, Any] = {
        "station_key": r["station_key"], "station_name": r["station_name"], "kind": r["kind"], "month": r["month"],
        "synthetic": bool(r["synthetic"]),
        "flow_m3s": r["flow_m3s"], "volume_m3": month_volume_m3(r["flow_m3s"], r["month"]),
        "values_mg_l": {f: v for f, v in by_factor.items() if v is not None}, "factor_classes": per, "class": overall,
        "target_class": target, "meets_target": None if overall is None or target is None else
        (overall != "worse than V" and CLASSES.index(overall) <= CLASSES.index(target)),
        "upstream_code": c.upstream, "upstream_name": names.get(c.upstream or ""),
        "downstream_code": c.downstream, "downstream_name": names.get(c.downstream or ""),
        "reach_key": c.reach_key, "scheme": None, "scheme_by": why, "factors": [], "index": None,
        "amount_yuan": None, "note": c.note,
    }
    if scheme is not None:
        out["scheme"] = {"key": scheme.key, "kind": scheme.kind, "title": scheme.title, "check": scheme.check}
    if c.upstream == c.downstream and c.upstream is not None:
        return out  # not a border: nothing is owed across it (the note says so)
    if target is None:
        out["note"] = "the section has no target class (monitoring_station.target_class or targets in the configuration)"
        return out
    if scheme is None:
        out["note"] = why
        return out
    if isinstance(scheme, PerTonneScheme):
        out["factors"] = factor_amounts(values, r["flow_m3s"], r["month"], target, scheme, limits)
        out["amount_yuan"] = sum(f["amount_yuan"] for f in out["factors"])
        return out
    out["index"] = index_amount(values, target, scheme, limits)
    out["amount_yuan"] = out["index"]["amount_yuan"]
    if out["index"]["amount_yuan"] is None:
        out["note"] = out["index"]["note"]
    else:
        out["note"] = (f"the agreement settles on the year: this month's accrual is 1/12 of "
                       f"{scheme.amount_yuan_per_year:,.0f} yuan, owed by the {out['index']['payer']} city "
                       f"(P = {out['index']['p']:.4f} {'>' if out['index']['payer'] == 'upstream' else '≤'} "
                       f"{scheme.threshold:g})")
    return out


def _year(key: tuple[str, str], recs: list[dict[str, Any]], config: LedgerConfig,
          limits: dict[str, WaterLimit]) -> dict[str, Any]:
    """A section's year under an index scheme: P from the mean concentration of each factor over the
    months loaded, and the yearly sum in its direction (a share when fewer than 12 months are loaded)."""
    first = recs[0]
    scheme = config.schemes[first["scheme"]["key"]]
    assert isinstance(scheme, IndexScheme)
    means: dict[str, float | None] = {}
    for col, factor in COLUMN_FACTOR.items():
        given = [r["values_mg_l"][factor] for r in recs if factor in r["values_mg_l"]]
        means[col] = sum(given) / len(given) if given else None
    months = len(recs)
    result = index_amount(means, first["target_class"], scheme, limits, months=months)
    return {"station_key": key[0], "year": key[1], "scheme": first["scheme"], "months": months,
            "complete": months == 12, "upstream_code": first["upstream_code"],
            "downstream_code": first["downstream_code"], "synthetic": first["synthetic"],
            "mean_mg_l": {COLUMN_FACTOR[c]: v for c, v in means.items() if v is not None}, **result}
