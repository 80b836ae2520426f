"""Ambient air quality index per HJ 633-2012: IAQI, AQI, primary pollutants and the category.

Pure functions: the breakpoints, rules and categories are passed in as data (``AqiTables.from_dict`` of
the parsed ``layers/data/hj633_aqi.yaml``); nothing here reads a file or a database.

* IAQI of one concentration: linear interpolation between the two Table 1 breakpoints around it
  (formula 1), rounded up to an integer (the table's ``rounding``).  A value above the top of a full
  column gets 500 and is marked above the scale; a value above the end of a short column (SO2 1-hour
  and O3 8-hour end at 800 μg/m³) gets no IAQI: the rules put another value in its place (SO2: its
  24-hour mean; O3: its 1-hour value).
* AQI = the largest IAQI (formula 2); the primary pollutant(s) are those with that IAQI when AQI > 50.
* Hourly (实时报) and daily (日报) reports read each parameter against the column the table assigns to
  it; hourly PM2.5/PM10 use their 1-hour value against the 24-hour column (the table says so and why).

Parameter codes are those of the observation store: ``so2 no2 co o3 o3_8h pm10 pm25`` (CO in mg/m³,
the others in μg/m³).  A missing or NaN value is simply left out; a negative one is an error.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Report = Literal["hourly", "daily"]
#: Guard against 75.00000000001 becoming 76 when rounding an interpolated IAQI up.
_EPS_DECIMALS = 6


class AqiTablesError(ValueError):
    """The AQI tables are incomplete or inconsistent; the message names the entry at fault."""


@dataclass(frozen=True)
class Column:
    """One column of HJ 633 Table 1: the concentrations at the IAQI values ``iaqi[:len(values)]``."""

    name: str
    pollutant: str
    averaging: str
    unit: str
    values: tuple[float, ...]
    iaqi: tuple[int, ...]
    clause: str
    check: bool

    @property
    def full(self) -> bool:
        """True when the column reaches IAQI 500 (a value above its top is 500, above the scale)."""
        return self.iaqi[-1] == 500


@dataclass(frozen=True)
class Category:
    """A row of HJ 633 Table 2 with its Appendix A colour."""

    level: str
    level_zh: str
    lower: int
    upper: int | None
    name_zh: str
    name_en: str
    colour_zh: str
    colour_en: str
    rgb: tuple[int, int, int]
    hex: str
    health_zh: str
    health_en: str
    advice_zh: str
    advice_en: str
    clause: str
    check: bool

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "level_zh": self.level_zh, "aqi_range": [self.lower, self.upper],
                "name_zh": self.name_zh, "name_en": self.name_en, "colour_zh": self.colour_zh,
                "colour_en": self.colour_en, "rgb": list(self.rgb), "hex": self.hex,
                "health_zh": self.health_zh, "health_en": self.health_en, "advice_zh": self.advice_zh,
                "advice_en": self.advice_en, "clause": self.clause, "check": self.check}


@dataclass(frozen=True)
class AqiTables:
    """HJ 633 as data: Table 1 columns, the rules around them, Table 2 categories, report columns."""

    columns: Mapping[str, Column]
    hourly: Mapping[str, str]
    daily: Mapping[str, str]
    categories: tuple[Category, ...]
    so2_1h_limit: float
    o3_8h_limit: float
    so2_fallback: str
    primary_above: int
    exceeding_above: int
    rounding: str
    pollutants: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    min_hours_24h: int = 20
    min_hours_8h: int = 6

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AqiTables:
        """Read the parsed ``hj633_aqi.yaml``; raises :class:`AqiTablesError` naming what is wrong."""
        try:
            iaqi = tuple(int(v) for v in doc["iaqi"]["values"])
            if list(iaqi) != sorted(set(iaqi)) or iaqi[0] != 0:
                raise AqiTablesError(f"iaqi.values {list(iaqi)} must rise strictly from 0")
            columns: dict[str, Column] = {}
            for name, c in doc["breakpoints"].items():
                values = tuple(float(v) for v in c["values"])
                if len(values) < 2 or len(values) > len(iaqi) or any(b <= a for a, b in zip(values, values[1:])):
                    raise AqiTablesError(f"breakpoints.{name}.values {list(values)} must rise strictly, "
                                         f"at most {len(iaqi)} of them")
                columns[name] = Column(name, str(c["pollutant"]), str(c["averaging"]), str(c["unit"]), values,
                                       iaqi[:len(values)], str(c["clause"]), bool(c.get("check", True)))
            hourly = {str(k): str(v) for k, v in doc["hourly"]["columns"].items()}
            daily = {str(k): str(v) for k, v in doc["daily"]["columns"].items()}
            fallback = str(doc["hourly"]["so2_fallback"])
            for where, col in [*(("hourly", v) for v in hourly.values()), *(("daily", v) for v in daily.values()),
                               ("hourly.so2_fallback", fallback)]:
                if col not in columns:
                    raise AqiTablesError(f"{where}: column {col!r} is not among breakpoints {sorted(columns)}")
            cats = tuple(_category(c) for c in doc["categories"])
            for a, b in zip(cats, cats[1:]):
                if a.upper is None or b.lower != a.upper + 1:
                    raise AqiTablesError(f"categories {a.level} and {b.level} do not meet: {a.upper} then {b.lower}")
            rules = doc["rules"]
            rounding = str(doc["rounding"]["iaqi"])
            if rounding not in ("ceil", "none"):
                raise AqiTablesError(f"rounding.iaqi was {rounding!r} but is expected to be 'ceil' or 'none'")
            return cls(columns, hourly, daily, cats, float(rules["so2_1h_above_800"]["limit"]),
                       float(rules["o3_8h_above_800"]["limit"]), fallback, int(rules["primary_pollutant"]["above"]),
                       int(rules["exceeding_pollutant"]["above"]), rounding,
                       {str(k): {str(a): str(b) for a, b in v.items()} for k, v in doc.get("pollutants", {}).items()},
                       int(doc["daily"].get("min_hours_24h", 20)), int(doc["daily"].get("min_hours_8h", 6)))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, AqiTablesError):
                raise
            raise AqiTablesError(f"the AQI tables are incomplete: {exc!r}") from None

    def category(self, aqi: float) -> Category:
        """The Table 2 row of an AQI (an integer AQI; a fraction is rounded up first, as the IAQI are)."""
        value = math.ceil(round(aqi, _EPS_DECIMALS))
        if value < 0:
            raise ValueError(f"AQI {aqi} is negative")
        for c in self.categories:
            if c.upper is None or value <= c.upper:
                return c
        raise AssertionError("the last category has no upper bound")  # from_dict guarantees it

    def columns_for(self, report: Report) -> Mapping[str, str]:
        return self.hourly if report == "hourly" else self.daily


def _category(c: Mapping[str, Any]) -> Category:
    lo, hi = c["aqi"]
    rgb = tuple(int(v) for v in c["rgb"])
    if len(rgb) != 3 or c["hex"].upper() != "#{:02X}{:02X}{:02X}".format(*rgb):
        raise AqiTablesError(f"category {c['level']}: hex {c['hex']} does not match rgb {list(rgb)}")
    return Category(str(c["level"]), str(c["level_zh"]), int(lo), None if hi is None else int(hi), str(c["name_zh"]),
                    str(c["name_en"]), str(c["colour_zh"]), str(c["colour_en"]), (rgb[0], rgb[1], rgb[2]),
                    str(c["hex"]).upper(), str(c["health_zh"]), str(c["health_en"]), str(c["advice_zh"]),
                    str(c["advice_en"]), str(c["clause"]), bool(c.get("check", True)))


@dataclass(frozen=True)
class Iaqi:
    """One pollutant's sub-index: ``value`` (rounded as the tables say), the column used, above the scale?"""

    parameter: str
    value: int
    column: str
    concentration: float
    above_scale: bool = False


