"""Which concentration counts as "arrival" at a point of a spill's path, and where it comes from (DESIGN 8.5).

In order: the threshold the request gives; else the substance's GB 3838-2002 limit for the water class
of the point (a station's target class, the class GB 3838 assigns to the kind of receptor, class III
elsewhere); else the detection limit the request gives; else none (only the peak is reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layers.substances import CLASSES, Substance, WaterLimit, water_limits

__all__ = ["Threshold", "Thresholds", "DEFAULT_CLASS", "RECEPTOR_CLASSES"]

#: The GB 3838-2002 class of the water at a kind of receptor, by GB 3838-2002 §3 (水域功能和标准分类):
#: I 主要适用于源头水、国家自然保护区; II 主要适用于集中式生活饮用水地表水源地一级保护区…;
#: III 主要适用于集中式生活饮用水地表水源地二级保护区…  An intake lies in its level-1 zone.
#: Keys: (receptor kind, level or kind of the receptor, or None for any).
RECEPTOR_CLASSES: dict[tuple[str, str | None], tuple[str, str, str]] = {
    ("intake", None): ("II", "取水口位于一级保护区（GB 3838-2002 第3章：II类）",
                       "an intake lies in its level-1 protection zone (GB 3838-2002 §3: class II)"),
    ("protection_zone", "1"): ("II", "饮用水水源一级保护区（GB 3838-2002 第3章：II类）",
                               "level-1 drinking-water protection zone (GB 3838-2002 §3: class II)"),
    ("protection_zone", "2"): ("III", "饮用水水源二级保护区（GB 3838-2002 第3章：III类）",
                               "level-2 drinking-water protection zone (GB 3838-2002 §3: class III)"),
    ("protection_zone", "quasi"): ("III", "饮用水水源准保护区（按二级保护区，III类）",
                                   "quasi protection zone (as level 2: class III)"),
    ("protected_area", "nature-reserve"): ("I", "自然保护区（GB 3838-2002 第3章：I类）",
                                           "nature reserve (GB 3838-2002 §3: class I)"),
}
#: Where nothing says otherwise (reach ends, jurisdiction crossings, stations without a target class,
#: other protected areas): class III, the class GB 3838-2002 §3 gives general drinking-water, fishery
#: and swimming waters.
DEFAULT_CLASS = ("III", "未知水域功能，按III类（GB 3838-2002 第3章）",
                 "no water function known: class III (GB 3838-2002 §3)")


@dataclass(frozen=True)
class Threshold:
    """A concentration (mg/L) that counts as arrival at one point, and where it comes from."""

    mg_l: float
    basis: str  # "request", "gb3838" or "detection_limit"
    water_class: str | None
    source_zh: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        """As the response states it."""
        return {"mg_l": self.mg_l, "basis": self.basis, "water_class": self.water_class,
                "source_zh": self.source_zh, "source": self.source}


class Thresholds:
    """The threshold of every point of one spill: the request's, the substance's GB 3838 limits, a detection limit."""

    def __init__(self, sub: Substance, threshold_mg_l: float | None, detection_limit_mg_l: float | None) -> None:
        self.sub, self.given, self.detection = sub, threshold_mg_l, detection_limit_mg_l
        limit = water_limits().get(sub.gb3838) if sub.gb3838 else None
        self.limit: WaterLimit | None = limit if limit is not None and limit.kind == "max" else None

    def at(self, kind: str | None, properties: dict[str, Any]) -> Threshold | None:
        """The threshold at a point: ``kind`` is the receptor kind (None for a reach end or a border crossing)."""
        if self.given is not None:
            return Threshold(self.given, "request", None, "请求给定阈值", "threshold given in the request")
        if self.limit is not None:
            cls, zh, en = self._water_class(kind, properties)
            lim = self.limit
            value = lim.limits[CLASSES.index(cls)]
            return Threshold(value, "gb3838", cls, f"GB 3838-2002 {lim.name_zh} {cls}类限值（{lim.clause}）；{zh}",
                             f"GB 3838-2002 class {cls} limit of {lim.factor} ({lim.clause}); {en}")
        if self.detection is not None:
            return Threshold(self.detection, "detection_limit", None,
                             f"检出限（请求给定）；{self.sub.name_zh}无GB 3838-2002限值",
                             f"detection limit given in the request; {self.sub.name_en} has no GB 3838-2002 limit")
        return None

    @staticmethod
    def _water_class(kind: str | None, properties: dict[str, Any]) -> tuple[str, str, str]:
        target = properties.get("target_class")
        if kind in ("cross_border_section", "monitoring_station") and target in CLASSES:
            return target, f"断面目标水质{target}类", f"the station's target class {target}"
        for key in ((kind, properties.get("level")), (kind, properties.get("kind")), (kind, None)):
            if key in RECEPTOR_CLASSES:
                return RECEPTOR_CLASSES[key]
        return DEFAULT_CLASS
