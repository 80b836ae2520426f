"""Classes and amounts of one record under its scheme, no database: GB 3838 classes, the month's load
and its price (per-tonne schemes), the index P and the fixed sum (index schemes)."""

from __future__ import annotations

import calendar
from typing import Any

from layers.substances import CLASSES, WaterLimit
from services.ledger.config import IndexScheme, PerTonneScheme

SECONDS_PER_DAY = 86_400
GRAMS_PER_TONNE = 1_000_000
MONTHS_PER_YEAR = 12


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
                   scheme: PerTonneScheme, limits: dict[str, WaterLimit]) -> list[dict[str, Any]]:
    """The factors of one record under a per-tonne scheme: measured, target, excess, load and amount each.

    A factor counts when it is enabled and the record gives it; of a group (CODMn/COD) only the first
    given counts.  Each exceeding factor pays its excess load times its rate.  A factor better than its
    target pays nothing and takes nothing off another's amount, unless the scheme rewards better water
    (``reward_for_better_than_target``), when its amount is negative: owed to the upstream city.
    """
    out, used_groups = [], set()
    volume = month_volume_m3(flow_m3s, month)
    for rule in scheme.factors:
        value = values.get(rule.column)
        if not rule.enabled or value is None or (rule.group and rule.group in used_groups):
            continue
        if rule.group:
            used_groups.add(rule.group)
        limit = limits[rule.factor].limits[CLASSES.index(target)]
        excess = value - limit
        load_t = excess * volume / GRAMS_PER_TONNE
        amount = load_t * rule.rate_yuan_per_t
        note = None
        if amount < 0 and not scheme.reward:
            amount = 0.0
            note = "better than target: pays nothing, offsets nothing (the scheme has no reward for it)"
        out.append({"factor": rule.factor, "measured_mg_l": value, "target_mg_l": limit, "excess_mg_l": excess,
                    "load_t": load_t, "rate_yuan_per_t": rule.rate_yuan_per_t, "rate_check": rule.check,
                    "amount_yuan": amount, "note": note})
    return out


def index_terms(values: dict[str, float | None], target: str, scheme: IndexScheme,
                limits: dict[str, WaterLimit]) -> tuple[list[dict[str, Any]], list[str]]:
    """The terms wᵢ × Cᵢ/Sᵢ of an index scheme and the factors the record lacks."""
    terms, missing = [], []
    for f in scheme.factors:
        value = values.get(f.column)
        if value is None:
            missing.append(f.factor)
            continue
        standard = f.standard_mg_l if f.standard_mg_l is not None else limits[f.factor].limits[CLASSES.index(target)]
        ratio = value / standard
        terms.append({"factor": f.factor, "measured_mg_l": value, "standard_mg_l": standard, "ratio": ratio,
                      "weight": f.weight, "term": f.weight * ratio})
    return terms, missing


def index_amount(values: dict[str, float | None], target: str, scheme: IndexScheme,
                 limits: dict[str, WaterLimit], *, months: int = 1) -> dict[str, Any]:
    """P = K × Σ wᵢ × Cᵢ/Sᵢ and who pays: upstream (positive) when P > threshold, else downstream
    (negative).  The amount is ``months`` twelfths of the yearly sum (12 for a year's settlement);
    None, with the missing factors, when the record lacks one of the index's factors."""
    terms, missing = index_terms(values, target, scheme, limits)
    out: dict[str, Any] = {"k": scheme.k, "threshold": scheme.threshold, "terms": terms, "p": None,
                           "payer": None, "amount_yuan": None, "missing": missing,
                           "amount_yuan_per_year": scheme.amount_yuan_per_year,
                           "share_of_year": f"{months}/{MONTHS_PER_YEAR}"}
    if missing:
        out["note"] = (f"the index needs {', '.join(f.factor for f in scheme.factors)}; the record lacks "
                       f"{', '.join(missing)}")
        return out
    p = scheme.k * sum(t["term"] for t in terms)
    share = scheme.amount_yuan_per_year * months / MONTHS_PER_YEAR
    out["p"] = p
    out["payer"] = "upstream" if p > scheme.threshold else "downstream"
    out["amount_yuan"] = share if p > scheme.threshold else -share
    return out
