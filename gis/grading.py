"""Enterprise environmental risk grading per HJ 941-2018: Q, M, E, the level matrix and the label.

Pure functions: the tables (bands, thresholds, the matrix) and the critical quantities are passed in
as data (``GradingTables.from_dict`` of the parsed ``layers/data/hj941_grading.yaml``, and a
``CriticalTable`` of the HJ 169 substances); nothing here reads a file or a database.

Levels are the English names stored in the database: ``general`` (一般), ``larger`` (较大) and
``major`` (重大).  A medium whose Q is below 1 is graded general directly and written ``Q0``.  Air
(HJ 941-2018 §6) and water (§7) each count their own substances (``Critical.air``, ``Critical.water``)
and have their own M; a medium with Q ≥ 1 and no M is pending M, its level the range M could give.
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

Medium = Literal["air", "water"]
E_CLASSES = ("E1", "E2", "E3")


class GradingProblem(ValueError):
    """The inputs of one source cannot be graded (bad quantity, unknown substance, an M below every
    band, an unknown sensitivity class).  A missing M is no problem: the medium is pending M."""


class TablesError(ValueError):
    """The grading tables are incomplete or inconsistent; the message names the entry at fault."""


@dataclass(frozen=True)
class Band:
    """A half-open band ``lower <= value < upper`` (``upper`` None: no upper bound)."""

    name: str
    lower: float
    upper: float | None

    def contains(self, value: float) -> bool:
        return value >= self.lower and (self.upper is None or value < self.upper)

    def describe(self) -> str:
        return f"{self.lower:g} ≤ x" + (f" < {self.upper:g}" if self.upper is not None else "")


@dataclass(frozen=True)
class AirClass:
    """An air sensitivity class reached with more than ``far_more_than`` people within the far radius
    or more than ``near_more_than`` within the near radius (HJ 941-2018 §6.3 says 大于, greater than:
    exactly the threshold does not reach the class)."""

    name: str
    far_more_than: float
    near_more_than: float


@dataclass(frozen=True)
class ReceptorRule:
    """Which water receptors count, and the class one gives within the downstream distance."""

    layer: str
    kind: str | None
    e_class: str
    text: str
    by_reading: bool = False  # its class is the setting e_water.reserve_wetland_reading's

    def matches(self, layer: str, kind: str | None) -> bool:
        return self.layer == layer and (self.kind is None or self.kind == kind)


@dataclass(frozen=True)
class GradingTables:
    """The HJ 941 tables as data, with the clause and check mark of each part."""

    q_general_below: float
    q_bands: tuple[Band, ...]
    m_bands: tuple[Band, ...]
    far_radius_m: float
    near_radius_m: float
    air_classes: tuple[AirClass, ...]
    air_otherwise: str
    downstream_m: float
    reach_s: float
    receptors: tuple[ReceptorRule, ...]
    crossing_national: str
    crossing_province: str
    water_otherwise: str
    water_reading: str  # which reading places nature reserves and important wetlands (E1 or E2)
    water_reading_class: str
    water_reading_text: str
    snap_max_m: float
    near_m: float
    m_columns: tuple[str, ...]
    cells: Mapping[tuple[str, str, str], str]  # (E, Q band, M band) -> level
    level_zh: Mapping[str, str]
    level_rank: Mapping[str, int]
    media_zh: Mapping[str, str]
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # part -> clause, text, check

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> GradingTables:
        """Tables from the parsed YAML document; ``TablesError`` says what is missing or wrong."""
        try:
            return _tables(doc)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, TablesError):
                raise
            raise TablesError(f"grading tables: {type(exc).__name__}: {exc}") from None

    def level_of(self, e: str, q_band: str, m_band: str) -> str:
        """The matrix cell for (E, Q band, M band)."""
        return self.cells[(e, q_band, m_band)]

    def higher(self, a: str, b: str) -> str:
        """The higher of two levels."""
        return a if self.level_rank[a] >= self.level_rank[b] else b


def _bands(items: Sequence[Mapping[str, Any]], what: str) -> tuple[Band, ...]:
    bands = tuple(Band(str(b["name"]), float(b["lower"]), None if b.get("upper") is None else float(b["upper"]))
                  for b in items)
    if not bands:
        raise TablesError(f"grading tables: {what} has no bands")
    for a, b in itertools.pairwise(bands):
        if a.upper is None or a.upper != b.lower:
            raise TablesError(f"grading tables: {what} band {a.name} ends at {a.upper} but {b.name} starts at "
                              f"{b.lower}; bands must be contiguous and ascending")
    if bands[-1].upper is not None:
        raise TablesError(f"grading tables: the last {what} band {bands[-1].name} must have no upper bound")
    return bands


def _tables(doc: Mapping[str, Any]) -> GradingTables:
    levels = doc["levels"]
    q, m, air, water, matrix, label = doc["q"], doc["m"], doc["e_air"], doc["e_water"], doc["matrix"], doc["label"]
    q_bands = _bands(q["bands"], "Q")
    if float(q["general_below"]) != q_bands[0].lower:
        raise TablesError(f"grading tables: Q general_below {q['general_below']} must equal the lower bound of "
                          f"{q_bands[0].name} ({q_bands[0].lower:g})")
    m_bands = _bands(m["bands"], "M")
    columns = tuple(str(c) for c in matrix["columns"])
    if columns != tuple(b.name for b in m_bands):
        raise TablesError(f"grading tables: matrix columns {list(columns)} must be the M bands "
                          f"{[b.name for b in m_bands]}")
    cells: dict[tuple[str, str, str], str] = {}
    for e in E_CLASSES:
        for band in q_bands:
            row = matrix["cells"].get(e, {}).get(band.name)
            if row is None or len(row) != len(columns):
                raise TablesError(f"grading tables: matrix cell row {e}/{band.name} must list "
                                  f"{len(columns)} levels, one per {list(columns)}")
            for col, level in zip(columns, row):
                if level not in levels:
                    raise TablesError(f"grading tables: matrix {e}/{band.name}/{col} is {level!r}; expected one "
                                      f"of {list(levels)}")
                cells[(e, band.name, col)] = str(level)
    air_classes = tuple(AirClass(str(c["name"]), float(c["far_more_than"]), float(c["near_more_than"]))
                        for c in air["classes"])
    reading = str(water["reserve_wetland_reading"])
    readings = water["reserve_wetland_readings"]
    if reading not in readings:
        raise TablesError(f"grading tables: e_water.reserve_wetland_reading was {reading!r} but is expected to be one "
                          f"of {list(readings)}")
    reading_class = str(readings[reading]["class"])
    receptors = tuple(ReceptorRule(str(r["layer"]), r.get("kind"),
                                   reading_class if r["class"] == "reading" else str(r["class"]),
                                   str(r.get("text", "")), r["class"] == "reading")
                      for r in water["receptors"])
    for name in [c.name for c in air_classes] + [r.e_class for r in receptors] + [
            *(str(v["class"]) for v in readings.values()),
            air["otherwise"], water["otherwise"], *water["crossings"].values()]:
        if name not in E_CLASSES:
            raise TablesError(f"grading tables: sensitivity class {name!r} is not one of {list(E_CLASSES)}")
    sources = {part: {"clause": doc[part].get("clause", ""), "text": doc[part].get("text", ""),
                      "check": bool(doc[part].get("check", False))}
               for part in ("q", "m", "e_air", "e_water", "matrix", "label")}
    return GradingTables(
        q_general_below=float(q["general_below"]), q_bands=q_bands, m_bands=m_bands,
        far_radius_m=float(air["far_radius_m"]), near_radius_m=float(air["near_radius_m"]),
        air_classes=air_classes, air_otherwise=str(air["otherwise"]),
        downstream_m=float(water["downstream_m"]), reach_s=float(water["reach_hours"]) * 3600.0,
        receptors=receptors, crossing_national=str(water["crossings"]["national"]),
        crossing_province=str(water["crossings"]["province"]), water_otherwise=str(water["otherwise"]),
        water_reading=reading, water_reading_class=reading_class,
        water_reading_text=str(readings[reading].get("text", "")),
        snap_max_m=float(water["snap_max_m"]), near_m=float(water["near_m"]),
        m_columns=columns, cells=cells,
        level_zh={k: str(v["zh"]) for k, v in levels.items()},
        level_rank={k: int(v["rank"]) for k, v in levels.items()},
        media_zh={str(k): str(v) for k, v in label["media"].items()},
        sources=sources,
    )


# --------------------------------------------------------------------------------------------------
# substances and Q


@dataclass(frozen=True)
class Critical:
    """One substance of the critical-quantity table: its id, CAS, critical quantity (t) and whether it
    counts towards water Q (HJ 941-2018 §7.1) and air Q (§6.1)."""

    id: str
    name: str
    cas: str
    critical_t: float
    water: bool
    names: tuple[str, ...] = ()  # every name and alias it may be written as
    air: bool = True


def normalise_name(text: str) -> str:
    """A substance name reduced for matching: NFKC (full-width brackets become ASCII), lower case,
    only letters and digits kept ("盐酸（≥37%）" and "盐酸(>=37%)" both become "盐酸37")."""
    folded = unicodedata.normalize("NFKC", text or "").lower()
    return "".join(ch for ch in folded if ch.isalnum())


class CriticalTable:
    """The critical quantities, found by name, alias or CAS number.

    A name wins over a CAS number when both are known and agree on the CAS (the table lists hydrogen
    chloride gas and 37 % hydrochloric acid under one CAS number with different critical quantities);
    a name and a CAS number that name two different substances is a problem, not a guess.
    """

    def __init__(self, entries: Iterable[Critical]) -> None:
        self.entries = tuple(entries)
        self._by_name: dict[str, Critical] = {}
        self._by_cas: dict[str, Critical] = {}
        for c in self.entries:
            for n in (c.id, c.name, *c.names):
                self._by_name.setdefault(normalise_name(n), c)
            self._by_cas.setdefault(c.cas.strip().lower(), c)

    def resolve(self, name: str | None, cas: str | None) -> Critical:
        """The entry for this name and/or CAS number; ``GradingProblem`` when unknown or contradictory."""
        by_name = self._by_name.get(normalise_name(name or "")) if name else None
        cas_key = (cas or "").strip().lower()
        by_cas = self._by_cas.get(cas_key) if cas_key else None
        if by_name is not None and (not cas_key or by_name.cas.lower() == cas_key):
            return by_name
        if by_name is not None and by_cas is not None:
            raise GradingProblem(f"substance {name!r} has CAS {cas!r}, which is {by_cas.name} in the HJ 169 table, "
                                 f"not {by_name.name} ({by_name.cas}); correct the name or the CAS number")
        if by_cas is not None:
            return by_cas
        if cas_key:
            raise GradingProblem(f"substance {name!r}: CAS {cas!r} is not in the HJ 169 table and the name is "
                                 f"not known either; give a listed CAS number or name")
        raise GradingProblem(f"substance {name!r} is not in the HJ 169 table; give its CAS number or a listed name")


@dataclass(frozen=True)
class QPart:
    """One inventory line: what it resolved to, q/Q, and which media it counts for."""

    name: str
    cas: str | None
    id: str
    quantity_t: float
    critical_t: float
    ratio: float
    air: bool
    water: bool


@dataclass(frozen=True)
class QResult:
    """Q for air and water, with the line-by-line parts."""

    q_air: float
    q_water: float
    parts: tuple[QPart, ...]


def q_values(items: Sequence[Mapping[str, Any]] | None, table: CriticalTable, tables: GradingTables) -> QResult:
    """Q = Σ qᵢ/Qᵢ for air and for water, each over the substances that count for it (``Critical.air``,
    ``Critical.water``: the media column of the substance table, HJ 941-2018 §6.1 and §7.1).

    ``items`` are the inventory's ``{name, cas, quantity_t}`` dicts; none or an empty list gives
    Q = 0.  Raises ``GradingProblem`` naming every bad line (negative or missing quantity, unknown
    substance, contradictory name and CAS).
    """
    parts: list[QPart] = []
    problems: list[str] = []
    for i, item in enumerate(items or (), start=1):
        if not isinstance(item, Mapping):
            problems.append(f"substance line {i} is not a {{name, cas, quantity_t}} object")
            continue
        name, cas, qty = item.get("name"), item.get("cas"), item.get("quantity_t")
        bad = quantity_problem(_line_label(name, cas, i), qty)
        if bad is not None:
            problems.append(bad)
            continue
        try:
            c = table.resolve(name, cas)
        except GradingProblem as exc:
            problems.append(str(exc))
            continue
        tonnes = float(cast(float, qty))  # quantity_problem has refused anything but a finite number
        ratio = tonnes / c.critical_t
        parts.append(QPart(str(name or c.name), cas, c.id, tonnes, c.critical_t, ratio, c.air, c.water))
    if problems:
        raise GradingProblem("; ".join(problems))
    return QResult(q_air=sum(p.ratio for p in parts if p.air), q_water=sum(p.ratio for p in parts if p.water),
                   parts=tuple(parts))


def _line_label(name: Any, cas: Any, position: int) -> str:
    return name or cas or f"line {position}"


def quantity_problem(label: str, qty: Any) -> str | None:
    """Why ``qty`` cannot be a stored quantity in tonnes (not a finite number, or negative), or None."""
    if qty is None or isinstance(qty, bool) or not isinstance(qty, (int, float)) or not math.isfinite(qty):
        return f"substance {label!r}: quantity {qty!r} is not a number of tonnes"
    if qty < 0:
        return f"substance {label!r}: quantity {qty:g} t is negative"
    return None


@dataclass(frozen=True)
class QArrays:
    """Q for air and water of many sources, and the problems of those that cannot be graded."""

    q_air: NDArray[np.float64]
    q_water: NDArray[np.float64]
    problems: dict[int, list[str]]


def q_many(source: ArrayLike, position: ArrayLike, names: Sequence[Any], cas: Sequence[Any], values: Sequence[Any],
           is_object: ArrayLike, n_sources: int, table: CriticalTable, tables: GradingTables) -> QArrays:
    """:func:`q_values` for many sources at once, from their inventory lines laid out flat.

    Line k belongs to source ``source[k]`` (0 … n_sources-1) at ``position[k]`` (1-based) and holds
    ``names[k]``, ``cas[k]`` and the quantity value ``values[k]`` as the JSON gave it (None when
    absent); ``is_object[k]`` is False for a line that is not a JSON object at all.  The same
    sums and the same problem messages as :func:`q_values`, in the same order; each distinct
    (name, CAS) pair is resolved once, the ratios are summed with ``numpy.bincount``.
    """
    source = np.asarray(source, dtype=np.int64)
    position = np.asarray(position, dtype=np.int64)
    n = len(source)
    qty = np.full(n, np.nan)
    numeric = np.array([isinstance(v, (int, float)) and not isinstance(v, bool) for v in values], dtype=bool)
    if numeric.any():
        qty[numeric] = np.asarray([values[int(i)] for i in np.flatnonzero(numeric)], dtype=np.float64)
    line_problem: dict[int, str] = {}
    objects = np.asarray(is_object, dtype=bool)
    for k in map(int, np.flatnonzero(~objects)):
        line_problem[k] = f"substance line {int(position[k])} is not a {{name, cas, quantity_t}} object"
    for k in map(int, np.flatnonzero(objects & (~np.isfinite(qty) | (qty < 0)))):
        label = _line_label(_present(names[k]), _present(cas[k]), int(position[k]))
        line_problem[k] = quantity_problem(label, values[k]) or ""
    critical = np.full(n, np.nan)
    air = np.zeros(n, dtype=bool)
    water = np.zeros(n, dtype=bool)
    # each distinct (name, CAS) pair is resolved once: the pairs are numbered by a hashed factorisation
    # of each column (missing values, empty text included, as one code), then the lines take their pair's
    # result by its number
    todo = np.ones(n, dtype=bool)
    if line_problem:
        todo[np.fromiter(line_problem, dtype=np.int64, count=len(line_problem))] = False
    name_code, name_of = _codes(names)
    cas_code, cas_of = _codes(cas)
    pair = name_code * (len(cas_of) + 1) + cas_code
    pairs, first, which = np.unique(pair[todo], return_index=True, return_inverse=True)
    lines = np.flatnonzero(todo)
    hits = np.full(len(pairs), np.nan)
    hit_air = np.zeros(len(pairs), dtype=bool)
    hit_water = np.zeros(len(pairs), dtype=bool)
    failed: dict[int, str] = {}
    for g, k in enumerate(lines[first].tolist()):
        try:
            hit = table.resolve(_present(names[k]), _present(cas[k]))
        except GradingProblem as exc:
            failed[g] = str(exc)
            continue
        hits[g], hit_air[g], hit_water[g] = hit.critical_t, hit.air, hit.water
    which = which.reshape(-1)
    critical[lines], air[lines], water[lines] = hits[which], hit_air[which], hit_water[which]
    if failed:
        for k, g in zip(lines.tolist(), which.tolist()):
            if g in failed:
                line_problem[k] = failed[g]
    ok = np.isfinite(critical)
    ratio = np.where(ok, qty / np.where(ok, critical, 1.0), 0.0)
    q_air = np.bincount(source[ok & air], weights=ratio[ok & air], minlength=n_sources)
    q_water = np.bincount(source[ok & water], weights=ratio[ok & water], minlength=n_sources)
    problems: dict[int, list[str]] = {}
    for k in sorted(line_problem, key=lambda k: (int(source[k]), int(position[k]))):
        problems.setdefault(int(source[k]), []).append(line_problem[k])
    return QArrays(q_air.astype(np.float64), q_water.astype(np.float64), problems)


def _codes(values: Sequence[Any]) -> tuple[NDArray[np.int64], list[Any]]:
    """A number for each value (0 for missing: None, NaN, empty text; 1… for the others by first
    appearance) and the distinct present values, by hashing (no sort of the texts)."""
    index: dict[Any, int] = {}
    raw = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))
    present = [v for v in index if _present(v) is not None]
    number = {v: i for i, v in enumerate(present, start=1)}
    remap = np.fromiter((number.get(v, 0) if _present(v) is not None else 0 for v in index), dtype=np.int64,
                        count=len(index))
    return remap[raw] if len(raw) else raw, present


def _present(value: Any) -> Any:
    """None for missing values (None, NaN, empty text) of a flat column."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return value


