"""Tolerances for simplifying lines and areas on screen: metres in a degree, the half pixel of a zoom.

The formulas here are the ones :mod:`services.query.simplify` writes into SQL; they live here, pure,
so that tests and scripts can compute the same tolerance a request was given.
"""

from __future__ import annotations

import math

#: WGS84 semi-major axis (m) and first eccentricity squared.
WGS84_A = 6378137.0
WGS84_E2 = 0.00669437999014

#: Web-map zoom levels a client may ask a simplification for (the levels of common web maps).
MAX_ZOOM = 22

#: Ground size of one pixel at zoom 0 on the equator in WebMercatorQuad (256-pixel tiles, as in
#: Leaflet, OpenLayers and OGC API Tiles): the equator's length over 256.
PIXEL_Z0_M = 2 * math.pi * WGS84_A / 256


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres in one degree of longitude and of latitude at latitude ``lat`` (degrees), on WGS84.

    East: N(φ)·cos φ·π/180 (N the prime vertical radius); north: M(φ)·π/180 (M the meridian radius).
    """
    phi = math.radians(lat)
    w = 1.0 - WGS84_E2 * math.sin(phi) ** 2
    east = math.radians(1.0) * WGS84_A * math.cos(phi) / math.sqrt(w)
    north = math.radians(1.0) * WGS84_A * (1.0 - WGS84_E2) / w**1.5
    return east, north


def half_pixel_m(zoom: int, lat: float) -> float:
    """Half the ground size of a pixel of a 256-pixel-tile web map at ``zoom``, at latitude ``lat`` (m).

    In MapLibre GL (512-pixel tiles) the map's zoom z draws like zoom z + 1 here.
    """
    return PIXEL_Z0_M * math.cos(math.radians(lat)) / 2.0 ** zoom / 2.0
