"""The cross-border section ledger: what each upstream city owes (or is owed) at its sections.

For each monthly record of a water section (``section_record``): the GB 3838-2002 class of each
factor and of the record (single-factor method: the worst counted factor), the section's target
class, and per factor

    amount (yuan) = (measured − target) mg/L × flow m³/s × days × 86 400 s ÷ 10⁶ g/t × rate yuan/t

i.e. the month's load over (or under) target in tonnes times the rate.  Positive: the upstream city
owes the downstream city; negative (with ``bidirectional``): the downstream city owes the upstream
one.  Rates, factors and target overrides are configuration (``layers/data/section_compensation.yaml``).

The two cities of a section come from the river network at the station: the station is snapped to
its nearest reach; the reach just upstream of that one lies in the upstream city (the city holding
most of its length) and the station in the downstream city.  Where both are the same city (a section placed just above a border, e.g. an
exit section) the reach just downstream gives the downstream city instead.  No reach upstream: the
river enters from outside the loaded region (upstream city None).
"""

from __future__ import annotations

import calendar
import csv
import io
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
import yaml

from layers.catalogue import SCHEMA
from layers.substances import CLASSES, DATA, WaterLimit, water_limits
from services.errors import InvalidParameter

CONFIG_FILE = DATA / "section_compensation.yaml"
SECONDS_PER_DAY = 86_400
GRAMS_PER_TONNE = 1_000_000
UNITS = {
    "concentration": "mg/L (= g/m³)", "flow": "m³/s, the month's mean", "load": "t per month",
    "rate": "yuan per t", "amount": "yuan; positive: owed by the upstream city to the downstream city",
    "load_formula": "(measured − target) mg/L × flow m³/s × days in month × 86 400 s ÷ 1 000 000 g/t",
}


@dataclass(frozen=True)
class FactorRule:
    """One compensated factor: its GB 3838 name, record column, rate and group."""

    factor: str
    column: str
    rate_yuan_per_t: float
    group: str | None
    enabled: bool
    check: bool


@dataclass(frozen=True)
class LedgerConfig:
    """The compensation rule as configured."""

    factors: tuple[FactorRule, ...]
    class_factors: tuple[str, ...]
    targets: dict[str, str]
    bidirectional: bool
    snap_max_m: float
    clause: str
    check: bool

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LedgerConfig:
        """The configuration from the parsed YAML; ``ValueError`` names what is wrong."""
        limits = water_limits()
        factors = tuple(FactorRule(str(f["factor"]), str(f["column"]), float(f["rate_yuan_per_t"]), f.get("group"),
                                   bool(f.get("enabled", True)), bool(f.get("check", False))) for f in doc["factors"])
        for f in factors:
            if f.factor not in limits:
                raise ValueError(f"section compensation: factor {f.factor!r} has no GB 3838 limits; known factors "
                                 f"are {sorted(limits)}")
            if f.column not in ("codmn", "cod", "nh3n", "tp", "tn"):
                raise ValueError(f"section compensation: column {f.column!r} of {f.factor} is not a section_record "
                                 "concentration column")
        targets = {str(k): str(v) for k, v in (doc.get("targets") or {}).items()}
        for key, cls_ in targets.items():
            if cls_ not in CLASSES:
                raise ValueError(f"section compensation: target of {key} was {cls_!r}; expected one of {CLASSES}")
        return cls(factors, tuple(doc.get("class_factors") or ()), targets, bool(doc["rule"].get("bidirectional")),
                   float(doc.get("snap_max_m", 2000)), str(doc["rule"].get("clause", "")),
                   bool(doc["rule"].get("check", False)))


@lru_cache(maxsize=4)
def load_config(path: Path = CONFIG_FILE) -> LedgerConfig:
    """The configuration of ``layers/data/section_compensation.yaml`` (or another file like it)."""
    return LedgerConfig.from_dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------------------------
# pure parts: classes and amounts


