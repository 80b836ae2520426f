"""Coordinate reference systems for the whole project (DESIGN 4, 8.6).

* :func:`parse_crs` turns whatever a client or a file says ('EPSG:4326', 4490, an OGC URI, 'CRS84',
  'GCJ-02', 'bd09', 'EPSG:4549', ...) into a canonical :class:`CrsSpec`, or raises :class:`UnknownCRS`.
* :func:`to_wgs84` / :func:`from_wgs84` / :func:`transform_geometries` move coordinates between any
  two of them, vectorised. WGS84 means longitude, latitude in degrees (x = lon, y = lat) everywhere
  in this module, whatever a CRS's authority axis order is; ``CrsSpec.axis_latlon`` tells the web
  layer when to swap.
* EPSG:4490 (CGCS2000) is treated as equal to WGS84: the two agree to centimetres (DESIGN 4).
  CGCS2000 projected zones (EPSG:4513..4554) are unprojected with pyproj, then treated the same way.
* GCJ-02 and BD-09 are WGS84 longitude/latitude with the offsets of :mod:`gis.chinese_offsets`.
* Metric work uses :data:`LOCAL_METRIC` (a transverse Mercator on GRS80 at 118.5 E for the Nanjing
  metropolitan region) or :func:`metric_crs_for` (a transverse Mercator centred on any point).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError, ProjError

from gis import chinese_offsets as offsets

__all__ = [
    "CrsSpec",
    "UnknownCRS",
    "parse_crs",
    "to_wgs84",
    "from_wgs84",
    "transform_geometries",
    "LOCAL_METRIC",
    "to_metric",
    "from_metric",
    "metric_crs_for",
    "SUPPORTED_OUTPUT_CRS",
    "CRS84",
    "WGS84",
    "CGCS2000",
    "WEB_MERCATOR",
    "GCJ02",
    "BD09",
    "geodesic_distance_m",
    "bearing_deg",
]

Offset = Literal["gcj02", "bd09"]

_OGC_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
_CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_GCJ02_URI = "urn:riskatlas:crs:gcj02"
_BD09_URI = "urn:riskatlas:crs:bd09"


@dataclass(frozen=True)
class CrsSpec:
    """A coordinate reference system as the project names it.

    name:        canonical string: 'OGC:CRS84', 'EPSG:<code>', 'gcj02' or 'bd09'.
    uri:         OGC URI (http://www.opengis.net/def/crs/...) or, for the offset systems, the
                 project URIs 'urn:riskatlas:crs:gcj02' / 'urn:riskatlas:crs:bd09'.
    offset:      None, or the Chinese offset ('gcj02' | 'bd09') applied on top of WGS84 lon/lat.
    epsg:        the EPSG code, or None (CRS84, GCJ-02, BD-09).
    axis_latlon: True when the CRS's authority axis order puts latitude (or northing) first, as for
                 EPSG:4326, EPSG:4490 and EPSG:4549; OGC API Features Part 2 then wants coordinates
                 in that order. False for CRS84, EPSG:3857, UTM and the offset systems (lon, lat).
    """

    name: str
    uri: str
    offset: Offset | None
    epsg: int | None
    axis_latlon: bool

    @property
    def is_geographic(self) -> bool:
        """True when coordinates are longitude/latitude degrees (including GCJ-02 and BD-09)."""
        if self.epsg is None:
            return True
        return bool(_pyproj_crs(self.name).is_geographic)

    def __str__(self) -> str:
        return self.name


class UnknownCRS(ValueError):
    """A CRS value that is not recognised or not supported."""


CRS84 = CrsSpec("OGC:CRS84", _CRS84_URI, None, None, False)
WGS84 = CrsSpec("EPSG:4326", _OGC_EPSG_URI.format(code=4326), None, 4326, True)
CGCS2000 = CrsSpec("EPSG:4490", _OGC_EPSG_URI.format(code=4490), None, 4490, True)
WEB_MERCATOR = CrsSpec("EPSG:3857", _OGC_EPSG_URI.format(code=3857), None, 3857, False)
GCJ02 = CrsSpec("gcj02", _GCJ02_URI, "gcj02", None, False)
BD09 = CrsSpec("bd09", _BD09_URI, "bd09", None, False)

#: CRSs the OGC API offers for output (first is the default, CRS84).
SUPPORTED_OUTPUT_CRS: list[CrsSpec] = [CRS84, WGS84, CGCS2000, WEB_MERCATOR, GCJ02, BD09]

#: Lon/lat CRSs whose coordinates are WGS84 as they stand (no pyproj call needed).
_WGS84_LONLAT = frozenset({"OGC:CRS84", "EPSG:4326", "EPSG:4490"})
#: Datums treated as WGS84 (DESIGN 4): anything else needs a real (non-ballpark) transformation.
_WGS84_LIKE_DATUMS = ("World Geodetic System 1984", "China 2000")

_EXAMPLES = (
    "'EPSG:4326', 4326, 'OGC:CRS84' or 'CRS84', "
    "'http://www.opengis.net/def/crs/OGC/1.3/CRS84', 'http://www.opengis.net/def/crs/EPSG/0/4490', "
    "'EPSG:3857', a projected EPSG code such as 'EPSG:4549' (CGCS2000 GK CM 120E) or 'EPSG:32650' "
    "(UTM 50N), 'gcj02' / 'GCJ-02', 'bd09' / 'BD-09'"
)

_ALIASES: dict[str, CrsSpec] = {}
for _spec, _names in [
    (CRS84, ["crs84", "ogc:crs84", _CRS84_URI, "urn:ogc:def:crs:ogc:1.3:crs84",
             "urn:ogc:def:crs:ogc::crs84", "https://www.opengis.net/def/crs/ogc/1.3/crs84"]),
    (GCJ02, ["gcj02", "gcj-02", "gcj_02", _GCJ02_URI]),
    (BD09, ["bd09", "bd-09", "bd_09", _BD09_URI]),
]:
    for _n in _names:
        _ALIASES[_n.lower()] = _spec

_EPSG_PATTERNS = [
    re.compile(r"^(?:epsg:)?(\d+)$"),
    re.compile(r"^urn:ogc:def:crs:epsg:[\d.]*:(\d+)$"),
    re.compile(r"^https?://www\.opengis\.net/def/crs/epsg/[\d.]+/(\d+)$"),
]


def _unknown(value: object, why: str = "") -> UnknownCRS:
    detail = f" ({why})" if why else ""
    return UnknownCRS(f"unknown or unsupported CRS {value!r}{detail}; allowed are for example {_EXAMPLES}")


@lru_cache(maxsize=256)
def _pyproj_crs(name: str) -> CRS:
    return CRS.from_user_input(name)


@lru_cache(maxsize=512, typed=True)
def parse_crs(value: str | int) -> CrsSpec:
    """Recognise a CRS given as a code, a name or a URI and return its canonical :class:`CrsSpec`.

    Accepted (case-insensitive, surrounding spaces ignored): 'EPSG:<n>', '<n>', an int n,
    'urn:ogc:def:crs:EPSG::<n>', 'http://www.opengis.net/def/crs/EPSG/0/<n>', 'CRS84',
    'OGC:CRS84', the CRS84 URIs, 'gcj02'/'GCJ-02', 'bd09'/'BD-09' and the project URIs
    'urn:riskatlas:crs:gcj02' / 'urn:riskatlas:crs:bd09'. An EPSG code must be a 2-D geographic or
    projected CRS that pyproj knows, on the WGS84 or CGCS2000 datum or with a non-ballpark
    transformation to WGS84 (so Beijing 1954 is accepted only where EPSG has parameters).
    Raises :class:`UnknownCRS` (a ValueError) naming the value and listing allowed examples.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _unknown(value, "expected a string or an integer EPSG code")
    text = str(value).strip().lower()
    if text in _ALIASES:
        return _ALIASES[text]
    for pattern in _EPSG_PATTERNS:
        match = pattern.match(text)
        if match:
            return _epsg_spec(value, int(match.group(1)))
    raise _unknown(value)


def _epsg_spec(value: object, code: int) -> CrsSpec:
    name = f"EPSG:{code}"
    try:
        crs = _pyproj_crs(name)
    except CRSError:
        raise _unknown(value, f"EPSG:{code} is not a CRS known to PROJ") from None
    if not (crs.is_geographic or crs.is_projected) or len(crs.axis_info) != 2:
        raise _unknown(value, f"{crs.name} is not a 2-D geographic or projected CRS")
    geodetic = crs.geodetic_crs
    datum = geodetic.datum.name if geodetic is not None and geodetic.datum is not None else ""
    if not datum.startswith(_WGS84_LIKE_DATUMS):
        try:
            Transformer.from_crs(crs, "EPSG:4326", always_xy=True, allow_ballpark=False)
        except ProjError:
            raise _unknown(value, f"no accurate transformation from {crs.name} to WGS84 is known") from None
    first_axis = crs.axis_info[0].direction.lower()
    return CrsSpec(name, _OGC_EPSG_URI.format(code=code), None, code, first_axis == "north")


@lru_cache(maxsize=256)
def _transformer(src: str, dst: str) -> Transformer:
    """Cached pyproj Transformer (x = easting/longitude first). pyproj >= 3.1 makes these thread-safe."""
    return Transformer.from_crs(_pyproj_crs(src), _pyproj_crs(dst), always_xy=True)


def _floats(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    ax, ay = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return ax, ay, ax.ndim == 0


def _result(x: Any, y: Any, scalar: bool) -> tuple[Any, Any]:
    if scalar:
        return float(x), float(y)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def to_wgs84(x: ArrayLike, y: ArrayLike, crs: CrsSpec) -> tuple[Any, Any]:
    """Coordinates (x = easting/lon, y = northing/lat) in ``crs`` -> WGS84 (lon, lat) degrees.

    Vectorised; floats for scalar input, float64 arrays of the broadcast shape otherwise. CRS84,
    EPSG:4326 and EPSG:4490 are returned as they are; GCJ-02 and BD-09 are inverted to < 1 mm.
    """
    ax, ay, scalar = _floats(x, y)
    if crs.offset == "gcj02":
        return _result(*offsets.gcj02_to_wgs84(ax, ay), scalar)
    if crs.offset == "bd09":
        return _result(*offsets.bd09_to_wgs84(ax, ay), scalar)
    if crs.name in _WGS84_LONLAT:
        return _result(ax.copy(), ay.copy(), scalar)
    return _result(*_transformer(crs.name, "OGC:CRS84").transform(ax, ay), scalar)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, crs: CrsSpec) -> tuple[Any, Any]:
    """WGS84 (lon, lat) degrees -> coordinates in ``crs`` (x = easting/lon, y = northing/lat).

    Vectorised like :func:`to_wgs84`, and its inverse.
    """
    ax, ay, scalar = _floats(lon, lat)
    if crs.offset == "gcj02":
        return _result(*offsets.wgs84_to_gcj02(ax, ay), scalar)
    if crs.offset == "bd09":
        return _result(*offsets.wgs84_to_bd09(ax, ay), scalar)
    if crs.name in _WGS84_LONLAT:
        return _result(ax.copy(), ay.copy(), scalar)
    return _result(*_transformer("OGC:CRS84", crs.name).transform(ax, ay), scalar)


def _coordinate_function(src: CrsSpec, dst: CrsSpec) -> Any:
    if src.offset is None and dst.offset is None and not (
        src.name in _WGS84_LONLAT and dst.name in _WGS84_LONLAT
    ):
        return _transformer(src.name, dst.name).transform

    def via_wgs84(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[Any, Any]:
        return from_wgs84(*to_wgs84(x, y, src), dst)

    return via_wgs84


def transform_geometries(geoms: ArrayLike, src: CrsSpec, dst: CrsSpec) -> NDArray[np.object_]:
    """Reproject an array of shapely geometries from ``src`` to ``dst``; None stays None.

    One vectorised pass over all coordinates (shapely.transform, interleaved=False). The result is
    always 2-D (any Z is dropped, the project stores 2-D). Returns a new object ndarray of the
    input's shape; when ``src == dst`` the geometries are returned unchanged (as an ndarray).
    """
    arr = np.asarray(geoms, dtype=object)
    if src.name == dst.name:
        return arr
    func = _coordinate_function(src, dst)
    return np.asarray(shapely.transform(arr, func, include_z=False, interleaved=False), dtype=object)


#: Metric CRS for the Nanjing metropolitan region: transverse Mercator on GRS80 at 118.5 E (DESIGN 8.6).
LOCAL_METRIC_PROJ = "+proj=tmerc +lat_0=0 +lon_0=118.5 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs"
LOCAL_METRIC: CRS = CRS.from_proj4(LOCAL_METRIC_PROJ)


def metric_crs_for(lon: float, lat: float) -> CRS:
    """A transverse Mercator (WGS84 ellipsoid, metres) centred on (lon, lat): that point maps to (0, 0)
    and grid north there is true north. Scale error stays below 1e-4 within ~90 km of the centre."""
    if not (np.isfinite(lon) and np.isfinite(lat) and -180 <= lon <= 180 and -90 < lat < 90):
        raise ValueError(f"metric_crs_for needs a finite WGS84 lon/lat, got ({lon!r}, {lat!r})")
    return _tmerc(round(float(lon), 9), round(float(lat), 9))


@lru_cache(maxsize=256)
def _tmerc(lon: float, lat: float) -> CRS:
    return CRS.from_proj4(
        f"+proj=tmerc +lat_0={lat!r} +lon_0={lon!r} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    )


def _metric_key(metric_crs: CRS) -> str:
    return metric_crs.to_wkt()


def to_metric(geoms: ArrayLike, metric_crs: CRS = LOCAL_METRIC) -> NDArray[np.object_]:
    """WGS84 lon/lat geometries -> ``metric_crs`` (default :data:`LOCAL_METRIC`), metres, 2-D."""
    func = _transformer("OGC:CRS84", _metric_key(metric_crs)).transform
    arr = np.asarray(geoms, dtype=object)
    return np.asarray(shapely.transform(arr, func, include_z=False, interleaved=False), dtype=object)


def from_metric(geoms: ArrayLike, metric_crs: CRS = LOCAL_METRIC) -> NDArray[np.object_]:
    """Geometries in ``metric_crs`` (default :data:`LOCAL_METRIC`) -> WGS84 lon/lat, 2-D."""
    func = _transformer(_metric_key(metric_crs), "OGC:CRS84").transform
    arr = np.asarray(geoms, dtype=object)
    return np.asarray(shapely.transform(arr, func, include_z=False, interleaved=False), dtype=object)


_GEOD = Geod(ellps="WGS84")


def geodesic_distance_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> Any:
    """Geodesic distance in metres on the WGS84 ellipsoid (Karney's algorithm via pyproj.Geod).

    Vectorised with broadcasting; a float for scalar input.
    """
    a, b, c, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (lon1, lat1, lon2, lat2)))
    _, _, dist = _GEOD.inv(a, b, c, d)
    dist = np.asarray(dist, dtype=np.float64)
    return float(dist) if dist.ndim == 0 else dist


def bearing_deg(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> Any:
    """Initial geodesic bearing from point 1 to point 2, degrees in [0, 360), clockwise from north.

    Vectorised with broadcasting; a float for scalar input. Identical points give 0.
    """
    a, b, c, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (lon1, lat1, lon2, lat2)))
    az, _, dist = _GEOD.inv(a, b, c, d)
    az = np.mod(np.asarray(az, dtype=np.float64), 360.0)
    az = np.where((az >= 360.0) | (np.asarray(dist) == 0.0), 0.0, az)  # -1e-17 % 360 rounds to 360.0
    return float(az) if az.ndim == 0 else az