def q_band(q: float, tables: GradingTables) -> str:
    """``Q0`` below the general threshold, else the name of the Q band holding ``q``."""
    if q < tables.q_general_below:
        return "Q0"
    return next(b.name for b in tables.q_bands if b.contains(q))


def m_band(score: float, tables: GradingTables) -> str:
    """The M band holding ``score`` (``GradingProblem`` below the first band)."""
    for b in tables.m_bands:
        if b.contains(score):
            return b.name
    raise GradingProblem(f"M score {score:g} lies below every M band (the first starts at "
                         f"{tables.m_bands[0].lower:g})")


# --------------------------------------------------------------------------------------------------
# receptor sensitivity


def e_air(far_population: float, near_population: float, tables: GradingTables) -> tuple[str, str]:
    """The air sensitivity class from the population within the far (5 km) and near (500 m) radii,
    and a sentence saying which threshold decided it.

    A class is reached by *more than* its threshold (HJ 941-2018 §6.3: 大于): 50,000 people within
    5 km is E2, not E1; 500 within 500 m is not E2.
    """
    far_km = tables.far_radius_m / 1000
    near_m = tables.near_radius_m
    for c in tables.air_classes:
        if far_population > c.far_more_than:
            return c.name, (f"{far_population:,.0f} people within {far_km:g} km > {c.far_more_than:,.0f}")
        if near_population > c.near_more_than:
            return c.name, (f"{near_population:,.0f} people within {near_m:g} m > {c.near_more_than:,.0f}")
    return tables.air_otherwise, (f"{far_population:,.0f} people within {far_km:g} km and {near_population:,.0f} "
                                  f"within {near_m:g} m exceed no threshold")