def month_volume_m3(flow_m3s: float, month: str) -> float:
    """The month's volume (m³) at a mean flow of ``flow_m3s``; ``month`` is YYYY-MM or YYYY-MM-DD."""
    year, mon = int(month[:4]), int(month[5:7])
    return flow_m3s * calendar.monthrange(year, mon)[1] * SECONDS_PER_DAY


def record_class(values: dict[str, float | None], class_factors: tuple[str, ...],
                 limits: dict[str, WaterLimit]) -> tuple[str | None, dict[str, str]]:
    """The class of each factor given and the record's class (the worst of ``class_factors``)."""
    per = {f: limits[f].water_class(v) for f, v in values.items() if v is not None}
    ranked = [per[f] for f in class_factors if f in per]
    order = (*CLASSES, "worse than V")
    return (max(ranked, key=order.index) if ranked else None), per


def factor_amounts(values: dict[str, float | None], flow_m3s: float, month: str, target: str,
                   config: LedgerConfig, limits: dict[str, WaterLimit]) -> list[dict[str, Any]]:
    """The compensated factors of one record: measured, target, excess, load and amount each.

    A factor counts when it is enabled and the record gives it; of a group (CODMn/COD) only the first
    given counts.  Without ``bidirectional`` a factor better than target owes nothing.
    """
    out, used_groups = [], set()
    volume = month_volume_m3(flow_m3s, month)
    for rule in config.factors:
        value = values.get(rule.factor)
        if not rule.enabled or value is None or (rule.group and rule.group in used_groups):
            continue
        if rule.group:
            used_groups.add(rule.group)
        limit = limits[rule.factor].limits[CLASSES.index(target)]
        excess = value - limit
        load_t = excess * volume / GRAMS_PER_TONNE
        amount = load_t * rule.rate_yuan_per_t
        if not config.bidirectional and amount < 0:
            amount = 0.0
        out.append({"factor": rule.factor, "measured_mg_l": value, "target_mg_l": limit, "excess_mg_l": excess,
                    "load_t": load_t, "rate_yuan_per_t": rule.rate_yuan_per_t, "amount_yuan": amount})
    return out


# --------------------------------------------------------------------------------------------------
# the network: which cities a section lies between


@dataclass(frozen=True)
class SectionCities:
    """The cities a section lies between, and the reach its station was snapped to."""

    station_key: str
    upstream: str | None
    downstream: str | None
    reach_key: str | None
    note: str | None = None


def section_cities(conn: psycopg.Connection, station_keys: list[str], snap_max_m: float) -> dict[str, SectionCities]:
    """Upstream and downstream city of each station, from the river network (set-based)."""
    rows = conn.execute(
        f"""WITH st AS (
                SELECT m.key, m.city_code, m.geom FROM {SCHEMA}.monitoring_station m WHERE m.key = ANY(%(keys)s)
            ), snapped AS (
                SELECT st.key, st.city_code, r.id, r.key AS reach_key, r.from_node, r.to_node
                FROM st CROSS JOIN LATERAL (
                    SELECT r.*, ST_Distance(r.geom::geography, st.geom::geography) AS d FROM {SCHEMA}.river r
                    WHERE ST_DWithin(r.geom, st.geom, 1.01 * %(snap)s / (110574.0 * cos(radians(ST_Y(st.geom)))))
                    ORDER BY d, r.id LIMIT 1) r
                WHERE r.d <= %(snap)s
            ), up AS (
                SELECT DISTINCT ON (s.key) s.key, u.id FROM snapped s
                JOIN {SCHEMA}.river u ON u.to_node = s.from_node AND u.id <> s.id
                ORDER BY s.key, u.flow_m3s DESC NULLS LAST, u.key
            ), down AS (
                SELECT DISTINCT ON (s.key) s.key, d.id FROM snapped s
                JOIN {SCHEMA}.river d ON d.from_node = s.to_node AND d.id <> s.id
                ORDER BY s.key, d.flow_m3s DESC NULLS LAST, d.key
            ), majority AS (  -- the city holding most of a reach's length (a reach may weave along a border)
                SELECT DISTINCT ON (x.id) x.id, x.code FROM (
                    SELECT r.id, p.code, sum(ST_Length(ST_Intersection(r.geom, p.geom)::geography)) AS len
                    FROM {SCHEMA}.river r JOIN {SCHEMA}.admin_piece p ON p.level = 'city' AND ST_Intersects(p.geom, r.geom)
                    WHERE r.id IN (SELECT id FROM up UNION SELECT id FROM down)
                    GROUP BY r.id, p.code) x
                ORDER BY x.id, x.len DESC, x.code
            )
            SELECT st.key, st.city_code, s.reach_key, s.id IS NOT NULL AS snapped,
                   up.key IS NOT NULL AS has_up, mu.code AS up_city, down.key IS NOT NULL AS has_down, md.code AS down_city
            FROM st LEFT JOIN snapped s ON s.key = st.key
            LEFT JOIN up ON up.key = st.key LEFT JOIN majority mu ON mu.id = up.id
            LEFT JOIN down ON down.key = st.key LEFT JOIN majority md ON md.id = down.id""",
        {"keys": station_keys, "snap": snap_max_m}).fetchall()
    out = {}
    for r in rows:
        out[r["key"]] = _cities(r, snap_max_m)
    return out