@dataclass(frozen=True)
class AqiResult:
    """An AQI with its sub-indices; ``aqi`` None when no pollutant had a value."""

    aqi: int | None
    iaqi: Mapping[str, Iaqi]
    primary: tuple[str, ...]
    exceeding: tuple[str, ...]
    category: Category | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"aqi": self.aqi, "primary": list(self.primary), "exceeding": list(self.exceeding),
                "iaqi": {k: v.value for k, v in self.iaqi.items()},
                "above_scale": sorted(k for k, v in self.iaqi.items() if v.above_scale),
                "category": None if self.category is None else self.category.to_dict(), "notes": list(self.notes)}


def _round(tables: AqiTables, raw: float) -> int:
    r = round(raw, _EPS_DECIMALS)
    return math.ceil(r) if tables.rounding == "ceil" else round(r)


def iaqi_of(tables: AqiTables, column: str, concentration: float) -> tuple[int, bool] | None:
    """IAQI of ``concentration`` against Table 1 column ``column``: (value, above the scale), or None.

    None when the value lies above the end of a short column (SO2 1-hour, O3 8-hour above 800): the
    standard computes no IAQI there.  Exactly on a breakpoint gives that breakpoint's IAQI.
    """
    col = tables.columns[column]
    c = float(concentration)
    if math.isnan(c):
        raise ValueError(f"{column}: the concentration is not a number")
    if c < 0:
        raise ValueError(f"{column}: concentration {c:g} {col.unit} is negative")
    top = col.values[-1]
    if c > top:
        return (500, True) if col.full else None
    i = max(1, bisect.bisect_left(col.values, c))  # the segment (values[i-1], values[i]] holding c
    lo, hi = col.values[i - 1], col.values[i]
    raw = col.iaqi[i - 1] + (col.iaqi[i] - col.iaqi[i - 1]) * (c - lo) / (hi - lo)
    return _round(tables, raw), False


