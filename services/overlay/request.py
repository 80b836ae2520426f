"""An overlay request as a client states it, and its checks: layers, choices, distance, measures, paging."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from layers.catalogue import Field, Layer, UnknownLayer, get_layer
from services.errors import InvalidParameter

PREDICATES = ("intersects", "within", "contains", "within-distance")
OUTPUTS = ("pairs", "left-with-count")
MEASURES = ("area", "length", "distance")
GEOMETRIES = ("left", "right", "intersection", "none")
#: Results larger than this need paging (the API passes its own ``max_limit``).
DEFAULT_CAP = 10_000
#: The largest within-distance accepted, in metres (the region is about 400 km across).
MAX_DISTANCE_M = 100_000.0
MEASURE_COLUMN = {"area": "area_m2", "length": "length_m", "distance": "distance_m"}
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

Filter = Mapping[str, Any] | str | None


@dataclass(frozen=True)
class OverlayRequest:
    """One overlay, as a client states it (names unchecked until :func:`build`)."""

    left: str
    predicate: str
    right: str
    distance_m: float | None = None
    left_filter: Filter = None
    right_filter: Filter = None
    output: str = "pairs"
    measures: tuple[str, ...] = ()
    geometry: str = "left"
    limit: int | None = None
    offset: int = 0


def check(req: OverlayRequest, cap: int | None) -> tuple[Layer, Layer]:
    """Check every part of ``req`` but its filters; return the left and right layers.

    :class:`InvalidParameter` names the argument that is wrong and what is allowed.
    """
    left, right = _layer(req.left, "left"), _layer(req.right, "right")
    _check_choice(req.predicate, PREDICATES, "predicate")
    _check_choice(req.output, OUTPUTS, "output")
    _check_choice(req.geometry, GEOMETRIES, "geometry")
    for m in req.measures:
        _check_choice(m, MEASURES, "measures")
    _check_distance(req)
    _check_measures(req, left, right)
    if req.output == "left-with-count" and req.geometry in ("right", "intersection"):
        raise InvalidParameter(f"`geometry` was {req.geometry!r} but left-with-count output has one feature per "
                               "left feature; use 'left' or 'none'")
    if req.offset < 0:
        raise InvalidParameter(f"`offset` was {req.offset} but is expected to be >= 0")
    if req.limit is not None:
        if req.limit < 1:
            raise InvalidParameter(f"`limit` was {req.limit} but is expected to be >= 1")
        if cap is not None and req.limit > cap:
            raise InvalidParameter(f"`limit` was {req.limit} but is expected to be at most {cap}")
    return left, right


def _layer(name: str, side: str) -> Layer:
    try:
        return get_layer(name)
    except UnknownLayer as exc:
        raise InvalidParameter(f"`{side}`: {str(exc).strip(chr(34))}") from None


def _check_choice(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise InvalidParameter(f"`{name}` was {value!r} but is expected to be one of {list(allowed)}")


def _check_distance(req: OverlayRequest) -> None:
    d = req.distance_m
    if req.predicate != "within-distance":
        if d is not None:
            raise InvalidParameter(f"`distance_m` is only used with predicate 'within-distance', not "
                                   f"{req.predicate!r}")
        return
    if d is None:
        raise InvalidParameter("predicate 'within-distance' needs `distance_m` (metres, >= 0)")
    if not isinstance(d, (int, float)) or math.isnan(d):
        raise InvalidParameter(f"`distance_m` was {d!r} but is expected to be a number of metres")
    if d < 0:
        raise InvalidParameter(f"`distance_m` was {d} but is expected to be >= 0 (metres)")
    if d > MAX_DISTANCE_M:
        raise InvalidParameter(f"`distance_m` was {d} but is expected to be at most {MAX_DISTANCE_M:.0f} m")


def _check_measures(req: OverlayRequest, left: Layer, right: Layer) -> None:
    types = (left.geometry_type, right.geometry_type)
    if "area" in req.measures and types != ("MultiPolygon", "MultiPolygon"):
        raise InvalidParameter(f"measure 'area' needs polygons on both sides, but {left.name} is {types[0]} and "
                               f"{right.name} is {types[1]}")
    if "length" in req.measures and ("LineString" not in types or "Point" in types):
        raise InvalidParameter(f"measure 'length' needs a line on one side and a line or polygon on the other, "
                               f"but {left.name} is {types[0]} and {right.name} is {types[1]}")


def visible(layer: Layer, may_see_restricted: bool) -> tuple[Field, ...]:
    return layer.public_fields(may_see_restricted)
