"""The observation parameters (``layers/data/obs_parameters.csv``) and the unit spellings they accept.

Every stored observation value is in its parameter's canonical unit; a file or a push may give another
accepted unit, and :meth:`Parameter.factor` says what to multiply by.  The table is data, with the
clause each parameter comes from, so a person with the standard's text can correct it without code.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import psycopg

DATA = Path(__file__).with_name("data")
PARAMETERS_FILE = DATA / "obs_parameters.csv"
MEDIA = ("air", "water")

_SPACES = re.compile(r"\s+")


def normalise_unit(text: str | None) -> str:
    """A unit as the table spells it: lower-case, no spaces, μ for µ/u, 3 for ³ and ^3, ℃ kept.

    ``"µg/m³"``, ``"ug/m3"``, ``"UG/M^3"`` and ``"μg/m3"`` all become ``"μg/m3"``; an empty unit is ``""``.
    """
    t = _SPACES.sub("", (text or "").strip()).replace("µ", "μ").replace("³", "3").replace("^3", "3")
    t = t.lower()
    if t.startswith("u") and not t.startswith("un"):
        t = "μ" + t[1:]
    return t


@dataclass(frozen=True)
class Parameter:
    """One observation parameter: canonical unit, accepted units with factors, plausible range, the
    GB 3838 factor or HJ 633 pollutant it is judged by, and the clause it comes from."""

    code: str
    medium: str
    name_zh: str
    name_en: str
    unit: str
    units: dict[str, float]
    min_value: float | None
    max_value: float | None
    gb3838: str | None
    hj633: str | None
    clause: str
    check: bool

    def factor(self, unit: str | None) -> float | None:
        """The factor turning a value in ``unit`` into the canonical unit; None when it is not accepted.

        No unit at all means the canonical unit."""
        u = normalise_unit(unit)
        if u == "":
            return 1.0
        return self.units.get(u)

    @property
    def accepted_units(self) -> list[str]:
        """The accepted unit spellings (normalised), canonical first."""
        return [u for u in self.units if u]


def _float(v: str) -> float | None:
    return float(v) if v.strip() else None


def _units(code: str, text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in text.split("|"):
        unit, sep, factor = part.rpartition(":")
        if not sep:
            raise ValueError(f"obs_parameters.csv: {code}: units entry {part!r} is not 'unit:factor'")
        out[normalise_unit(unit)] = float(factor)
    return out


@lru_cache(maxsize=1)
def parameters() -> dict[str, Parameter]:
    """Every parameter by code, in file order."""
    with PARAMETERS_FILE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    out: dict[str, Parameter] = {}
    for r in rows:
        if r["medium"] not in MEDIA:
            raise ValueError(f"obs_parameters.csv: {r['code']}: medium was {r['medium']!r} but is expected to be "
                             f"one of {list(MEDIA)}")
        units = _units(r["code"], r["units"])
        if normalise_unit(r["unit"]) not in units:
            units = {normalise_unit(r["unit"]): 1.0, **units}
        out[r["code"]] = Parameter(
            code=r["code"], medium=r["medium"], name_zh=r["name_zh"], name_en=r["name_en"], unit=r["unit"],
            units=units, min_value=_float(r["min"]), max_value=_float(r["max"]), gb3838=r["gb3838"] or None,
            hj633=r["hj633"] or None, clause=r["clause"], check=r["check"] == "yes")
    return out


def sync(conn: psycopg.Connection) -> None:
    """Fill ``obs_parameter`` and ``gb3838_limit`` from the data files (as the schema owner, after an
    upgrade); a schema older than migration 0010 has neither and is left alone."""
    from layers.substances import CLASSES, _rows

    found = conn.execute("SELECT to_regclass('riskatlas.obs_parameter') IS NOT NULL AS ok").fetchone()
    if not (found["ok"] if isinstance(found, dict) else found[0]):  # type: ignore[index]
        return
    with conn.transaction():
        conn.execute("DELETE FROM riskatlas.gb3838_limit")
        with conn.cursor().copy("COPY riskatlas.gb3838_limit (factor, name_zh, kind, limits, clause, \"check\") "
                                "FROM STDIN") as copy:
            for r in _rows("gb3838_limits.csv"):
                copy.write_row((r["factor"].lower(), r["name_zh"], r["kind"],
                                "{" + ",".join(r[c] for c in CLASSES) + "}", r["clause"], r["check"] == "yes"))
        conn.execute("DELETE FROM riskatlas.obs_parameter")
        with conn.cursor().copy("COPY riskatlas.obs_parameter (code, medium, name_zh, name_en, unit, units, min_value, "
                                "max_value, gb3838, hj633, clause, \"check\") FROM STDIN") as copy:
            for p in parameters().values():
                copy.write_row((p.code, p.medium, p.name_zh, p.name_en, p.unit, json.dumps(p.units, ensure_ascii=False),
                                p.min_value, p.max_value, p.gb3838, p.hj633, p.clause, p.check))


@lru_cache(maxsize=1)
def aliases() -> dict[str, str]:
    """Every name a file may give a parameter (lower-case, no spaces) -> its code: the code, the HJ 633
    pollutant (``pm2.5``, ``o3_8h``), the GB 3838 factor (``nh3-n``), the Chinese name and a few spellings."""
    out: dict[str, str] = {}
    for p in parameters().values():
        names = [p.code, p.code.replace("_", "-"), p.name_zh, p.hj633 or "", p.gb3838 or ""]
        names += [n.split("(")[0] for n in (p.name_zh,)]
        for n in names:
            key = _SPACES.sub("", n).lower()
            if key:
                out.setdefault(key, p.code)
    extra = {"pm2.5": "pm25", "pm2_5": "pm25", "o3-1h": "o3", "o3_1h": "o3", "o3(1h)": "o3", "o3-8h": "o3_8h",
             "o38h": "o3_8h", "o3(8h)": "o3_8h", "臭氧(8h)": "o3_8h",
             "臭氧8小时": "o3_8h", "臭氧(1h)": "o3", "nh3_n": "nh3n", "nh3-n": "nh3n", "氨氮": "nh3n",
             "cod_mn": "codmn", "codcr": "cod", "臭氧": "o3", "溶解氧": "do", "ph值": "ph", "水温": "temp",
             "流量": "flow", "q": "flow", "discharge": "flow", "temperature": "temp"}
    for k, v in extra.items():
        if v in parameters():
            out.setdefault(k, v)
    return out