def iaqi_array(tables: AqiTables, column: str, concentrations: ArrayLike) -> NDArray[np.float64]:
    """IAQI of many concentrations at once (same rules as :func:`iaqi_of`); NaN where there is none.

    NaN in, NaN out; a value above a short column's end is NaN; above a full column's top, 500.
    """
    col = tables.columns[column]
    c = np.asarray(concentrations, dtype=np.float64)
    if np.any(c < 0):
        raise ValueError(f"{column}: negative concentrations")
    out = np.interp(c, col.values, np.asarray(col.iaqi, dtype=np.float64))
    out = np.round(out, _EPS_DECIMALS)
    if tables.rounding == "ceil":
        out = np.ceil(out)
    above = c > col.values[-1]
    out[above] = 500.0 if col.full else np.nan
    out[np.isnan(c)] = np.nan
    return out


def _clean(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and not math.isnan(float(v))}


def aqi(tables: AqiTables, values: Mapping[str, float | None], report: Report,
        so2_24h: float | None = None) -> AqiResult:
    """The AQI of one station (or city) at one time from its concentrations by parameter code.

    ``report`` "hourly": 1-hour values (``o3_8h`` the 8-hour moving mean); PM against the 24-hour
    column.  ``so2_24h``: the SO2 24-hour (moving) mean, used when the SO2 1-hour value is above 800.
    ``report`` "daily": 24-hour means, ``o3`` the day's largest 1-hour value, ``o3_8h`` the day's largest
    8-hour moving mean.  Parameters the report does not use are ignored; missing ones are left out.
    """
    cols = tables.columns_for(report)
    given = _clean(values)
    subs: dict[str, Iaqi] = {}
    notes: list[str] = []
    for param, column in cols.items():
        if param not in given:
            continue
        c = given[param]
        got = iaqi_of(tables, column, c)
        if got is None and param == "so2":
            notes.append(f"SO2 1-hour {c:g} μg/m³ > {tables.so2_1h_limit:g}: IAQI from the 24-hour mean "
                         "(HJ 633-2012 Table 1 note 1)")
            if so2_24h is not None and not math.isnan(so2_24h):
                column, c = tables.so2_fallback, float(so2_24h)
                got = iaqi_of(tables, column, c)
            else:
                notes.append("SO2: no 24-hour mean given, so no SO2 IAQI")
        elif got is None and param == "o3_8h":
            notes.append(f"O3 8-hour {c:g} μg/m³ > {tables.o3_8h_limit:g}: the O3 1-hour IAQI stands for ozone "
                         "(HJ 633-2012 Table 1 note 3)")
        if got is not None:
            subs[param] = Iaqi(param, got[0], column, c, got[1])
    return _result(tables, subs, tuple(notes))


