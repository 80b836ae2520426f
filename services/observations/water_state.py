"""Water: a sample's GB 3838-2002 class against the section's target, as the readers show it.

Each value is classed in SQL by ``riskatlas.water_class`` (1..5 = class I..V, 6 = worse than V). A
section's class at a time is its worst classed factor at that time, leaving out total nitrogen, which
rivers are not classed by (地表水环境质量评价办法（试行）, 环办〔2011〕22号, §3: TN evaluates lakes and
reservoirs only) (check: taken from the implementer's reading, not from the text). The map colours are
riskatlas's own (GB 3838 prescribes none): met target green, one class worse orange, more red.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from layers.catalogue import relation

#: A value's GB 3838 class, set-based: the rule of ``riskatlas.water_class`` (migration 0010: the factor is the
#: parameter's ``gb3838`` or the code itself; the best class whose limit the value meets, 6 beyond class V), with
#: its limits joined once per statement instead of looked up per value (a function call per row costs a
#: map's latest values tens of milliseconds). Use with :data:`CLASS_JOIN` on ``{value}`` and ``{parameter}``
#: (a table alias holding ``parameter``); the tests check that both agree on every value.
CLASS_EXPR = sql.SQL("""CASE WHEN g.factor IS NULL THEN NULL ELSE coalesce(
    (SELECT min(i) FROM generate_subscripts(g.limits, 1) i
     WHERE CASE g.kind WHEN 'max' THEN {value} <= g.limits[i] ELSE {value} >= g.limits[i] END), 6)::smallint END""")
CLASS_JOIN = sql.SQL("""LEFT JOIN {parameter_table} gp ON gp.code = {parameter}
LEFT JOIN {limit_table} g ON g.factor = coalesce(gp.gb3838, {parameter})""")


def class_sql(value: sql.Composable, parameter: sql.Composable) -> tuple[sql.Composed, sql.Composed]:
    """The class expression and the joins it needs, for the value and parameter columns given."""
    return (CLASS_EXPR.format(value=value),
            CLASS_JOIN.format(parameter_table=relation("obs_parameter"), limit_table=relation("gb3838_limit"),
                              parameter=parameter))


ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "劣V"}
ROMAN_EN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "worse than V"}
TARGET = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}
#: Factors measured but not used for a river section's overall class.
NOT_IN_SECTION_CLASS = frozenset({"tn"})

MEETS = {"hex": "#2E7D32", "zh": "达标", "en": "meets its target"}
ONE_WORSE = {"hex": "#FF7E00", "zh": "超标一个类别", "en": "one class worse than its target"}
WORSE = {"hex": "#D50000", "zh": "超标两个类别及以上", "en": "two or more classes worse than its target"}
NO_TARGET = {"hex": "#1565C0", "zh": "无目标类别", "en": "no target class"}


@dataclass(frozen=True)
class SectionState:
    """A section's class at one time: ``cls`` 1..6, the factors that set it, against the target."""

    cls: int
    worst: tuple[str, ...]
    target: str | None

    @property
    def meets_target(self) -> bool | None:
        return None if self.target is None else self.cls <= TARGET[self.target]

    def legend(self) -> Mapping[str, str]:
        if self.target is None:
            return NO_TARGET
        over = self.cls - TARGET[self.target]
        return MEETS if over <= 0 else ONE_WORSE if over == 1 else WORSE

    def to_dict(self) -> dict[str, Any]:
        legend = self.legend()
        return {"class": ROMAN[self.cls], "class_num": self.cls, "class_zh": f"{ROMAN[self.cls]}类",
                "class_en": f"class {ROMAN_EN[self.cls]}", "target_class": self.target,
                "meets_target": self.meets_target, "worst": list(self.worst), "colour": legend["hex"],
                "label_zh": legend["zh"], "label_en": legend["en"]}


def section_state(classes: Mapping[str, int | None], target: str | None) -> SectionState | None:
    """The section's state from its factors' classes (None: no factor classed)."""
    counted = {k: v for k, v in classes.items() if v is not None and k not in NOT_IN_SECTION_CLASS}
    if not counted:
        return None
    worst = max(counted.values())
    return SectionState(worst, tuple(sorted(k for k, v in counted.items() if v == worst)), target)


def legend() -> list[dict[str, str]]:
    """The map legend of water sections."""
    return [dict(x) for x in (MEETS, ONE_WORSE, WORSE, NO_TARGET)]
