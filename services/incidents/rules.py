"""Acknowledgement times and delivery backoff, read from ``layers/data/incidents/acknowledgement.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

RULES_FILE = Path(__file__).resolve().parents[2] / "layers" / "data" / "incidents" / "acknowledgement.yaml"
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor")


@dataclass(frozen=True)
class Rules:
    """Minutes to acknowledge per CAP severity, and the retry delays of a failed delivery."""

    ack_minutes: dict[str, float]
    backoff_s: tuple[float, ...]

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based); the last value repeats."""
        return self.backoff_s[min(max(attempts, 1), len(self.backoff_s)) - 1]


@lru_cache(maxsize=4)
def rules(path: Path = RULES_FILE) -> Rules:
    """The rules of ``path``; a missing severity or a non-positive value is an error naming it."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    ack = doc.get("ack_minutes") or {}
    missing = [s for s in SEVERITIES if s not in ack]
    if missing:
        raise ValueError(f"{path.name}: ack_minutes lacks {missing}; expected one per CAP severity {list(SEVERITIES)}")
    backoff = tuple(float(v) for v in doc.get("backoff_s") or ())
    if not backoff or any(v <= 0 for v in backoff) or any(float(ack[s]) <= 0 for s in SEVERITIES):
        raise ValueError(f"{path.name}: ack_minutes and backoff_s must be positive numbers")
    return Rules({s: float(ack[s]) for s in SEVERITIES}, backoff)
