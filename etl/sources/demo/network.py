"""The demo river network: courses split at junctions and city boundaries into reaches."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.ops import substring

from etl.sources.demo.common import (
    _END_RUN_M,
    _MAX_REACH_M,
    _MIN_RUN_M,
    _SAMPLE_M,
    _SPLIT_GAP_M,
    _TO_LL,
    _TO_M,
    Coord,
    _to_lonlat,
    _to_metric,
)
from etl.sources.demo.region import _Region

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


