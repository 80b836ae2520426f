"""The compensation rule as configured in ``layers/data/section_compensation.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from layers.substances import CLASSES, DATA, water_limits

CONFIG_FILE = DATA / "section_compensation.yaml"


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
