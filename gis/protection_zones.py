"""Drinking-water protection zones derived from an intake point, after HJ 338-2018 (DESIGN 8.3).

Pure geometry: the zone parameters are passed in (the project keeps them, with their clauses, in
``layers/data/hj338_protection_zones.yaml``; :func:`zone_parameters` flattens that parsed document).
Inputs and outputs are WGS84 lon/lat; all lengths and buffers are computed in a transverse Mercator
centred on the intake (:func:`gis.crs.metric_crs_for`: scale error below 1e-4 within ~90 km of it), so
distances are metres on the ground wherever the intake lies, not only in the home region.

River sources (the river centreline digitised in flow direction, with a width):

* level 1: the river from ``up1`` m upstream to ``down1`` m downstream of the intake (measured
  along the centreline from the intake's projection on it), as wide as the river, plus ``land1`` m of
  land beyond each bank;
* level 2: from the ends of level 1 a further ``up2`` m upstream and ``down2`` m downstream, land
  ``land2`` m from each bank, minus level 1;
* quasi: a further ``up_quasi`` m upstream of level 2, land like level 2, minus levels 1 and 2.

Lake/reservoir sources follow one of two rules of HJ 338 (:func:`lake_zones`): the *small* rule
(small lakes, small and medium reservoirs) -- level 1 is the water within ``r1_small`` m of the intake
plus ``land1_small`` m of land around it; the *large* rule (medium and large lakes, large reservoirs)
-- level 1 within ``r1_large`` m, level 2 the ring from there to ``r1_large + r2_large`` m. Which rule
a water body follows depends on whether it is a lake or a reservoir and on its size class, defined by
a reservoir's total storage or a lake's area (:class:`LakeClasses`, from the YAML's ``size_classes``).

Groundwater sources (wells, :func:`groundwater_zones`): discs round the well whose radii depend on the
aquifer (porous, fissure, karst), its confinement (phreatic, confined) and the well field's yield
(:class:`GroundwaterRules`, from the YAML's ``groundwater``): the empirical radii of the porous
phreatic table by aquifer medium, or the travel-distance formula R = alpha K I T / n with the travel
times of levels 1 and 2. Large well fields need a numerical model and are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.ops import substring

from gis.crs import from_metric, metric_crs_for, to_metric

__all__ = [
    "RIVER_KEYS",
    "LAKE_KEYS",
    "AQUIFERS",
    "AQUIFER_MEDIA",
    "GroundwaterRules",
    "Hydraulics",
    "LakeClasses",
    "zone_parameters",
    "river_zones",
    "lake_zones",
    "groundwater_radii",
    "groundwater_zones",
]

RIVER_KEYS = ("up1", "down1", "land1", "up2", "down2", "land2", "up_quasi")
LAKE_KEYS = ("r1_small", "land1_small", "r1_large", "r2_large")
LakeSize = Literal["small", "medium", "large"]
LakeRule = Literal["small", "large"]
WaterBodyType = Literal["lake", "reservoir"]
AQUIFERS = ("porous", "fissure", "karst")
CONFINEMENTS = ("phreatic", "confined")
AQUIFER_MEDIA = ("fine-sand", "medium-sand", "coarse-sand", "gravel", "pebble")

#: Segments per quarter circle for round joins and discs (a 2000 m disc is then within 0.6 m).
_QUAD_SEGS = 32


def zone_parameters(doc: Mapping[str, Any]) -> dict[str, float]:
    """Flatten the parsed ``hj338_protection_zones.yaml`` into ``{name: metres}``.

    Accepts the document's ``river`` and ``lake`` sections whose entries are either numbers or
    mappings with a ``value``. Promises every key of :data:`RIVER_KEYS` and :data:`LAKE_KEYS`, each a
    finite number >= 0; raises ``ValueError`` naming the first key that is missing or invalid.
    """
    out: dict[str, float] = {}
    for section, keys in (("river", RIVER_KEYS), ("lake", LAKE_KEYS)):
        entries = doc.get(section) or {}
        for key in keys:
            if key not in entries:
                raise ValueError(f"protection zone parameter {section}.{key} is missing")
            raw = entries[key]
            value = raw.get("value") if isinstance(raw, Mapping) else raw
            try:
                number = float(cast(float, value))
            except (TypeError, ValueError):
                raise ValueError(f"{section}.{key} was {value!r}, expected a number of metres") from None
            if not np.isfinite(number) or number < 0:
                raise ValueError(f"{section}.{key} was {number}, expected a finite number >= 0")
            out[key] = number
    return out


def _frame(intake: Point) -> CRS:
    """The metric frame of one intake's zones: a transverse Mercator centred on it."""
    return metric_crs_for(intake.x, intake.y)