def _result(tables: AqiTables, subs: Mapping[str, Iaqi], notes: tuple[str, ...]) -> AqiResult:
    if not subs:
        return AqiResult(None, {}, (), (), None, notes)
    top = max(s.value for s in subs.values())
    primary = tuple(k for k, s in subs.items() if s.value == top) if top > tables.primary_above else ()
    exceeding = tuple(k for k, s in subs.items() if s.value > tables.exceeding_above)
    return AqiResult(top, dict(subs), primary, exceeding, tables.category(top), notes)


@dataclass(frozen=True)
class AqiSeries:
    """AQI over many times at once: ``aqi`` (NaN where no pollutant had a value), IAQI per parameter."""

    aqi: NDArray[np.float64]
    iaqi: Mapping[str, NDArray[np.float64]]
    primary: list[tuple[str, ...]]


def aqi_series(tables: AqiTables, arrays: Mapping[str, ArrayLike], report: Report,
               so2_24h: ArrayLike | None = None) -> AqiSeries:
    """:func:`aqi` over aligned arrays (one entry per time; NaN for a missing value), vectorised."""
    cols = tables.columns_for(report)
    given = {p: np.asarray(a, dtype=np.float64) for p, a in arrays.items() if p in cols}
    n = len(next(iter(given.values()))) if given else 0
    subs: dict[str, NDArray[np.float64]] = {}
    for param, column in cols.items():
        if param not in given:
            continue
        sub = iaqi_array(tables, column, given[param])
        if param == "so2" and so2_24h is not None:
            over = given[param] > tables.so2_1h_limit
            if np.any(over):
                fallback = iaqi_array(tables, tables.so2_fallback, np.asarray(so2_24h, dtype=np.float64))
                sub[over] = fallback[over]
        subs[param] = sub
    if not subs:
        return AqiSeries(np.full(n, np.nan), {}, [()] * n)
    names = list(subs)
    stack = np.vstack([subs[p] for p in names])
    has = ~np.all(np.isnan(stack), axis=0)
    top = np.full(n, np.nan)
    top[has] = np.nanmax(stack[:, has], axis=0)
    # The primary pollutants of each time, vectorised: a bit per pollutant whose IAQI is the top (AQI > 50),
    # then one tuple per distinct bit pattern (a handful), looked up per time.
    is_top = (stack == top) & (top > tables.primary_above)
    bits = (is_top.astype(np.int64) * (1 << np.arange(len(names), dtype=np.int64))[:, None]).sum(axis=0)
    patterns = {int(b): tuple(names[j] for j in range(len(names)) if int(b) >> j & 1) for b in np.unique(bits)}
    primary = [patterns[b] for b in bits.tolist()]
    return AqiSeries(top, subs, primary)


def mean_concentrations(stations: Sequence[Mapping[str, float | None]]) -> dict[str, float]:
    """Per parameter, the arithmetic mean over the stations that have it (the city value's first step)."""
    sums: dict[str, list[float]] = {}
    for s in stations:
        for k, v in _clean(s).items():
            sums.setdefault(k, []).append(v)
    return {k: sum(v) / len(v) for k, v in sums.items()}