def e_air_many(far_population: ArrayLike, near_population: ArrayLike,
               tables: GradingTables) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
    """:func:`e_air` of many sources: the classes and the sentences, the same texts as one at a time
    (the tests of the classes in the same order, each sentence formatted from the same float)."""
    far = np.asarray(far_population, dtype=np.float64)
    near = np.asarray(near_population, dtype=np.float64)
    n = len(far)
    classes = np.full(n, tables.air_otherwise, dtype=object)
    reasons = np.empty(n, dtype=object)
    open_ = np.ones(n, dtype=bool)
    far_km = tables.far_radius_m / 1000
    near_m = tables.near_radius_m
    for c in tables.air_classes:
        for values, more_than, text in (
                (far, c.far_more_than, f"{{:,.0f}} people within {far_km:g} km > {c.far_more_than:,.0f}"),
                (near, c.near_more_than, f"{{:,.0f}} people within {near_m:g} m > {c.near_more_than:,.0f}")):
            hit = open_ & (values > more_than)
            idx = np.flatnonzero(hit)
            classes[idx] = c.name
            form = text.format
            reasons[idx] = [form(v) for v in values[idx].tolist()]
            open_ &= ~hit
    idx = np.flatnonzero(open_)
    form = f"{{:,.0f}} people within {far_km:g} km and {{:,.0f}} within {near_m:g} m exceed no threshold".format
    reasons[idx] = [form(f, m) for f, m in zip(far[idx].tolist(), near[idx].tolist())]
    return classes, reasons