def _metric(geom: shapely.Geometry, frame: CRS) -> shapely.Geometry:
    return cast(shapely.Geometry, to_metric([geom], frame)[0])


def _wgs84(geom: shapely.Geometry, frame: CRS) -> MultiPolygon:
    out = from_metric([geom], frame)[0]
    if not out.is_valid:
        out = shapely.make_valid(out)
    polys = [p for p in shapely.get_parts(out) if p.geom_type == "Polygon" and not p.is_empty]
    return MultiPolygon(polys)


def _param(params: Mapping[str, float], key: str) -> float:
    try:
        value = float(params[key])
    except KeyError:
        raise ValueError(f"protection zone parameter {key!r} is missing") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"protection zone parameter {key!r} was {value}, expected >= 0 metres")
    return value


def _band(line: LineString, start: float, end: float, half_width: float) -> Polygon | MultiPolygon:
    """Flat-ended buffer of the part of ``line`` between distances start..end (clipped to the line)."""
    start, end = max(start, 0.0), min(end, line.length)
    if end - start <= 1e-6:
        return Polygon()
    part = substring(line, start, end)
    return part.buffer(half_width, quad_segs=_QUAD_SEGS, cap_style="flat", join_style="round")


def river_zones(
    intake_lonlat: tuple[float, float] | Point,
    river_line_lonlat: LineString,
    width_m: float,
    params: Mapping[str, float],
) -> dict[str, MultiPolygon]:
    """HJ 338 zones of a river intake, as WGS84 MultiPolygons keyed '1', '2' and 'quasi'.

    ``river_line_lonlat`` is the centreline in flow direction (first vertex upstream); pass a line
    that reaches at least ``up1 + up2 + up_quasi`` upstream and ``down1 + down2`` downstream of the
    intake (e.g. the river's consecutive reaches merged), because zones are clipped where the line
    ends. Zones are measured along the centreline from the intake's projection onto it; the water
    part is ``width_m`` wide and the land part extends ``land1`` / ``land2`` beyond each bank.
    Level 2 excludes level 1, quasi excludes both; the three never overlap (they may share edges).
    A zone with no area (e.g. the line ends right above level 2) is left out of the result.
    Raises ``ValueError`` if the intake lies farther than ``width_m / 2 + land1`` from the line, or
    the width or a parameter is negative or missing.
    """
    if width_m <= 0 or not np.isfinite(width_m):
        raise ValueError(f"width_m was {width_m}, expected a positive number of metres")
    p = {k: _param(params, k) for k in RIVER_KEYS}
    intake = intake_lonlat if isinstance(intake_lonlat, Point) else Point(intake_lonlat)
    frame = _frame(intake)
    line = _metric(river_line_lonlat, frame)
    site = _metric(intake, frame)
    half = width_m / 2.0
    if line.distance(site) > half + p["land1"]:
        raise ValueError(
            f"intake is {line.distance(site):.0f} m from the river line, expected within "
            f"{half + p['land1']:.0f} m (half the width plus the level 1 land strip)"
        )
    s0 = line.project(site)
    top1, bottom1 = s0 - p["up1"], s0 + p["down1"]
    top2, bottom2 = top1 - p["up2"], bottom1 + p["down2"]
    level1 = _band(line, top1, bottom1, half + p["land1"])
    outer2 = _band(line, top2, bottom2, half + p["land2"])
    level2 = outer2.difference(level1)
    quasi = _band(line, top2 - p["up_quasi"], top2, half + p["land2"]).difference(outer2).difference(level1)
    zones = {"1": level1, "2": level2, "quasi": quasi}
    return {k: _wgs84(g, frame) for k, g in zones.items() if g.area > 1.0}


def _number(doc: Mapping[str, Any], key: str, where: str) -> float:
    raw = doc.get(key) if isinstance(doc, Mapping) else None
    value = raw.get("value") if isinstance(raw, Mapping) else raw
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{where}.{key} was {value!r}, expected a number") from None
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"{where}.{key} was {number}, expected a finite number >= 0")
    return number


