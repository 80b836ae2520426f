"""The compensation schemes as configured in ``layers/data/section_compensation.yaml``.

A scheme is a property of each section: a station key names its scheme, else the section's city pair,
else its province pair (the first two digits of the city codes), else the section has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from layers.substances import CLASSES, DATA, water_limits

CONFIG_FILE = DATA / "section_compensation.yaml"
COLUMNS = ("codmn", "cod", "nh3n", "tp", "tn")
KINDS = ("per-tonne", "fixed-amount-index")


@dataclass(frozen=True)
class FactorRule:
    """One factor of a per-tonne scheme: its GB 3838 name, record column, rate, group and source."""

    factor: str
    column: str
    rate_yuan_per_t: float
    group: str | None
    enabled: bool
    check: bool
    source: str = ""


@dataclass(frozen=True)
class IndexFactor:
    """One term of an index scheme: measured ``column`` over the standard (the GB 3838 limit of the
    section's target class, or ``standard_mg_l`` when the agreement fixes one), times ``weight``."""

    factor: str
    column: str
    weight: float
    standard_mg_l: float | None


@dataclass(frozen=True)
class PerTonneScheme:
    """Each exceeding factor pays (measured − target) × monthly volume × rate; factors do not offset."""

    key: str
    title: str
    clause: str
    check: bool
    factors: tuple[FactorRule, ...]
    reward: bool
    notes: str = ""
    kind: str = "per-tonne"

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "title": self.title, "clause": self.clause, "check": self.check,
                "reward_for_better_than_target": self.reward, "notes": self.notes,
                "factors": [{"factor": f.factor, "rate_yuan_per_t": f.rate_yuan_per_t, "enabled": f.enabled,
                             "group": f.group, "check": f.check, "source": f.source} for f in self.factors]}


@dataclass(frozen=True)
class IndexScheme:
    """A two-way fixed-amount agreement: P = K × Σ wᵢ × Cᵢ/Sᵢ; upstream pays when P > threshold, else
    downstream pays; ``amount_yuan_per_year`` each way, settled on the year."""

    key: str
    title: str
    clause: str
    check: bool
    k: float
    k_source: str
    k_check: bool
    threshold: float
    factors: tuple[IndexFactor, ...]
    amount_yuan_per_year: float
    amount_source: str
    amount_check: bool
    notes: str = ""
    kind: str = "fixed-amount-index"

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "title": self.title, "clause": self.clause, "check": self.check,
                "k": self.k, "k_source": self.k_source, "k_check": self.k_check, "threshold": self.threshold,
                "amount_yuan_per_year": self.amount_yuan_per_year, "amount_source": self.amount_source,
                "amount_check": self.amount_check, "notes": self.notes,
                "factors": [{"factor": f.factor, "weight": f.weight, "standard_mg_l": f.standard_mg_l}
                            for f in self.factors]}


Scheme = PerTonneScheme | IndexScheme


