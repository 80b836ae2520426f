"""The risk-substance table (HJ 169-2018) and the GB 3838-2002 class limits, read from data files.

The tables live in ``layers/data/*.csv`` with the clause each value comes from, so a person with the
standard's text can correct them without touching code.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).with_name("data")
CLASSES = ("I", "II", "III", "IV", "V")


class UnknownSubstance(KeyError):
    """A substance name or CAS number not in the HJ 169 table."""


@dataclass(frozen=True)
class Substance:
    """One HJ 169 substance: critical quantity (t), toxic end-points (mg/m³), the media whose Q it counts
    towards (HJ 941-2018 §6.1 air, §7.1 water) and why."""

    id: str
    cas: str
    name_en: str
    name_zh: str
    aliases: tuple[str, ...]
    critical_t: float
    endpoint1_mg_m3: float | None
    endpoint2_mg_m3: float | None
    media: frozenset[str]
    media_clause: str
    media_check: bool
    gb3838: str | None
    clause: str
    check: bool

    @property
    def air(self) -> bool:
        """Whether the substance counts towards air Q (HJ 941-2018 §6.1)."""
        return "air" in self.media

    @property
    def water(self) -> bool:
        """Whether the substance counts towards water Q (HJ 941-2018 §7.1)."""
        return "water" in self.media


@dataclass(frozen=True)
class WaterLimit:
    """GB 3838 limits of one factor for classes I–V (mg/L); ``kind`` is 'max' or 'min' (DO)."""

    factor: str
    name_zh: str
    kind: str
    limits: tuple[float, float, float, float, float]
    clause: str
    check: bool

    def water_class(self, value: float) -> str:
        """The best class whose limit ``value`` meets, or 'worse than V'."""
        for cls, limit in zip(CLASSES, self.limits):
            if (value <= limit) if self.kind == "max" else (value >= limit):
                return cls
        return "worse than V"


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def _float(v: str) -> float | None:
    return float(v) if v.strip() else None


@lru_cache(maxsize=1)
def substances() -> tuple[Substance, ...]:
    """Every substance of the table, in file order."""
    return tuple(Substance(
        id=r["id"], cas=r["cas"], name_en=r["name_en"], name_zh=r["name_zh"],
        aliases=tuple(a for a in r["aliases"].split("|") if a), critical_t=float(r["critical_t"]),
        endpoint1_mg_m3=_float(r["endpoint1_mg_m3"]), endpoint2_mg_m3=_float(r["endpoint2_mg_m3"]),
        media=_media(r["id"], r["media"]), media_clause=r["media_clause"], media_check=r["media_check"] == "yes",
        gb3838=r["gb3838"] or None, clause=r["clause"], check=r["check"] == "yes",
    ) for r in _rows("hj169_substances.csv"))


MEDIA = ("air", "water")


def _media(sid: str, text: str) -> frozenset[str]:
    """The media column (``air``, ``water`` or ``air|water``) as a set; anything else is an error of the file."""
    media = frozenset(m.strip() for m in text.split("|") if m.strip())
    if not media or not media <= set(MEDIA):
        raise ValueError(f"hj169_substances.csv: {sid}: media was {text!r} but is expected to be one or more of "
                         f"{list(MEDIA)} joined by '|'")
    return media


@lru_cache(maxsize=1)
def _index() -> dict[str, Substance]:
    out: dict[str, Substance] = {}
    for s in substances():
        for k in (s.id, s.name_en, s.name_zh, *s.aliases):
            out.setdefault(k.strip().lower(), s)
        out.setdefault(s.cas.lower(), s)  # first entry wins where a CAS number repeats
    return out


def lookup(name_or_cas: str) -> Substance:
    """The substance with this id, CAS number, English or Chinese name or alias."""
    key = (name_or_cas or "").strip().lower()
    try:
        return _index()[key]
    except KeyError:
        examples = ", ".join(f"{s.name_en} ({s.cas})" for s in substances()[:4])
        raise UnknownSubstance(f"substance {name_or_cas!r} is not in the HJ 169-2018 table; give a CAS number "
                               f"or name such as {examples}") from None


@lru_cache(maxsize=1)
def water_limits() -> dict[str, WaterLimit]:
    """GB 3838-2002 limits by factor."""
    return {r["factor"]: WaterLimit(r["factor"], r["name_zh"], r["kind"],
                                    tuple(float(r[c]) for c in CLASSES),  # type: ignore[arg-type]
                                    r["clause"], r["check"] == "yes")
            for r in _rows("gb3838_limits.csv")}