@dataclass(frozen=True)
class WaterReceptor:
    """A receptor met downstream: its layer, kind, key and name, and the distance along the river (m)."""

    layer: str
    kind: str | None
    key: str
    name: str | None
    at_m: float


def receptor_class(layer: str, kind: str | None, tables: GradingTables) -> str | None:
    """The class a receptor of this layer and kind gives, or None when it does not count."""
    for rule in tables.receptors:
        if rule.matches(layer, kind):
            return rule.e_class
    return None


def e_water(receptors: Iterable[WaterReceptor], crosses_province: bool, crosses_national: bool,
            tables: GradingTables) -> tuple[str, list[str]]:
    """The water sensitivity class and the facts that decided it (the highest class found wins).

    ``receptors`` are those found within the downstream distance; the crossings are those of the
    downstream reach within the reach time (24 h).
    """
    found: list[tuple[str, str]] = []
    km = tables.downstream_m / 1000
    for r in receptors:
        cls = receptor_class(r.layer, r.kind, tables)
        if cls is not None:
            rule = next(rule for rule in tables.receptors if rule.matches(r.layer, r.kind))
            why = f"{rule.text} {r.name or r.key} at {r.at_m:,.0f} m downstream (≤ {km:g} km)"
            if rule.by_reading:
                why += f" — {cls} under the {tables.water_reading} reading (setting e_water.reserve_wetland_reading)"
            found.append((cls, why))
    hours = tables.reach_s / 3600
    if crosses_national:
        found.append((tables.crossing_national, f"the {hours:g}-hour downstream reach crosses a national border"))
    if crosses_province:
        found.append((tables.crossing_province, f"the {hours:g}-hour downstream reach crosses a provincial border"))
    if not found:
        why = (f"no counted receptor within {km:g} km downstream and no provincial or national border within "
               f"the {hours:g}-hour reach")
        return tables.water_otherwise, [why]
    best = min(cls for cls, _ in found)  # 'E1' < 'E2' < 'E3'
    return best, [why for cls, why in found if cls == best] + [why for cls, why in found if cls != best]


