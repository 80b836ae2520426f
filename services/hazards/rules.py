"""The rules of the border-zone flags, read from ``layers/data/hazard_thresholds.yaml``.

:func:`load_rules` validates the file and returns :class:`HazardRules`; nothing else in the package
holds a threshold.  :meth:`HazardRules.severity` is the one statement of the severity rule in Python;
:mod:`services.hazards.kinds` writes the same rule as SQL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from layers.catalogue import PROTECTION_ZONE, RISK_LEVELS

RULES_FILE = Path(__file__).resolve().parents[2] / "layers" / "data" / "hazard_thresholds.yaml"

#: The flag kinds, in the order a full refresh computes them.
KINDS = ("city-border", "province-border", "upstream", "protection-zone", "protected-area")
#: Kinds measured to a border line of the given admin level.
BORDER_KINDS = {"city-border": "city", "province-border": "province"}
ZONE_LEVELS: tuple[str, ...] = PROTECTION_ZONE.field("level").domain or ("1", "2", "quasi")


class RulesError(ValueError):
    """The thresholds file is malformed; the message names the entry and what is expected."""


@dataclass(frozen=True)
class Severity:
    """Severity levels (lowest first) and how a flag's level is chosen."""

    levels: tuple[str, ...]
    base: dict[str, str]
    close_fraction: float
    inside_floor: str
    zone_floor: dict[str, str] = field(default_factory=dict)

    def rank(self, level: str) -> int:
        return self.levels.index(level)


@dataclass(frozen=True)
class HazardRules:
    """Thresholds, horizon, tolerances and the severity rule, validated."""

    border_snap_tolerance_m: float
    border_piece_vertices: int
    river_snap_m: float
    travel_time_horizon_h: float
    unknown_risk_level: str
    skip_status: tuple[str, ...]
    thresholds: dict[str, dict[str, float]]  # kind -> risk level -> metres
    zone_thresholds: dict[str, dict[str, float]]  # zone level -> risk level -> metres
    severity_rule: Severity
    sha256: str = ""

    @property
    def horizon_s(self) -> float:
        return self.travel_time_horizon_h * 3600.0

    def threshold(self, kind: str, risk_level: str, zone_level: str | None = None) -> float:
        """The distance (m) within which a source of ``risk_level`` gets a ``kind`` flag."""
        if kind == "protection-zone":
            if zone_level is None:
                raise ValueError("a protection-zone threshold needs the zone level")
            return self.zone_thresholds[zone_level][risk_level]
        return self.thresholds[kind][risk_level]

    def max_threshold(self, kind: str) -> float:
        """The largest threshold of a kind, over risk levels (and zone levels)."""
        if kind == "protection-zone":
            return max(v for row in self.zone_thresholds.values() for v in row.values())
        return max(self.thresholds[kind].values())

    def severity(self, kind: str, risk_level: str, *, distance_m: float, threshold_m: float | None = None,
                 travel_time_s: float | None = None, zone_level: str | None = None) -> str:
        """The severity of one flag: base by risk level, a step up when close, floors when inside."""
        s = self.severity_rule
        rank = s.rank(s.base[risk_level])
        if kind == "upstream":
            close = travel_time_s is not None and travel_time_s <= s.close_fraction * self.horizon_s
        else:
            close = threshold_m is not None and distance_m <= s.close_fraction * threshold_m
        rank += 1 if close else 0
        if kind in ("protection-zone", "protected-area") and distance_m == 0:
            rank = max(rank, s.rank(s.inside_floor))
        if kind == "protection-zone" and zone_level in s.zone_floor:
            rank = max(rank, s.rank(s.zone_floor[zone_level]))
        return s.levels[min(rank, len(s.levels) - 1)]

    def threshold_rows(self) -> list[dict[str, Any]]:
        """Every threshold as ``{kind, zone_level, risk_level, threshold_m}`` (zone_level '' if none)."""
        rows = [{"kind": k, "zone_level": "", "risk_level": r, "threshold_m": v}
                for k, by_level in self.thresholds.items() for r, v in by_level.items()]
        rows += [{"kind": "protection-zone", "zone_level": z, "risk_level": r, "threshold_m": v}
                 for z, by_level in self.zone_thresholds.items() for r, v in by_level.items()]
        return rows


