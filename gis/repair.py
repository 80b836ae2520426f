"""Geometry validation and repair for loading a layer (DESIGN 2: etl normalise step).

:func:`repair_geometries` takes a column of shapely geometries and the geometry type its layer
stores ('Point', 'LineString' or 'MultiPolygon') and says, row by row, which geometry to load and
why a row is rejected. Everything is vectorised with shapely 2; Python loops run only over the
(few) rows that are invalid or need their parts sorted out.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

__all__ = ["RepairResult", "repair_geometries", "EXPECTED_TYPES"]

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
    """

    geometries: NDArray[np.object_]
    reasons: list[str | None]
    repaired: NDArray[np.bool_]


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


def repair_geometries(geoms: ArrayLike, expected: ExpectedType) -> RepairResult:
    """Validate and repair a column of geometries for a layer storing ``expected`` geometries.

    Per row, in this order:

    * None -> rejected, "missing geometry"; empty -> rejected, "empty geometry".
    * Lossless promotion: Polygon -> MultiPolygon; a one-part MultiLineString -> LineString; a
      one-part MultiPoint -> Point.
    * A MultiLineString of several parts for a LineString layer is accepted (and flagged repaired)
      only if its parts join end to end, in their own direction, into one line (line_merge with
      directed=True, so a river keeps its flow direction); otherwise rejected.
    * Any other type -> rejected, "geometry is Polygon but layer expects Point".
    * Invalid geometries (shapely.is_valid) are repaired with shapely.make_valid(method='structure')
      and, for MultiPolygon layers, reduced to their polygonal parts; the row is kept (flagged
      repaired) only if the result is a valid, non-empty geometry of the expected type, otherwise
      rejected with e.g. "invalid geometry (Self-intersection[118.1 32.0]) could not be repaired into
      a MultiPolygon". NaN/inf coordinates are invalid and never repairable.

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
            result = _fit(geom, expected_id)
            if result is not None and shapely.is_valid(result):
                out[i], repaired[i] = result, True
            else:
                reasons[i] = f"invalid geometry ({reason}) could not be repaired into a {expected}"

    rejected = np.not_equal(reasons, None)
    out[rejected] = None
    repaired &= ~rejected
    return RepairResult(out, reasons.tolist(), repaired)