# --------------------------------------------------------------------------------------------------
# levels and the label


@dataclass(frozen=True)
class MediumGrade:
    """The grade of one medium: Q, its band, M band and E (None when Q0), the level and the cell.

    A medium with Q ≥ 1 and no M score is *pending M*: ``m_band`` is None, ``levels`` the levels the
    matrix row (E, Q band) holds over every M band, and ``level`` the level only when that range is
    one level (E1/Q3 is major whatever M is), else None.
    """

    medium: Medium
    q: float
    q_band: str
    m_band: str | None
    e: str | None
    level: str | None
    levels: tuple[str, str] | None = None  # (lowest, highest) when pending M

    @property
    def pending(self) -> bool:
        """Q ≥ 1 but no M: the level waits for the bureau's M score."""
        return self.q_band != "Q0" and self.m_band is None

    @property
    def cell(self) -> str | None:
        """The matrix cell used, e.g. ``E2/Q1/M3`` (``E2/Q1/M?`` pending M); None when Q < 1 graded the
        medium directly."""
        if self.q_band == "Q0":
            return None
        return f"{self.e}/{self.q_band}/{self.m_band or 'M?'}"

    @property
    def range(self) -> tuple[str, str]:
        """The lowest and highest level the medium can have (the same level twice once graded)."""
        if self.levels is not None:
            return self.levels
        assert self.level is not None
        return self.level, self.level