def _cities(r: dict[str, Any], snap_max_m: float) -> SectionCities:
    if not r["snapped"]:
        return SectionCities(r["key"], None, None, None, f"no river reach within {snap_max_m:g} m of the station")
    here = r["city_code"]
    upstream = r["up_city"] if r["has_up"] else None
    if upstream != here or upstream is None:
        note = None if r["has_up"] else "the river enters the loaded region here: the upstream side is outside it"
        return SectionCities(r["key"], upstream, here, r["reach_key"], note)
    downstream = r["down_city"] if r["has_down"] else None
    if downstream == here:
        return SectionCities(r["key"], here, here, r["reach_key"], "the river does not cross a city border here")
    note = None if r["has_down"] else "the river leaves the loaded region here: the downstream side is outside it"
    return SectionCities(r["key"], here, downstream, r["reach_key"], note)


# --------------------------------------------------------------------------------------------------
# the ledger


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


def ledger_csv(ledger: Ledger, *, detail: bool = False) -> str:
    """The ledger as CSV: one row per city pair and month (amounts per factor), or with ``detail`` one
    row per record and factor."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if detail:
        w.writerow(["month", "upstream_code", "upstream_name", "downstream_code", "downstream_name", "station_key",
                    "station_name", "factor", "measured_mg_l", "target_class", "target_mg_l", "flow_m3s", "volume_m3",
                    "load_t", "rate_yuan_per_t", "amount_yuan"])
        for r in ledger.records:
            for f in r["factors"]:
                w.writerow([r["month"], r["upstream_code"] or "outside", r["upstream_name"] or "",
                            r["downstream_code"] or "outside", r["downstream_name"] or "", r["station_key"],
                            r["station_name"], f["factor"], f["measured_mg_l"], r["target_class"], f["target_mg_l"],
                            r["flow_m3s"], round(r["volume_m3"], 1), round(f["load_t"], 6), f["rate_yuan_per_t"],
                            round(f["amount_yuan"], 2)])
        return buf.getvalue()
    factors = sorted({f for p in ledger.pairs for f in p["by_factor"]})
    w.writerow(["month", "upstream_code", "upstream_name", "downstream_code", "downstream_name", "sections",
                *[f"amount_{f}_yuan" for f in factors], "amount_yuan"])
    for p in ledger.pairs:
        w.writerow([p["month"], p["upstream_code"] or "outside", p["upstream_name"] or "",
                    p["downstream_code"] or "outside", p["downstream_name"] or "", " ".join(p["sections"]),
                    *[round(p["by_factor"].get(f, 0.0), 2) for f in factors], round(p["amount_yuan"], 2)])
    return buf.getvalue()
