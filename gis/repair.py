"""Geometry validation and repair for loading a layer (DESIGN 2: etl normalise step).

:func:`repair_geometries` takes a column of shapely geometries and the geometry type its layer
stores ('Point', 'LineString' or 'MultiPolygon') and says, row by row, which geometry to load, why a
row is rejected, and what a repair changed. Everything is vectorised with shapely 2; Python loops run
only over the (few) rows that are invalid or need their parts sorted out.

A repair is accepted only when it cannot have guessed wrong: ``make_valid`` may settle a crossing of
a ring's own edges, but a result with another number of parts or another type, or whose area differs
from the input's by more than :data:`MAX_AREA_CHANGE`, is a digitising error for the data's steward
to fix, and the row is rejected saying so. A hole lying outside its shell is always such an error
(``make_valid`` would turn it into a second polygon). :func:`parse_geometries` reads WKB or WKT and
closes rings the source left open, saying which rows it closed.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from gis.crs import metric_crs_for, to_metric

__all__ = ["RepairResult", "repair_geometries", "parse_geometries", "EXPECTED_TYPES", "MAX_AREA_CHANGE"]

#: The largest relative change of area (0.01 = 1 %) a make_valid repair of a polygon may make and
#: still be loaded. Settling a small crossing of a ring's edges moves a sliver (a fraction of a
#: percent); a larger change means make_valid had to guess which side of a ring was meant.
#: ``repair_geometries(..., max_area_change=...)`` takes another value.
MAX_AREA_CHANGE = 0.01

ExpectedType = Literal["Point", "LineString", "MultiPolygon"]

#: Layer geometry types and their shapely type ids.
EXPECTED_TYPES: dict[str, int] = {"Point": 0, "LineString": 1, "MultiPolygon": 6}

_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
_POINT, _LINE, _POLYGON, _MULTIPOINT, _MULTILINE, _MULTIPOLYGON = 0, 1, 3, 4, 5, 6


class RepairResult(NamedTuple):
    """What :func:`repair_geometries` returns (a tuple: ``geoms, reasons, repaired = ...``).

    geometries: object ndarray, one entry per input row: the geometry to load (possibly promoted or
                repaired), or None where the row is rejected.
    reasons:    list, one entry per row: None where the row is accepted, otherwise why it is
                rejected (a sentence for the load report).
    repaired:   bool ndarray, True where an accepted geometry was changed to make it valid or to fit
                the layer (shapely.make_valid, or joining the parts of a MultiLineString). Lossless
                promotions (Polygon -> MultiPolygon, one-part Multi* -> single) are not flagged.
    changes:    list, one entry per row: where ``repaired`` is True, what the repair changed (a
                sentence for the load report, e.g. "self-intersection at (118.6, 32.1) fixed by
                make_valid: area 1.234 km² -> 1.23 km² (-0.3%)"); None elsewhere.
    """

    geometries: NDArray[np.object_]
    reasons: list[str | None]
    repaired: NDArray[np.bool_]
    changes: list[str | None]


def _make_valid(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """shapely.make_valid with the 'structure' method (GEOS >= 3.10), else the 'linework' method."""
    with np.errstate(invalid="ignore"):
        try:
            fixed = shapely.make_valid(geoms, method="structure", keep_collapsed=False)
        except (shapely.errors.UnsupportedGEOSVersionError, ValueError):
            fixed = shapely.make_valid(geoms)
    return np.asarray(fixed, dtype=object)


def _fit(geom: shapely.Geometry | None, expected_id: int) -> shapely.Geometry | None:
    """Bring one geometry to the expected type by lossless promotion or part extraction, or None."""
    if geom is None or shapely.is_empty(geom):
        return None
    tid = shapely.get_type_id(geom)
    if tid == expected_id:
        return geom
    if expected_id == _MULTIPOLYGON:
        parts = shapely.get_parts(shapely.get_parts(geom))  # flattens collections and multi-parts
        polygons = parts[shapely.get_type_id(parts) == _POLYGON]
        polygons = polygons[~shapely.is_empty(polygons)]
        return shapely.multipolygons(polygons) if len(polygons) else None
    if expected_id == _LINE and tid in (_MULTILINE, 7):
        parts = shapely.get_parts(geom)
        lines = parts[(shapely.get_type_id(parts) == _LINE) & ~shapely.is_empty(parts)]
        if len(lines) == 0:
            return None
        merged = shapely.line_merge(shapely.multilinestrings(lines), directed=True)
        return merged if shapely.get_type_id(merged) == _LINE else None
    if expected_id == _POINT and tid == _MULTIPOINT and shapely.get_num_geometries(geom) == 1:
        return shapely.get_geometry(geom, 0)
    return None


def repair_geometries(geoms: ArrayLike, expected: ExpectedType, *,
                      max_area_change: float = MAX_AREA_CHANGE) -> RepairResult:
    """Validate and repair a column of WGS84 geometries for a layer storing ``expected`` geometries.

    Per row, in this order:

    * None -> rejected, "missing geometry"; empty -> rejected, "empty geometry".
    * Lossless promotion: Polygon -> MultiPolygon; a one-part MultiLineString -> LineString; a
      one-part MultiPoint -> Point.
    * A MultiLineString of several parts for a LineString layer is accepted (and flagged repaired)
      only if its parts join end to end, in their own direction, into one line (line_merge with
      directed=True, so a river keeps its flow direction); otherwise rejected.
    * Any other type -> rejected, "geometry is Polygon but layer expects Point".
    * A polygon with a hole outside its shell is rejected ("hole outside its shell at (x, y): ...").
    * Other invalid geometries (shapely.is_valid) are repaired with
      shapely.make_valid(method='structure') and, for MultiPolygon layers, reduced to their polygonal
      parts. The row is kept (flagged repaired, the change described) only if the result is a valid,
      non-empty geometry of the expected type with as many parts as the input, and, for polygons,
      an area (in a local metric projection) within ``max_area_change`` of the input's; otherwise it
      is rejected with the reason, e.g. "invalid geometry (Self-intersection[118.1 32.1]): make_valid
      would turn its 1 part into 2; fix the geometry at the source", or "invalid geometry
      (Self-intersection[118.2 32]) could not be repaired into a MultiPolygon". NaN/inf coordinates
      are invalid and never repairable.

    Coordinates are never moved except by make_valid. Returns a :class:`RepairResult`. The input is
    flattened to 1-D; None entries are allowed.
    """
    if expected not in EXPECTED_TYPES:
        raise ValueError(f"expected must be one of {sorted(EXPECTED_TYPES)}, got {expected!r}")
    expected_id = EXPECTED_TYPES[expected]
    arr = np.asarray(geoms, dtype=object).ravel()
    n = len(arr)
    out = arr.copy()
    reasons = np.full(n, None, dtype=object)
    repaired = np.zeros(n, dtype=bool)
    changes = np.full(n, None, dtype=object)

    type_id = shapely.get_type_id(arr)
    missing = type_id == -1
    reasons[missing] = "missing geometry"
    empty = ~missing & shapely.is_empty(arr)
    reasons[empty] = "empty geometry"
    usable = ~missing & ~empty

    # lossless promotions, vectorised
    if expected_id == _MULTIPOLYGON:
        idx = np.flatnonzero(usable & (type_id == _POLYGON))
        if len(idx):
            out[idx] = shapely.multipolygons(arr[idx], indices=np.arange(len(idx)))
            type_id[idx] = _MULTIPOLYGON
    else:
        multi_id = _MULTILINE if expected_id == _LINE else _MULTIPOINT
        idx = np.flatnonzero(usable & (type_id == multi_id))
        if len(idx):
            single = shapely.get_num_geometries(arr[idx]) == 1
            one = idx[single]
            out[one] = shapely.get_geometry(arr[one], 0)
            type_id[one] = expected_id
            # several-part MultiLineStrings: try joining them into one line (few rows)
            if expected_id == _LINE:
                for i in idx[~single]:
                    merged = _fit(arr[i], _LINE)
                    if merged is not None:
                        out[i], type_id[i], repaired[i] = merged, _LINE, True
                        changes[i] = (f"{shapely.get_num_geometries(arr[i])} line parts joined end to end "
                                      "into one line (flow direction kept)")

    wrong = usable & (type_id != expected_id)
    for i in np.flatnonzero(wrong):
        found = _TYPE_NAMES.get(int(type_id[i]), "unknown")
        if found == "MultiLineString" and expected_id == _LINE:
            parts = shapely.get_num_geometries(arr[i])
            reasons[i] = (
                f"geometry is MultiLineString of {parts} parts that do not join into one line "
                "but layer expects LineString"
            )
        else:
            reasons[i] = f"geometry is {found} but layer expects {expected}"

    candidates = np.flatnonzero(usable & ~wrong)
    invalid = candidates[~shapely.is_valid(out[candidates])]
    if len(invalid):
        why = shapely.is_valid_reason(out[invalid])
        fixed = _make_valid(out[invalid])
        for i, reason, geom in zip(invalid, why, fixed):
            hole = _hole_outside_shell(out[i]) if expected_id == _MULTIPOLYGON else None
            if hole is not None:
                reasons[i] = (f"hole outside its shell at {hole}: a digitising error that make_valid would "
                              "turn into another polygon part; fix the ring at the source")
                continue
            result = _fit(geom, expected_id)
            if result is None or not shapely.is_valid(result):
                reasons[i] = f"invalid geometry ({reason}) could not be repaired into a {expected}"
                continue
            refused, change = _judge(out[i], geom, result, reason, max_area_change)
            if refused is not None:
                reasons[i] = f"invalid geometry ({reason}): {refused}; fix the geometry at the source"
            else:
                out[i], repaired[i], changes[i] = result, True, change

    rejected = _is_set(reasons)
    out[rejected] = None
    repaired &= ~rejected
    changes[~repaired] = None
    return RepairResult(out, reasons.tolist(), repaired, changes.tolist())


_PROBLEM = re.compile(r"^(?P<what>[^\[]+)\[(?P<x>\S+) (?P<y>\S+)\]$")


def _coordinate(value: float) -> str:
    """A coordinate as the report shows it: at most 6 decimals (about 0.1 m), no trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _point(x: float, y: float) -> str:
    return f"({_coordinate(x)}, {_coordinate(y)})"


def _problem(reason: str) -> str:
    """GEOS's reason as a phrase: "Self-intersection[118.1 32]" -> "self-intersection at (118.1, 32)"."""
    m = _PROBLEM.match(reason)
    if m is None:
        return reason.lower()
    try:
        where = _point(float(m["x"]), float(m["y"]))
    except ValueError:
        return reason.lower()
    return f"{m['what'].strip().lower()} at {where}"


def _hole_outside_shell(geom: shapely.Geometry) -> str | None:
    """Where a hole of ``geom`` lies wholly outside its polygon's shell (interiors disjoint), or None."""
    for polygon in shapely.get_parts(geom):
        if shapely.get_type_id(polygon) != _POLYGON or shapely.get_num_interior_rings(polygon) == 0:
            continue
        shell = shapely.polygons(shapely.get_exterior_ring(polygon))
        for k in range(shapely.get_num_interior_rings(polygon)):
            ring = shapely.get_interior_ring(polygon, k)
            hole = shapely.polygons(ring)
            if not shapely.relate_pattern(shell, hole, "T********"):
                x, y = shapely.get_coordinates(ring)[0]
                return _point(float(x), float(y))
    return None


def _km2(geoms: NDArray[np.object_]) -> NDArray[np.float64]:
    """Areas (km²) of lon/lat geometries in a transverse Mercator centred on the first one."""
    minx, miny, maxx, maxy = shapely.bounds(geoms[0])
    metric = to_metric(geoms, metric_crs_for((minx + maxx) / 2, (miny + maxy) / 2))
    return np.asarray(shapely.area(metric), dtype=np.float64) / 1e6


def _areas_text(a: float, b: float) -> tuple[str, str]:
    """Two areas (km²) with 4 significant digits, or more (up to 8) until they read differently."""
    for digits in range(4, 9):
        ta, tb = (f"{v:.{digits}g}" if v else "0" for v in (a, b))
        if ta != tb:
            break
    return ta, tb


def _percent(relative: float) -> str:
    """A relative change as a signed percentage: one decimal, two significant digits below 0.1 %."""
    pct = 100 * relative
    return f"{pct:+.1f}%" if abs(pct) >= 0.1 or pct == 0 else f"{pct:+.2g}%"


def _judge(before: shapely.Geometry, made: shapely.Geometry, result: shapely.Geometry, reason: str,
           max_area_change: float) -> tuple[str | None, str | None]:
    """Whether make_valid's ``result`` for ``before`` may be loaded: (why not, None) or (None, change).

    ``made`` is make_valid's own output (before the layer's parts were extracted from it).
    """
    before_id, made_id = int(shapely.get_type_id(before)), int(shapely.get_type_id(made))
    polygonal = before_id == _MULTIPOLYGON
    if (polygonal and made_id not in (_POLYGON, _MULTIPOLYGON)) or (not polygonal and made_id != before_id):
        return (f"make_valid would turn the {_TYPE_NAMES.get(before_id, 'geometry')} into a "
                f"{_TYPE_NAMES.get(made_id, 'geometry')}"), None
    parts_before, parts_after = shapely.get_num_geometries(before), shapely.get_num_geometries(result)
    if parts_before != parts_after:
        noun = "part" if parts_before == 1 else "parts"
        return f"make_valid would turn its {parts_before} {noun} into {parts_after}", None
    change = f"{_problem(reason)} fixed by make_valid"
    if polygonal:
        a, b = _km2(np.array([before, result], dtype=object))
        relative = (b - a) / a if a > 0 else np.inf
        ta, tb = _areas_text(a, b)
        if not abs(relative) <= max_area_change:
            pct = f" ({_percent(relative)})" if np.isfinite(relative) else ""
            return (f"make_valid would change its area from {ta} km² to {tb} km²{pct}, "
                    f"more than the {100 * max_area_change:g}% a repair may change"), None
        change += f": area {ta} km² -> {tb} km² ({_percent(relative)})"
    repeated = shapely.get_num_coordinates(shapely.remove_repeated_points(before)) < shapely.get_num_coordinates(before)
    if repeated:
        change += "; duplicate vertices removed"
    return None, change


def parse_geometries(values: ArrayLike, fmt: Literal["wkb", "wkt"]) -> tuple[NDArray[np.object_], NDArray[np.bool_]]:
    """Geometries from WKB or WKT values, and which rows had a ring the source left open.

    A polygon ring whose last point is not its first (GDAL passes such rings from GeoJSON and KML
    through) is closed by repeating the first point; such rows are True in the returned mask so the
    load report can say "ring closed". Values that cannot be read at all (or None) give None.
    """
    arr = np.asarray(values, dtype=object).ravel()
    parse = shapely.from_wkb if fmt == "wkb" else shapely.from_wkt
    out = np.asarray(parse(arr, on_invalid="ignore"), dtype=object)
    closed = np.zeros(len(arr), dtype=bool)
    retry = np.flatnonzero(~_is_set(out) & _is_set(arr))
    if len(retry):
        again = np.asarray(parse(arr[retry], on_invalid="fix"), dtype=object)
        out[retry] = again
        closed[retry] = _is_set(again)
    return out, closed


def _is_set(values: np.ndarray) -> np.ndarray:
    """A boolean mask: True where the object array holds something other than None."""
    return np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