@dataclass(frozen=True)
class LakeClasses:
    """HJ 338 size classes of lakes and reservoirs and the zone rule each class follows.

    Reservoirs are classed by total storage (10^8 m3): small below ``reservoir_medium_min``, medium
    below ``reservoir_large_min``, large from there; lakes by water area (km2): small below
    ``lake_large_min_km2``, else medium/large (one class in the standard). ``rules`` maps
    (water body type, size) to the rule ('small' or 'large'); ``whole_water`` holds the
    (type, size) pairs whose level 1 is the whole water body when its shoreline is known.
    """

    reservoir_medium_min: float
    reservoir_large_min: float
    lake_large_min_km2: float
    rules: Mapping[tuple[str, str], LakeRule]
    whole_water: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> LakeClasses:
        """From the parsed YAML's ``size_classes`` mapping; ``ValueError`` names what is wrong."""
        reservoir, lake = doc.get("reservoir") or {}, doc.get("lake") or {}
        medium_min = _number(reservoir, "medium_min", "size_classes.reservoir")
        large_min = _number(reservoir, "large_min", "size_classes.reservoir")
        if not medium_min < large_min:
            raise ValueError(f"size_classes.reservoir: medium_min {medium_min} must be below large_min {large_min}")
        rules: dict[tuple[str, str], LakeRule] = {}
        for body in ("lake", "reservoir"):
            table = (doc.get("rule") or {}).get(body) or {}
            for size in ("small", "medium", "large"):
                rule = table.get(size)
                if rule not in ("small", "large"):
                    raise ValueError(f"size_classes.rule.{body}.{size} was {rule!r}, expected 'small' or 'large'")
                rules[(body, size)] = rule
        whole = doc.get("whole_water_level1") or {}
        pairs = frozenset((body, size) for body in ("lake", "reservoir") for size in (whole.get(body) or ()))
        return cls(medium_min, large_min, _number(lake, "large_min", "size_classes.lake"), rules, pairs)

    def size_of(self, water_body_type: WaterBodyType, *, storage_1e8_m3: float | None = None,
                area_km2: float | None = None) -> LakeSize:
        """The size class of a reservoir from its total storage, of a lake from its area."""
        if water_body_type == "reservoir":
            if storage_1e8_m3 is None or not storage_1e8_m3 >= 0:
                raise ValueError(f"a reservoir is classed by its storage: storage_1e8_m3 was {storage_1e8_m3!r}")
            if storage_1e8_m3 >= self.reservoir_large_min:
                return "large"
            return "medium" if storage_1e8_m3 >= self.reservoir_medium_min else "small"
        if water_body_type == "lake":
            if area_km2 is None or not area_km2 >= 0:
                raise ValueError(f"a lake is classed by its area: area_km2 was {area_km2!r}")
            return "large" if area_km2 >= self.lake_large_min_km2 else "small"
        raise ValueError(f"water_body_type was {water_body_type!r}, expected 'lake' or 'reservoir'")

    def rule_of(self, water_body_type: WaterBodyType, size: LakeSize) -> LakeRule:
        """The zone rule ('small' or 'large') of a lake or reservoir of that size."""
        try:
            return self.rules[(water_body_type, size)]
        except KeyError:
            raise ValueError(f"(water_body_type, size) was ({water_body_type!r}, {size!r}), expected 'lake' or "
                             f"'reservoir' and 'small', 'medium' or 'large'") from None

    def whole_water_of(self, water_body_type: WaterBodyType, size: LakeSize) -> bool:
        """Whether level 1 is the whole water body (e.g. a small reservoir) when its shore is known."""
        return (water_body_type, size) in self.whole_water