@dataclass(frozen=True)
class LedgerConfig:
    """The schemes, which section follows which, the class factors, target overrides and snapping."""

    schemes: dict[str, Scheme]
    sections: dict[str, str]
    pairs: dict[str, str]
    province_pairs: dict[str, str]
    class_factors: tuple[str, ...]
    targets: dict[str, str]
    snap_max_m: float

    def scheme_for(self, station_key: str, upstream: str | None,
                   downstream: str | None) -> tuple[Scheme | None, str]:
        """The scheme of a section and why: by station, by city pair, by province pair, or none."""
        if station_key in self.sections:
            return self.schemes[self.sections[station_key]], f"station {station_key}"
        pair = f"{upstream or 'outside'}-{downstream or 'outside'}"
        if pair in self.pairs:
            return self.schemes[self.pairs[pair]], f"city pair {pair}"
        provinces = f"{upstream[:2] if upstream else 'outside'}-{downstream[:2] if downstream else 'outside'}"
        if upstream and downstream and provinces in self.province_pairs:
            return self.schemes[self.province_pairs[provinces]], f"province pair {provinces}"
        return None, f"no scheme is configured for station {station_key}, city pair {pair} or province pair " \
                     f"{provinces}"

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LedgerConfig:
        """The configuration from the parsed YAML; ``ValueError`` names what is wrong."""
        limits = water_limits()
        schemes: dict[str, Scheme] = {}
        for key, spec in (doc.get("schemes") or {}).items():
            schemes[str(key)] = _scheme(str(key), spec, limits)
        if not schemes:
            raise ValueError("section compensation: no `schemes` configured")
        maps = {}
        for name in ("sections", "pairs", "province_pairs"):
            maps[name] = {str(k): str(v) for k, v in (doc.get(name) or {}).items()}
            for k, v in maps[name].items():
                if v not in schemes:
                    raise ValueError(f"section compensation: {name}[{k!r}] names scheme {v!r}; configured schemes "
                                     f"are {sorted(schemes)}")
        targets = {str(k): str(v) for k, v in (doc.get("targets") or {}).items()}
        for key, cls_ in targets.items():
            if cls_ not in CLASSES:
                raise ValueError(f"section compensation: target of {key} was {cls_!r}; expected one of {CLASSES}")
        return cls(schemes, maps["sections"], maps["pairs"], maps["province_pairs"],
                   tuple(doc.get("class_factors") or ()), targets, float(doc.get("snap_max_m", 2000)))


def _scheme(key: str, spec: dict[str, Any], limits: dict[str, Any]) -> Scheme:
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"section compensation: scheme {key!r} has kind {kind!r}; expected one of {KINDS}")
    for f in spec.get("factors") or ():
        if f["factor"] not in limits:
            raise ValueError(f"section compensation: scheme {key!r}: factor {f['factor']!r} has no GB 3838 limits; "
                             f"known factors are {sorted(limits)}")
        if f["column"] not in COLUMNS:
            raise ValueError(f"section compensation: scheme {key!r}: column {f['column']!r} of {f['factor']} is not "
                             f"a section_record concentration column {COLUMNS}")
    title, clause = str(spec.get("title", key)), str(spec.get("clause", ""))
    check, notes = bool(spec.get("check", False)), str(spec.get("notes", "")).strip()
    if kind == "per-tonne":
        factors = tuple(FactorRule(str(f["factor"]), str(f["column"]), float(f["rate_yuan_per_t"]), f.get("group"),
                                   bool(f.get("enabled", True)), bool(f.get("check", False)), str(f.get("source", "")))
                        for f in spec["factors"])
        if any(f.rate_yuan_per_t < 0 for f in factors):
            raise ValueError(f"section compensation: scheme {key!r} has a negative rate; rates are yuan per tonne ≥ 0")
        return PerTonneScheme(key, title, clause, check, factors,
                              bool(spec.get("reward_for_better_than_target", False)), notes)
    terms = tuple(IndexFactor(str(f["factor"]), str(f["column"]), float(f["weight"]),
                              None if f.get("standard_mg_l") is None else float(f["standard_mg_l"]))
                  for f in spec["factors"])
    if not terms:
        raise ValueError(f"section compensation: scheme {key!r} has no index factors")
    if any(t.weight <= 0 or (t.standard_mg_l is not None and t.standard_mg_l <= 0) for t in terms):
        raise ValueError(f"section compensation: scheme {key!r}: index weights and standards must be > 0")
    k, amount = float(spec["k"]), float(spec["amount_yuan_per_year"])
    if k <= 0 or amount < 0:
        raise ValueError(f"section compensation: scheme {key!r}: k was {k:g} (expected > 0) and "
                         f"amount_yuan_per_year {amount:g} (expected ≥ 0)")
    return IndexScheme(key, title, clause, check, k, str(spec.get("k_source", "")), bool(spec.get("k_check")),
                       float(spec.get("threshold", 1.0)), terms, amount, str(spec.get("amount_source", "")),
                       bool(spec.get("amount_check")), notes)


@lru_cache(maxsize=4)
def load_config(path: Path = CONFIG_FILE) -> LedgerConfig:
    """The configuration of ``layers/data/section_compensation.yaml`` (or another file like it)."""
    return LedgerConfig.from_dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
