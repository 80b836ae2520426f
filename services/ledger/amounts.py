"""Classes and amounts of one record, no database: GB 3838 classes, the month's load and its price."""

from __future__ import annotations

import calendar
from typing import Any

from layers.substances import CLASSES, WaterLimit
from services.ledger.config import LedgerConfig

SECONDS_PER_DAY = 86_400
GRAMS_PER_TONNE = 1_000_000


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