def lake_zones(
    intake_lonlat: tuple[float, float] | Point,
    rule: LakeRule,
    params: Mapping[str, float],
    lake_lonlat: Polygon | MultiPolygon | None = None,
    *,
    whole_water: bool = False,
) -> dict[str, MultiPolygon]:
    """HJ 338 zones of a lake or reservoir intake, as WGS84 MultiPolygons keyed '1' (and '2').

    ``rule`` is the HJ 338 rule the water body follows (:meth:`LakeClasses.rule_of`). Small rule:
    without ``lake_lonlat``, level 1 is the disc of radius ``r1_small + land1_small`` round the intake
    (water disc plus its land margin, the conservative envelope when the shore is unknown); with it,
    level 1 is the water within ``r1_small`` (the whole water if ``whole_water``) plus the land within
    ``land1_small`` of that water, and level 2 the rest of the water. Large rule: level 1 the disc of
    ``r1_large``, level 2 the ring out to ``r1_large + r2_large``; with ``lake_lonlat`` both are
    clipped to the water. Raises ``ValueError`` for another rule or a missing/negative parameter.
    """
    if rule not in ("small", "large"):
        raise ValueError(f"rule was {rule!r}, expected 'small' or 'large' (LakeClasses.rule_of gives it "
                         f"from the water body's type and size)")
    intake = intake_lonlat if isinstance(intake_lonlat, Point) else Point(intake_lonlat)
    frame = _frame(intake)
    site = _metric(intake, frame)
    lake = _metric(lake_lonlat, frame) if lake_lonlat is not None else None
    if rule == "small":
        r1, land = _param(params, "r1_small"), _param(params, "land1_small")
        if lake is None:
            return {"1": _wgs84(site.buffer(r1 + land, quad_segs=_QUAD_SEGS), frame)}
        water = lake if whole_water else site.buffer(r1, quad_segs=_QUAD_SEGS).intersection(lake)
        shore = water.buffer(land, quad_segs=_QUAD_SEGS).difference(lake)
        level1 = water.union(shore)
        small = {"1": level1, "2": lake.difference(level1)}
        return {k: _wgs84(g, frame) for k, g in small.items() if g.area > 1.0}
    r1, r2 = _param(params, "r1_large"), _param(params, "r2_large")
    disc1 = site.buffer(r1, quad_segs=_QUAD_SEGS)
    disc2 = site.buffer(r1 + r2, quad_segs=_QUAD_SEGS)
    if lake is not None:
        disc1, disc2 = disc1.intersection(lake), disc2.intersection(lake)
    zones = {"1": disc1, "2": disc2.difference(disc1)}
    return {k: _wgs84(g, frame) for k, g in zones.items() if g.area > 1.0}


@dataclass(frozen=True)
class Hydraulics:
    """Aquifer properties for the travel-distance formula: hydraulic conductivity K (m/d), hydraulic
    gradient I (within the cone of depression) and effective porosity n."""

    k_m_per_day: float
    gradient: float
    porosity: float

    def __post_init__(self) -> None:
        for name in ("k_m_per_day", "gradient", "porosity"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} was {v!r}, expected a positive number")
        if self.porosity > 1:
            raise ValueError(f"porosity was {self.porosity}, expected a fraction in (0, 1]")


@dataclass(frozen=True)
class GroundwaterRules:
    """HJ 338 groundwater zones: the yield from which a well field is large (m3/d), the safety factor
    alpha and travel times T (days) of the formula R = alpha K I T / n for levels 1 and 2, and the
    empirical radii (m) of porous phreatic aquifers by medium, each a (low, high) range per level,
    of which ``pick`` ('low' or 'high') is used."""

    large_yield_m3_per_day: float
    alpha: float
    travel_days: Mapping[str, float]
    porous_radii: Mapping[str, Mapping[str, tuple[float, float]]]
    pick: Literal["low", "high"] = "high"

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> GroundwaterRules:
        """From the parsed YAML's ``groundwater`` mapping; ``ValueError`` names what is wrong."""
        where = "groundwater"
        days = doc.get("travel_days") or {}
        travel = {lvl: _number(days, lvl, f"{where}.travel_days") for lvl in ("1", "2")}
        table = (doc.get("porous_phreatic_radius_m") or {}).get("media") or {}
        radii: dict[str, dict[str, tuple[float, float]]] = {}
        for medium in AQUIFER_MEDIA:
            row = table.get(medium)
            if not isinstance(row, Mapping):
                raise ValueError(f"{where}.porous_phreatic_radius_m.media.{medium} is missing")
            radii[medium] = {}
            for lvl in ("1", "2"):
                pair = row.get(lvl)
                if not (isinstance(pair, list | tuple) and len(pair) == 2 and 0 < float(pair[0]) <= float(pair[1])):
                    raise ValueError(f"{where}.porous_phreatic_radius_m.media.{medium}.{lvl} was {pair!r}, "
                                     f"expected [low, high] metres with 0 < low <= high")
                radii[medium][lvl] = (float(pair[0]), float(pair[1]))
        pick = (doc.get("porous_phreatic_radius_m") or {}).get("pick", "high")
        if pick not in ("low", "high"):
            raise ValueError(f"{where}.porous_phreatic_radius_m.pick was {pick!r}, expected 'low' or 'high'")
        return cls(_number(doc, "large_yield_m3_per_day", where), _number(doc, "alpha", where), travel, radii, pick)

    def formula_radius(self, hydraulics: Hydraulics, level: str) -> float:
        """R = alpha K I T / n (m) for level '1' or '2'."""
        h = hydraulics
        return self.alpha * h.k_m_per_day * h.gradient * self.travel_days[level] / h.porosity