def medium_level(medium: Medium, q: float, m_score: float | None, e: str, tables: GradingTables) -> MediumGrade:
    """The level of one medium: general when Q < 1, else the matrix cell (E, Q band, M band); with no
    M score, the range of levels M could give (pending M)."""
    band = q_band(q, tables)
    if band == "Q0":
        return MediumGrade(medium, q, band, None, None, "general")
    if e not in E_CLASSES:
        raise GradingProblem(f"{medium} sensitivity was {e!r} but is expected to be one of {list(E_CLASSES)}")
    if m_score is None:
        row = [tables.level_of(e, band, col) for col in tables.m_columns]
        lo = min(row, key=lambda lv: tables.level_rank[lv])
        hi = max(row, key=lambda lv: tables.level_rank[lv])
        return MediumGrade(medium, q, band, None, e, lo if lo == hi else None, (lo, hi))
    mb = m_band(float(m_score), tables)
    return MediumGrade(medium, q, band, mb, e, tables.level_of(e, band, mb))


@dataclass(frozen=True)
class Grade:
    """The enterprise grade: both media, the overall level (the higher; None while pending M leaves
    it open), its range, the label and the status (``graded`` or ``pending-m``)."""

    air: MediumGrade
    water: MediumGrade
    level: str | None
    label: str
    levels: tuple[str, str]

    @property
    def status(self) -> str:
        return "pending-m" if self.air.pending or self.water.pending else "graded"


class _Same:
    """The default of ``grade(m_water=...)``: the air M is used for water too."""


SAME_M = _Same()


def grade(q_air: float, q_water: float, m_score: float | None, e_air_class: str, e_water_class: str,
          tables: GradingTables, *, m_water: float | None | _Same = SAME_M) -> Grade:
    """Grade both media and combine them; the enterprise level is the higher of the two.

    HJ 941 scores M separately for air (§6.2) and water (§7.2): ``m_score`` is the air M and
    ``m_water`` the water M (by default the same score, for a source with one M).  A medium with
    Q ≥ 1 and no M is pending (:class:`MediumGrade`): the enterprise level is then the higher of the
    two ranges, a level only when that range is one level.
    """
    air = medium_level("air", q_air, m_score, e_air_class, tables)
    water = medium_level("water", q_water, m_score if isinstance(m_water, _Same) else m_water, e_water_class,
                         tables)
    (alo, ahi), (wlo, whi) = air.range, water.range
    levels = (tables.higher(alo, wlo), tables.higher(ahi, whi))
    level = levels[0] if levels[0] == levels[1] else None
    return Grade(air, water, level, label(levels, air, water, tables), levels)


def label(level: str | tuple[str, str], air: MediumGrade, water: MediumGrade, tables: GradingTables) -> str:
    """The standard's expression, e.g. ``较大[较大-大气(Q2-M2-E3)+一般-水(Q1-M1-E3)]``.

    Pending M, the part reads ``较大~重大-大气(Q2-M?-E2)`` (the levels M could give) and the overall
    level the range of the higher of the two.
    """
    return f"{_levels_zh(level, tables)}[{_part(air, tables)}+{_part(water, tables)}]"


def _levels_zh(level: str | tuple[str, str], tables: GradingTables) -> str:
    lo, hi = (level, level) if isinstance(level, str) else level
    return tables.level_zh[lo] if lo == hi else f"{tables.level_zh[lo]}~{tables.level_zh[hi]}"


def _part(g: MediumGrade, tables: GradingTables) -> str:
    inner = g.q_band if g.q_band == "Q0" else f"{g.q_band}-{g.m_band or 'M?'}-{g.e}"
    return f"{_levels_zh(g.range, tables)}-{tables.media_zh[g.medium]}({inner})"


@dataclass(frozen=True)
class GradeArrays:
    """:func:`grade` for many sources: one array per result (object arrays of text, None where a
    source could not be graded or a level is open) and the problem of each source that could not."""

    q_air_band: NDArray[np.object_]
    q_water_band: NDArray[np.object_]
    m_air_band: NDArray[np.object_]
    m_water_band: NDArray[np.object_]
    air_level: NDArray[np.object_]
    water_level: NDArray[np.object_]
    risk_level: NDArray[np.object_]
    level_min: NDArray[np.object_]
    level_max: NDArray[np.object_]
    air_cell: NDArray[np.object_]
    water_cell: NDArray[np.object_]
    label: NDArray[np.object_]
    status: NDArray[np.object_]
    problems: dict[int, str]