def load_rules(path: str | Path | None = None) -> HazardRules:
    """Read and validate the thresholds file (the project's own unless ``path`` is given)."""
    p = Path(path) if path is not None else RULES_FILE
    text = p.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise RulesError(f"{p}: expected a mapping at the top level")
    return rules_from_dict(doc, sha256=hashlib.sha256(text.encode()).hexdigest(), where=str(p))


def rules_from_dict(doc: dict[str, Any], *, sha256: str | None = None, where: str = "rules") -> HazardRules:
    """Validate a parsed thresholds document; every number must be a non-negative metre value."""
    t = _mapping(doc, "thresholds_m", where)
    thresholds = {k: _by_risk_level(_mapping(t, k, where), f"{where}: thresholds_m.{k}")
                  for k in ("city-border", "province-border", "protected-area")}
    zones = _mapping(t, "protection-zone", where)
    zone_thresholds = {z: _by_risk_level(_mapping(zones, z, where), f"{where}: thresholds_m.protection-zone.{z}")
                       for z in ZONE_LEVELS}
    sev = _mapping(doc, "severity", where)
    levels = tuple(str(v) for v in sev.get("levels", ()))
    if len(levels) < 2:
        raise RulesError(f"{where}: severity.levels was {levels!r} but is expected to list at least two levels")
    base = {str(k): str(v) for k, v in _mapping(sev, "base", where).items()}
    floors = {str(k): str(v) for k, v in (sev.get("zone_floor") or {}).items()}
    for name, value in [*(("base." + k, v) for k, v in base.items()), ("inside_floor", str(sev.get("inside_floor"))),
                        *(("zone_floor." + k, v) for k, v in floors.items())]:
        if value not in levels:
            raise RulesError(f"{where}: severity.{name} was {value!r} but is expected to be one of {list(levels)}")
    if set(base) != set(RISK_LEVELS):
        raise RulesError(f"{where}: severity.base names {sorted(base)} but is expected to name {list(RISK_LEVELS)}")
    unknown = str(doc.get("unknown_risk_level", "general"))
    if unknown not in RISK_LEVELS:
        raise RulesError(f"{where}: unknown_risk_level was {unknown!r} but is expected to be one of {list(RISK_LEVELS)}")
    rules = HazardRules(
        border_snap_tolerance_m=_metres(doc.get("border_snap_tolerance_m"), f"{where}: border_snap_tolerance_m"),
        border_piece_vertices=int(doc.get("border_piece_vertices", 32)),
        river_snap_m=_metres(doc.get("river_snap_m"), f"{where}: river_snap_m"),
        travel_time_horizon_h=_metres(doc.get("travel_time_horizon_h"), f"{where}: travel_time_horizon_h"),
        unknown_risk_level=unknown,
        skip_status=tuple(str(v) for v in doc.get("skip_status") or ()),
        thresholds=thresholds,
        zone_thresholds=zone_thresholds,
        severity_rule=Severity(levels, base, _fraction(sev.get("close_fraction"), where),
                               str(sev.get("inside_floor")), floors),
        sha256=sha256 or hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest(),
    )
    if rules.border_piece_vertices < 4:
        raise RulesError(f"{where}: border_piece_vertices was {rules.border_piece_vertices} but is expected "
                         "to be at least 4")
    return rules


def _mapping(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise RulesError(f"{where}: {key} was {value!r} but is expected to be a mapping")
    return value


def _by_risk_level(row: dict[str, Any], where: str) -> dict[str, float]:
    if set(map(str, row)) != set(RISK_LEVELS):
        raise RulesError(f"{where} names {sorted(map(str, row))} but is expected to name {list(RISK_LEVELS)}")
    return {str(k): _metres(v, f"{where}.{k}") for k, v in row.items()}


def _metres(value: Any, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RulesError(f"{where} was {value!r} but is expected to be a number") from None
    if not out >= 0:
        raise RulesError(f"{where} was {value!r} but is expected to be a number >= 0")
    return out


def _fraction(value: Any, where: str) -> float:
    out = _metres(value, f"{where}: severity.close_fraction")
    if out > 1:
        raise RulesError(f"{where}: severity.close_fraction was {value!r} but is expected to be within [0, 1]")
    return out