def groundwater_radii(
    rules: GroundwaterRules,
    aquifer: str,
    confinement: str,
    yield_m3_per_day: float,
    medium: str | None = None,
    hydraulics: Hydraulics | None = None,
) -> dict[str, float]:
    """Radii (m) of the HJ 338 zones of a well, keyed '1' (and '2').

    Porous aquifers: the formula when ``hydraulics`` are given, else the empirical radius of the
    ``medium``. Fissure and karst aquifers: the formula (``hydraulics`` required). A confined aquifer
    gets level 1 only (that of the phreatic aquifer above it, computed the same way); a phreatic one
    levels 1 and 2. Raises ``ValueError`` for a large well field (yield at or above
    ``rules.large_yield_m3_per_day``: HJ 338 asks for a numerical model there; supply its zones as
    polygons), an unknown aquifer, confinement or medium, or missing inputs.
    """
    if aquifer not in AQUIFERS:
        raise ValueError(f"aquifer was {aquifer!r}, expected one of {AQUIFERS}")
    if confinement not in CONFINEMENTS:
        raise ValueError(f"confinement was {confinement!r}, expected one of {CONFINEMENTS}")
    if not (np.isfinite(yield_m3_per_day) and yield_m3_per_day >= 0):
        raise ValueError(f"yield_m3_per_day was {yield_m3_per_day!r}, expected a number >= 0")
    if yield_m3_per_day >= rules.large_yield_m3_per_day:
        raise ValueError(
            f"a well field yielding {yield_m3_per_day:g} m3/d is large (>= {rules.large_yield_m3_per_day:g} m3/d): "
            f"HJ 338 delineates its zones with a numerical groundwater model; supply them as polygons")
    levels = ("1",) if confinement == "confined" else ("1", "2")
    if hydraulics is not None:
        return {lvl: rules.formula_radius(hydraulics, lvl) for lvl in levels}
    if aquifer != "porous":
        raise ValueError(f"a {aquifer} aquifer needs hydraulics (K, I, n) for R = alpha K I T / n; "
                         f"the empirical radii of HJ 338 are for porous aquifers only")
    if medium is None or medium not in rules.porous_radii:
        raise ValueError(f"medium was {medium!r}, expected one of {tuple(rules.porous_radii)} "
                         f"(or give hydraulics for the formula)")
    i = 1 if rules.pick == "high" else 0
    return {lvl: rules.porous_radii[medium][lvl][i] for lvl in levels}


def groundwater_zones(intake_lonlat: tuple[float, float] | Point, radii: Mapping[str, float]) -> dict[str, MultiPolygon]:
    """Zones of a well from :func:`groundwater_radii`: level 1 the disc round the well, level 2 the
    ring from there out to its radius; WGS84 MultiPolygons keyed like ``radii``."""
    if "1" not in radii:
        raise ValueError("radii has no level '1'")
    if any(not (np.isfinite(r) and r > 0) for r in radii.values()):
        raise ValueError(f"radii were {dict(radii)}, expected positive metres")
    if "2" in radii and radii["2"] <= radii["1"]:
        raise ValueError(f"the level 2 radius {radii['2']} m must exceed the level 1 radius {radii['1']} m")
    intake = intake_lonlat if isinstance(intake_lonlat, Point) else Point(intake_lonlat)
    frame = _frame(intake)
    site = _metric(intake, frame)
    disc1 = site.buffer(radii["1"], quad_segs=_QUAD_SEGS)
    zones = {"1": disc1}
    if "2" in radii:
        zones["2"] = site.buffer(radii["2"], quad_segs=_QUAD_SEGS).difference(disc1)
    return {k: _wgs84(g, frame) for k, g in zones.items()}