def grade_many(q_air: ArrayLike, q_water: ArrayLike, m_air: ArrayLike, e_air_class: Sequence[str],
               e_water_class: Sequence[str], tables: GradingTables, m_water: ArrayLike | None = None) -> GradeArrays:
    """:func:`grade` for many sources: the sources are grouped by (Q bands, M bands, E classes), and
    :func:`grade` itself grades one member of each group (a few hundred groups at most), so the
    levels and labels are exactly those of the one-source function.  ``m_air`` and ``m_water`` are
    NaN where absent; ``m_water`` None uses ``m_air`` for both media.
    """
    qa = np.asarray(q_air, dtype=np.float64)
    qw = np.asarray(q_water, dtype=np.float64)
    ma = np.asarray(m_air, dtype=np.float64)
    mw = ma if m_water is None else np.asarray(m_water, dtype=np.float64)
    qa_band, qw_band = _q_bands(qa, tables), _q_bands(qw, tables)
    ma_band, mw_band = _m_bands(ma, tables), _m_bands(mw, tables)
    ea = np.asarray(e_air_class, dtype=object)
    ew = np.asarray(e_water_class, dtype=object)
    parts = [qa_band, qw_band, ma_band, mw_band, ea, ew]
    keys = np.zeros(len(qa), dtype=np.int64)  # one integer per combination (codes of each part, mixed radix)
    for p in parts:
        texts = [str(v) for v in p.tolist()]
        code = {v: i for i, v in enumerate(sorted(set(texts)))}
        keys = keys * (len(code) + 1) + np.fromiter((code[v] for v in texts), dtype=np.int64, count=len(texts))
    _, first, group = np.unique(keys, return_index=True, return_inverse=True)
    names = ("q_air_band", "q_water_band", "m_air_band", "m_water_band", "air_level", "water_level", "risk_level",
             "level_min", "level_max", "air_cell", "water_cell", "label", "status")
    per_group: dict[str, list[Any]] = {k: [] for k in names}
    group_problem: dict[int, int] = {}

    def one(i: int) -> Grade:
        return grade(float(qa[i]), float(qw[i]), None if np.isnan(ma[i]) else float(ma[i]), str(ea[i]), str(ew[i]),
                     tables, m_water=None if np.isnan(mw[i]) else float(mw[i]))

    for g, i in enumerate(first):
        try:
            r: Grade | None = one(int(i))
        except GradingProblem:
            group_problem[g] = int(i)
            r = None
        values = (None,) * len(names) if r is None else (
            r.air.q_band, r.water.q_band, r.air.m_band, r.water.m_band, r.air.level, r.water.level, r.level,
            r.levels[0], r.levels[1], r.air.cell, r.water.cell, r.label, r.status)
        for k, v in zip(names, values):
            per_group[k].append(v)
    out = {k: np.asarray(v, dtype=object)[group.reshape(-1)] for k, v in per_group.items()}
    problems: dict[int, str] = {}
    if group_problem:
        for i in np.flatnonzero(np.isin(group.reshape(-1), list(group_problem))):
            try:  # the message names the source's own Q and M
                one(int(i))
            except GradingProblem as exc:
                problems[int(i)] = str(exc)
    return GradeArrays(**out, problems=problems)


def _q_bands(q: NDArray[np.float64], tables: GradingTables) -> NDArray[np.object_]:
    """:func:`q_band` of every value."""
    lowers = np.array([b.lower for b in tables.q_bands])
    idx = np.searchsorted(lowers, q, side="right") - 1
    names = np.array([b.name for b in tables.q_bands], dtype=object)
    return np.where(q < tables.q_general_below, "Q0", names[np.clip(idx, 0, len(names) - 1)]).astype(object)


def _m_bands(m: NDArray[np.float64], tables: GradingTables) -> NDArray[np.object_]:
    """:func:`m_band` of every score; 'none' where absent, 'below' under the first band."""
    lowers = np.array([b.lower for b in tables.m_bands])
    idx = np.searchsorted(lowers, m, side="right") - 1
    names = np.array([b.name for b in tables.m_bands], dtype=object)
    out = names[np.clip(idx, 0, len(names) - 1)].astype(object)
    out[idx < 0] = "below"
    out[np.isnan(m)] = "none"
    return out


# --------------------------------------------------------------------------------------------------
# population within a radius (E-air inputs), for many sites at once

_WGS84_A = 6378137.0
_WGS84_E2 = 0.00669437999014


