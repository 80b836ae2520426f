"""CRS negotiation for the HTTP interfaces (OGC API Features Part 2), on top of :mod:`gis.crs`.

* :func:`negotiate` turns a ``crs`` / ``bbox-crs`` / ``filter-crs`` value into a :class:`CrsSpec`
  from :data:`gis.crs.SUPPORTED_OUTPUT_CRS`, or raises :class:`InvalidParameter` naming the value and
  the allowed URIs.
* Coordinates follow the CRS's authority axis order, as Part 2 requires: EPSG:4326 and EPSG:4490
  are latitude, longitude; CRS84, EPSG:3857 and the offset systems (GCJ-02, BD-09) are x, y.
* The database stores WGS84 longitude/latitude (DESIGN 4). EPSG codes are produced by PostGIS
  (:func:`output_geometry_sql`); GCJ-02 and BD-09 cannot be, so :func:`needs_python_transform` tells
  the caller to transform the WGS84 geometries in Python with :func:`gis.crs.transform_geometries`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from psycopg import sql
from shapely.geometry.base import BaseGeometry

from gis.crs import CRS84, SUPPORTED_OUTPUT_CRS, CrsSpec, UnknownCRS, parse_crs, transform_geometries
from services.errors import InvalidParameter

__all__ = [
    "CRS84",
    "SUPPORTED_URIS",
    "negotiate",
    "content_crs",
    "needs_python_transform",
    "output_geometry_sql",
    "geojson_decimals",
    "bbox_to_wgs84",
    "geometry_to_wgs84",
    "geometries_from_wgs84",
]

#: URIs of the CRSs offered by every collection, CRS84 (the default) first.
SUPPORTED_URIS: list[str] = [spec.uri for spec in SUPPORTED_OUTPUT_CRS]
_SUPPORTED = {spec.name: spec for spec in SUPPORTED_OUTPUT_CRS}

#: Points added on each side of a bbox before it is moved to WGS84, so that its curved image in
#: WGS84 (GCJ-02, BD-09) is followed to well below a metre.
_DENSIFY = 16


def negotiate(value: str | None, param: str) -> CrsSpec:
    """The supported CRS named by ``value`` (a URI, 'EPSG:n', 'CRS84', 'gcj02', ...); CRS84 when empty.

    Raises :class:`InvalidParameter` when the value is not a CRS or not one of the offered ones.
    """
    if value is None or not value.strip():
        return CRS84
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):  # safe CURIE, e.g. [EPSG:4326]
        text = text[1:-1]
    try:
        spec = parse_crs(text)
    except UnknownCRS:
        spec = None
    if spec is None or spec.name not in _SUPPORTED:
        raise InvalidParameter(f"`{param}` was {_short(value)} but is expected to be one of {SUPPORTED_URIS}")
    return _SUPPORTED[spec.name]


def content_crs(spec: CrsSpec) -> str:
    """The value of the ``Content-Crs`` header for coordinates in ``spec``."""
    return f"<{spec.uri}>"


def needs_python_transform(spec: CrsSpec) -> bool:
    """True for the offset systems (GCJ-02, BD-09), which PostGIS does not know."""
    return spec.offset is not None


def output_geometry_sql(column: sql.Composable, spec: CrsSpec) -> sql.Composable:
    """SQL turning the stored WGS84 lon/lat ``column`` into ``spec``'s coordinates and axis order.

    Only for specs PostGIS can produce (``needs_python_transform(spec)`` is False). EPSG:4490 has
    the coordinates of WGS84 (DESIGN 4), so it only needs the latitude-first axis order.
    """
    if needs_python_transform(spec):
        raise ValueError(f"{spec} is transformed in Python, not in PostGIS")
    if spec.epsg is None or spec.epsg in (4326, 4490):
        return sql.SQL("ST_FlipCoordinates({})").format(column) if spec.axis_latlon else column
    expr = sql.SQL("ST_Transform({}, {})").format(column, sql.Literal(int(spec.epsg)))
    return sql.SQL("ST_FlipCoordinates({})").format(expr) if spec.axis_latlon else expr


def geojson_decimals(spec: CrsSpec) -> int:
    """Decimal digits kept in GeoJSON: about a centimetre either way (degrees or metres)."""
    return 7 if spec.is_geographic else 2


def bbox_to_wgs84(values: Sequence[float], spec: CrsSpec, param: str = "bbox") -> BaseGeometry:
    """A bbox in ``spec`` (its axis order; 4 or 6 numbers) as a WGS84 lon/lat polygon.

    Raises :class:`InvalidParameter` when the numbers are not finite, the box is inverted (this
    server does not support boxes across the antimeridian) or it leaves the CRS's valid range.
    """
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4:
        raise InvalidParameter(
            f"`{param}` had {len(values)} numbers but is expected to have 4 "
            "(minx,miny,maxx,maxy) or 6 (with min and max heights)"
        )
    if not all(math.isfinite(v) for v in values):
        raise InvalidParameter(f"`{param}` was {list(values)} but every number is expected to be finite")
    a0, a1, b0, b1 = values
    if spec.axis_latlon:  # lat, lon order on the wire
        a0, a1, b0, b1 = a1, a0, b1, b0
    if a0 > b0 or a1 > b1:
        raise InvalidParameter(
            f"`{param}` was {list(values)}: the lower corner is expected to come first "
            "and to be below and left of the upper corner (boxes across the "
            "antimeridian are not supported)"
        )
    if spec.is_geographic and (a0 < -180 or b0 > 180 or a1 < -90 or b1 > 90):
        raise InvalidParameter(
            f"`{param}` was {list(values)} but longitudes are expected within "
            "[-180, 180] and latitudes within [-90, 90]"
        )
    box = shapely.box(a0, a1, b0, b1)
    if spec.name == CRS84.name or (spec.epsg in (4326, 4490)):
        return box
    dense = shapely.segmentize(box, max(b0 - a0, b1 - a1, 1e-12) / _DENSIFY) if (b0 > a0 or b1 > a1) else box
    out = transform_geometries(np.array([dense], dtype=object), spec, CRS84)[0]
    return _checked(out, param)


def geometry_to_wgs84(geom: BaseGeometry, spec: CrsSpec, what: str = "filter geometry") -> BaseGeometry:
    """A geometry given in ``spec`` (its axis order) as WGS84 lon/lat; 400 when not finite or out of range."""
    if spec.axis_latlon:
        geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
    if spec.is_geographic:
        xy = shapely.get_coordinates(geom)
        if len(xy) and (np.abs(xy[:, 0]).max() > 180 or np.abs(xy[:, 1]).max() > 90):
            raise InvalidParameter(
                f"the {what} has coordinates outside longitude [-180, 180] / latitude "
                f"[-90, 90] (in {spec.uri}, axis order "
                f"{'lat, lon' if spec.axis_latlon else 'lon, lat'})"
            )
    if spec.name in (CRS84.name, "EPSG:4326", "EPSG:4490"):
        return _checked(geom, what)
    out = transform_geometries(np.array([geom], dtype=object), spec, CRS84)[0]
    return _checked(out, what)


def geometries_from_wgs84(geoms: np.ndarray, spec: CrsSpec) -> np.ndarray:
    """WGS84 lon/lat geometries (an object array) into ``spec``, in its axis order (vectorised)."""
    out = transform_geometries(geoms, CRS84, spec)
    if spec.axis_latlon:
        out = shapely.transform(out, lambda xy: xy[:, ::-1])
    return out


def _checked(geom: BaseGeometry, what: str) -> BaseGeometry:
    xy = shapely.get_coordinates(geom)
    if len(xy) and not np.isfinite(xy).all():
        raise InvalidParameter(
            f"the {what} cannot be expressed in WGS84 (coordinates out of the CRS's range)"
        )
    return geom


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"