def disk_sums(values: ArrayLike, transform: Any, lon: ArrayLike, lat: ArrayLike, radius_m: float, *,
              chunk: int = 2048) -> NDArray[np.float64]:
    """The sum of a lon/lat raster within ``radius_m`` metres (on the WGS84 ellipsoid) of each point.

    ``values`` is a 2-D array of counts per cell (persons per cell) placed by the north-up affine
    ``transform`` (EPSG:4326 degrees); NaN counts as 0 and cells beyond the array as empty.  Each cell
    counts by the fraction of it inside the circle, computed exactly for the circle's image in
    lon/lat: an ellipse with semi-axes r/M(φ) and r/(N(φ)·cos φ) (meridian and prime-vertical radii
    of curvature at the site).  The ellipse differs from the true geodesic circle by terms of order
    (r/R)·tan φ·r: under 0.05 % of the area at 5 km, so the sums agree with an exact geodesic-circle
    overlay to about 0.1 % (tests/gis/test_gis_grading.py); the cell fractions are taken in degree
    space, exact for a cell's area to within its own cos φ variation (< 0.01 % at 0.005° cells).

    Vectorised over the sites (``chunk`` at a time): one cumulative-area evaluation per cell corner,
    no geometry objects.  Returns a float64 array aligned with ``lon``.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"values must be a 2-D array, got shape {data.shape}")
    if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
        raise ValueError("the raster must be north-up (transform b = d = 0, a > 0, e < 0)")
    if not radius_m > 0:
        raise ValueError(f"radius_m was {radius_m!r} but is expected to be a positive number of metres")
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    out = np.zeros(len(lon))
    if not len(lon):
        return out
    dx, dy = float(transform.a), float(-transform.e)
    x0, y0 = float(transform.c), float(transform.f)
    a_deg, b_deg = _ellipse_axes_deg(lat, radius_m)
    nc = int(np.ceil(2 * a_deg.max() / dx)) + 2
    nr = int(np.ceil(2 * b_deg.max() / dy)) + 2
    pad = max(nc, nr) + 1
    padded = np.zeros((data.shape[0] + 2 * pad, data.shape[1] + 2 * pad))
    padded[pad:-pad, pad:-pad] = np.where(np.isfinite(data), data, 0.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (nr, nc))
    kr, kc = np.arange(nr + 1), np.arange(nc + 1)
    for s in range(0, len(lon), chunk):
        px, py, a, b = lon[s:s + chunk], lat[s:s + chunk], a_deg[s:s + chunk], b_deg[s:s + chunk]
        i0 = np.floor((px - a - x0) / dx).astype(np.int64)
        j0 = np.floor((y0 - (py + b)) / dy).astype(np.int64)
        u = (x0 + (i0[:, None] + kc[None, :]) * dx - px[:, None]) / a[:, None]  # corner columns
        v = (y0 - (j0[:, None] + kr[None, :]) * dy - py[:, None]) / b[:, None]  # corner rows (southward)
        f = _quadrant_area(u, v)  # (P, nr + 1, nc + 1)
        cells = (f[:, :-1, 1:] - f[:, :-1, :-1]) - (f[:, 1:, 1:] - f[:, 1:, :-1])
        ii = np.clip(i0 + pad, 0, windows.shape[1] - 1)
        jj = np.clip(j0 + pad, 0, windows.shape[0] - 1)
        inside = (i0 + pad == ii) & (j0 + pad == jj)  # sites whose window lies within the padding
        vals = windows[jj, ii]
        scale = a * b / (dx * dy)
        out[s:s + chunk] = np.where(inside, np.einsum("pji,pji->p", cells, vals) * scale, 0.0)
    return out


def _ellipse_axes_deg(lat: NDArray[np.float64], radius_m: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Semi-axes (degrees of longitude, degrees of latitude) of a radius-``radius_m`` circle at ``lat``."""
    phi = np.radians(lat)
    w = np.sqrt(1.0 - _WGS84_E2 * np.sin(phi) ** 2)
    n = _WGS84_A / w
    m = _WGS84_A * (1.0 - _WGS84_E2) / w**3
    return np.degrees(radius_m / (n * np.cos(phi))), np.degrees(radius_m / m)


def _quadrant_area(u: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    """Signed area of the unit disk within the rectangle between (0, 0) and (u, v), for every
    combination of a row of ``u`` (P, K) and a row of ``v`` (P, J): result (P, J, K).

    For u, v ≥ 0 the area is uu·min(vv, √(1-uu²)) + max(0, S(vv) - S(√(1-uu²))) with uu, vv
    clipped to 1 and S(y) = ∫₀ʸ √(1-t²) dt; other quadrants follow by symmetry (odd in u and v).
    """
    uu = np.minimum(np.abs(u), 1.0)
    vv = np.minimum(np.abs(v), 1.0)
    ys = np.sqrt(1.0 - uu * uu)
    s_ys = _half_chord_integral(ys)
    s_vv = _half_chord_integral(vv)
    core = uu[:, None, :] * np.minimum(vv[:, :, None], ys[:, None, :])
    core += np.maximum(0.0, s_vv[:, :, None] - s_ys[:, None, :])
    return core * (np.sign(v)[:, :, None] * np.sign(u)[:, None, :])


def _half_chord_integral(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """S(y) = ∫₀ʸ √(1-t²) dt for 0 ≤ y ≤ 1."""
    return 0.5 * (y * np.sqrt(np.maximum(0.0, 1.0 - y * y)) + np.arcsin(y))
