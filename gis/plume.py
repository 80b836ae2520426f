"""Air threat zone of a continuous release: a Gaussian plume (DESIGN 8.4).

Model: steady-state Gaussian plume with total ground reflection,

    C(x, y, z) = Q / (2 pi u sy sz) * exp(-y^2 / 2 sy^2)
                 * [exp(-(z - H)^2 / 2 sz^2) + exp(-(z + H)^2 / 2 sz^2)]

with Q the release rate, u the wind speed at release height, H the release height and sy, sz the
Briggs dispersion coefficients of the Pasquill-Gifford stability class, rural (open country) or urban.
Units: Q in kg/s, u in m/s, distances in metres, concentrations in mg/m^3. Upwind (x <= 0) the
concentration is 0.

The threat zone is the ground area where a ground-level release (H = 0) exceeds a level of concern
(LOC, e.g. an HJ 169 toxic end-point): the far edge solves C(x, 0, 0) = LOC, the half-width at x is
sy(x) * sqrt(2 ln(C(x, 0, 0) / LOC)). Like ALOHA, nothing is drawn beyond 10 km by default and
winds below 1 m/s produce a warning; a zone cut there still says how far its centreline stays above
the LOC (``continues_to_m``), so that the places beyond can be named.  Warnings are dicts with a
``code`` and the sentence in Chinese (``zh``) and English (``en``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import LineString, Polygon

from gis.crs import from_metric, metric_crs_for

__all__ = [
    "Stability",
    "sigma_y",
    "sigma_z",
    "centreline_concentration",
    "concentration",
    "stability_class",
    "ThreatZone",
    "threat_zone",
    "place_zone",
    "place_centreline",
]

Stability = Literal["A", "B", "C", "D", "E", "F"]
Insolation = Literal["strong", "moderate", "slight"]

# Briggs (1973) interpolation formulas, as tabulated in Hanna, Briggs & Hosker, "Handbook on
# Atmospheric Diffusion" (1982), Table 4.5; urban ones fitted by Briggs to McElroy & Pooler's
# St. Louis data. Each entry is (c, d, p): sigma = c * x * (1 + d * x) ** p, x in metres.
_RURAL_SY = {s: (a, 0.0001, -0.5) for s, a in zip("ABCDEF", (0.22, 0.16, 0.11, 0.08, 0.06, 0.04))}
_RURAL_SZ = {
    "A": (0.20, 0.0, 1.0),
    "B": (0.12, 0.0, 1.0),
    "C": (0.08, 0.0002, -0.5),
    "D": (0.06, 0.0015, -0.5),
    "E": (0.03, 0.0003, -1.0),
    "F": (0.016, 0.0003, -1.0),
}
_URBAN_SY = {s: (c, 0.0004, -0.5) for s, c in zip("ABCDEF", (0.32, 0.32, 0.22, 0.16, 0.11, 0.11))}
_URBAN_SZ = {
    "A": (0.24, 0.001, 0.5),
    "B": (0.24, 0.001, 0.5),
    "C": (0.20, 0.0, 1.0),
    "D": (0.14, 0.0003, -0.5),
    "E": (0.08, 0.0015, -0.5),
    "F": (0.08, 0.0015, -0.5),
}

# Pasquill-Gifford stability classes (Turner 1970, "Workbook of Atmospheric Dispersion Estimates",
# Table 1). Rows: surface wind speed bands [0,2), [2,3), [3,5), [5,6), [6,inf) m/s. Intermediate
# classes (A-B, B-C, C-D) are resolved to the more stable letter, which gives the longer ground-level
# footprint. Night, wind < 2 m/s is '-' in Turner's table; F, the most stable class modelled, is used.
_WIND_BANDS = (2.0, 3.0, 5.0, 6.0)
_DAY = {
    "strong": ("A", "B", "B", "C", "C"),  # A, A-B, B, C, C
    "moderate": ("B", "B", "C", "D", "D"),  # A-B, B, B-C, C-D, D
    "slight": ("B", "C", "C", "D", "D"),  # B, C, C, D, D
}
_NIGHT = {
    "cloudy": ("F", "E", "D", "D", "D"),  # thinly overcast or >= 4/8 low cloud
    "clear": ("F", "F", "E", "D", "D"),  # <= 3/8 cloud
}

ALOHA_MAX_DISTANCE_M = 10_000.0
MIN_RELIABLE_WIND_M_S = 1.0
#: How far a capped zone's centreline is followed to find where it falls below the LOC (m): Briggs' curves
#: are fitted to about 10 km, and a steady plume farther than 100 km (hours of travel) is not credible.
MAX_CONTINUATION_M = 100_000.0


def _check_stability(stability: str) -> str:
    s = str(stability).upper()
    if s not in _RURAL_SY:
        raise ValueError(f"stability class must be one of A-F, got {stability!r}")
    return s


def _sigma(table: dict[str, tuple[float, float, float]], x: ArrayLike, stability: str) -> Any:
    c, d, p = table[_check_stability(stability)]
    xa = np.asarray(x, dtype=np.float64)
    xp = np.maximum(xa, 0.0)
    out = c * xp * (1.0 + d * xp) ** p
    return float(out) if out.ndim == 0 else out


def sigma_y(x: ArrayLike, stability: Stability, urban: bool = False) -> Any:
    """Briggs horizontal dispersion coefficient sigma_y (m) at downwind distance x (m).

    Vectorised in x; 0 for x <= 0. Rural (open country) by default, urban with ``urban=True``.
    """
    return _sigma(_URBAN_SY if urban else _RURAL_SY, x, stability)


def sigma_z(x: ArrayLike, stability: Stability, urban: bool = False) -> Any:
    """Briggs vertical dispersion coefficient sigma_z (m) at downwind distance x (m); see sigma_y."""
    return _sigma(_URBAN_SZ if urban else _RURAL_SZ, x, stability)


def concentration(
    q_kg_s: float,
    u: float,
    x: ArrayLike,
    y: ArrayLike,
    z: ArrayLike = 0.0,
    *,
    stability: Stability,
    urban: bool = False,
    release_height: float = 0.0,
) -> Any:
    """Concentration (mg/m^3) at (x downwind, y crosswind, z above ground), metres, ground reflection.

    Vectorised with broadcasting over x, y, z; 0 where x <= 0. ``q_kg_s`` is the release rate in
    kg/s, ``u`` the wind speed (m/s, > 0), ``release_height`` H in metres.
    """
    if u <= 0:
        raise ValueError(f"wind speed must be positive, got {u!r}")
    xa, ya, za = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, y, z)))
    sy = np.asarray(sigma_y(xa, stability, urban))
    sz = np.asarray(sigma_z(xa, stability, urban))
    downwind = xa > 0
    sy = np.where(downwind, sy, 1.0)
    sz = np.where(downwind, sz, 1.0)
    h = float(release_height)
    vertical = np.exp(-((za - h) ** 2) / (2 * sz**2)) + np.exp(-((za + h) ** 2) / (2 * sz**2))
    c = q_kg_s * 1e6 / (2 * np.pi * u * sy * sz) * np.exp(-(ya**2) / (2 * sy**2)) * vertical
    c = np.where(downwind, c, 0.0)
    return float(c) if c.ndim == 0 else c


def centreline_concentration(
    q_kg_s: float,
    u: float,
    x: ArrayLike,
    stability: Stability,
    urban: bool = False,
    release_height: float = 0.0,
) -> Any:
    """Ground-level centreline concentration C(x, 0, 0) in mg/m^3; Q/(pi u sy sz) for a ground release.

    Vectorised in x; 0 where x <= 0.
    """
    return concentration(
        q_kg_s, u, x, 0.0, 0.0, stability=stability, urban=urban, release_height=release_height
    )


def stability_class(
    wind_speed: float,
    day: bool,
    insolation: Insolation | None = None,
    cloud_cover_eighths: float | None = None,
) -> Stability:
    """Pasquill-Gifford stability class from surface wind (m/s at 10 m), time of day and sky.

    Turner's table: by day the class follows incoming solar radiation (``insolation`` 'strong',
    'moderate' or 'slight', required by day); by night it follows cloud cover (``cloud_cover_eighths``
    0..8, required by night: >= 4/8 is 'thinly overcast', <= 3/8 is clear). Fully overcast skies
    (8/8), day or night, give D. Intermediate classes resolve to the more stable letter.
    """
    if not np.isfinite(wind_speed) or wind_speed < 0:
        raise ValueError(f"wind speed must be a non-negative number, got {wind_speed!r}")
    if cloud_cover_eighths is not None and not 0 <= cloud_cover_eighths <= 8:
        raise ValueError(f"cloud cover is in eighths, 0..8, got {cloud_cover_eighths!r}")
    band = int(np.searchsorted(_WIND_BANDS, wind_speed, side="right"))
    if cloud_cover_eighths is not None and cloud_cover_eighths >= 8:
        return "D"
    if day:
        if insolation not in _DAY:
            raise ValueError(
                f"by day, insolation must be 'strong', 'moderate' or 'slight', got {insolation!r}"
            )
        return _DAY[insolation][band]  # type: ignore[return-value]
    if cloud_cover_eighths is None:
        raise ValueError("by night, cloud_cover_eighths (0..8) is required")
    sky = "cloudy" if cloud_cover_eighths >= 4 else "clear"
    return _NIGHT[sky][band]  # type: ignore[return-value]


@dataclass(frozen=True)
class ThreatZone:
    """A ground-level threat zone in the local downwind frame (x downwind, y crosswind, metres).

    polygon:          the area where the concentration exceeds ``loc_mg_m3`` (empty if nowhere),
                      with the source at (0, 0).
    far_edge_m:       downwind distance where the centreline concentration falls to the LOC, or
                      the cap (``max_distance_m``) when ``capped``.
    max_half_width_m: the largest crosswind half-width of the zone.
    capped:           True when the concentration still exceeds the LOC at the cap, so the zone is
                      cut there (ALOHA draws nothing beyond 10 km).
    warnings:         for the duty officer (low wind, capped zone, ...): dicts with code, zh, en.
    continues_to_m:   when capped, the distance where the centreline concentration does fall to the
                      LOC (computed, not drawn); inf if beyond MAX_CONTINUATION_M; None when not capped.
    """

    polygon: Polygon
    far_edge_m: float
    max_half_width_m: float
    capped: bool
    warnings: tuple[dict[str, str], ...]
    loc_mg_m3: float
    q_kg_s: float
    wind_speed: float
    stability: Stability
    urban: bool
    continues_to_m: float | None = None

    @property
    def area_m2(self) -> float:
        """Area of the zone in square metres."""
        return float(self.polygon.area)


def _bisect_decreasing(f: Callable[[float], float], lo: float, hi: float, target: float) -> float:
    """x in [lo, hi] with f(x) = target for f decreasing, f(lo) >= target > f(hi); bisects in log x
    until hi/lo - 1 < 1e-12 (so the relative error in x, and in f, is far below 1e-6)."""
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        if f(mid) >= target:
            lo = mid
        else:
            hi = mid
        if hi / lo - 1.0 < 1e-12:
            break
    return 0.5 * (lo + hi)


def threat_zone(
    q_kg_s: float,
    u: float,
    stability: Stability,
    loc_mg_m3: float,
    urban: bool = False,
    max_distance_m: float = ALOHA_MAX_DISTANCE_M,
    samples: int = 200,
) -> ThreatZone:
    """Footprint where a continuous ground-level release of ``q_kg_s`` exceeds ``loc_mg_m3``.

    The far edge solves C(x, 0, 0) = LOC by bisection (the centreline concentration decreases
    monotonically with x); the outline samples the half-width sy * sqrt(2 ln(C/LOC)) at ``samples``
    distances (cosine-spaced, dense near the source and the far edge) on both sides of the axis.
    Beyond ``max_distance_m`` the zone is cut and flagged ``capped``. Winds below 1 m/s add a warning.
    """
    stability = _check_stability(stability)  # type: ignore[assignment]
    if not (q_kg_s > 0 and np.isfinite(q_kg_s)):
        raise ValueError(f"release rate must be a positive number of kg/s, got {q_kg_s!r}")
    if not (u > 0 and np.isfinite(u)):
        raise ValueError(f"wind speed must be a positive number of m/s, got {u!r}")
    if not (loc_mg_m3 > 0 and np.isfinite(loc_mg_m3)):
        raise ValueError(f"level of concern must be a positive number of mg/m3, got {loc_mg_m3!r}")
    if samples < 3 or max_distance_m <= 0:
        raise ValueError("samples must be >= 3 and max_distance_m > 0")

    warnings: list[dict[str, str]] = []
    if u < MIN_RELIABLE_WIND_M_S:
        warnings.append({
            "code": "plume-low-wind",
            "zh": f"风速{u:g} m/s低于1 m/s：近静风时高斯烟羽模型不可靠，威胁区仅供参考",
            "en": f"wind speed {u:g} m/s is below 1 m/s: the Gaussian plume is unreliable in near-calm air; "
                  "treat the zone as indicative only",
        })

    def c_cl(x: float) -> float:
        return float(centreline_concentration(q_kg_s, u, x, stability, urban))

    lo = 0.01
    common = dict(loc_mg_m3=float(loc_mg_m3), q_kg_s=float(q_kg_s), wind_speed=float(u),
                  stability=stability, urban=bool(urban))
    if c_cl(lo) < loc_mg_m3:
        warnings.append({"code": "plume-never-reaches",
                         "zh": f"下风向浓度始终达不到{loc_mg_m3:g} mg/m³",
                         "en": f"the concentration never reaches {loc_mg_m3:g} mg/m3 downwind of the source"})
        return ThreatZone(Polygon(), 0.0, 0.0, False, tuple(warnings), **common)  # type: ignore[arg-type]
    capped = c_cl(max_distance_m) >= loc_mg_m3
    continues_to: float | None = None
    if capped:
        far = float(max_distance_m)
        continues_to = _continuation(c_cl, far, float(loc_mg_m3))
        if np.isfinite(continues_to):
            zh_to, en_to = f"约至{continues_to / 1000:.1f}公里才降到该值以下", f"to about {continues_to / 1000:.1f} km"
        else:
            zh_to = f"超过{MAX_CONTINUATION_M / 1000:.0f}公里仍未降到该值以下（只追踪到{MAX_CONTINUATION_M / 1000:.0f}公里）"
            en_to = f"beyond {MAX_CONTINUATION_M / 1000:.0f} km (followed no farther)"
        warnings.append({
            "code": "plume-capped",
            "zh": f"在{max_distance_m:g}米处浓度仍超过{loc_mg_m3:g} mg/m³：威胁区只画到{max_distance_m:g}米，"
                  f"但沿下风向中心线{zh_to}；其间进入的行政区已列出，标为超出模拟范围",
            "en": f"the concentration still exceeds {loc_mg_m3:g} mg/m3 at {max_distance_m:g} m; the zone is drawn "
                  f"only to {max_distance_m:g} m, but it continues along the downwind centreline {en_to}; "
                  "the jurisdictions it enters there are listed, marked as beyond the modelled range",
        })
    else:
        far = _bisect_decreasing(c_cl, lo, float(max_distance_m), float(loc_mg_m3))

    t = np.linspace(0.0, 1.0, samples)
    x = far * 0.5 * (1.0 - np.cos(np.pi * t))
    conc = np.asarray(centreline_concentration(q_kg_s, u, x[1:], stability, urban))
    ratio = np.maximum(conc / loc_mg_m3, 1.0)
    half = np.zeros_like(x)
    half[1:] = np.asarray(sigma_y(x[1:], stability, urban)) * np.sqrt(2.0 * np.log(ratio))
    if not capped:
        half[-1] = 0.0
    upper = np.column_stack([x, half])
    lower = np.column_stack([x, -half])[::-1]
    if half[-1] == 0.0:
        lower = lower[1:]  # the far tip is shared
    ring = np.vstack([upper, lower[:-1]])  # the source point closes the ring
    polygon = Polygon(ring)
    peak_half = float(half.max())
    return ThreatZone(polygon, far, peak_half, capped, tuple(warnings), **common,  # type: ignore[arg-type]
                      continues_to_m=continues_to)


def _continuation(c_cl: Callable[[float], float], start_m: float, loc: float) -> float:
    """Where the centreline concentration, still above ``loc`` at ``start_m``, falls to it (inf if not
    within MAX_CONTINUATION_M)."""
    hi = start_m
    while c_cl(hi) >= loc:
        if hi >= MAX_CONTINUATION_M:
            return float("inf")
        lo, hi = hi, min(2.0 * hi, MAX_CONTINUATION_M)
    return _bisect_decreasing(c_cl, lo, hi, loc)


def place_centreline(start_m: float, end_m: float, lon: float, lat: float, wind_from_deg: float) -> LineString:
    """The downwind centreline from ``start_m`` to ``end_m`` metres from the source, as a WGS84 line.

    Sampled every kilometre or so in the source's transverse Mercator (like :func:`place_zone`), so
    that the straight local line stays straight on the map.
    """
    n = max(int(np.ceil((end_m - start_m) / 1000.0)), 1) + 1
    line = LineString(np.column_stack([np.linspace(start_m, end_m, n), np.zeros(n)]))
    return place_zone(line, lon, lat, wind_from_deg)


def place_zone(zone: ThreatZone | Polygon | LineString, lon: float, lat: float, wind_from_deg: float) -> Polygon:
    """Put a local-frame zone on the map: a WGS84 (lon, lat) polygon around the source at (lon, lat).

    The local x axis is turned to the downwind bearing (``wind_from_deg`` + 180, clockwise from
    north; wind from the north puts the zone south of the source), y to its left, in a transverse
    Mercator centred on the source (:func:`gis.crs.metric_crs_for`), then unprojected.
    """
    polygon = zone.polygon if isinstance(zone, ThreatZone) else zone
    if polygon.is_empty:
        return Polygon() if isinstance(polygon, Polygon) else polygon
    bearing = np.radians((float(wind_from_deg) + 180.0) % 360.0)
    sin_b, cos_b = np.sin(bearing), np.cos(bearing)

    def rotate(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[Any, Any]:
        return x * sin_b - y * cos_b, x * cos_b + y * sin_b

    metric = shapely.transform(polygon, rotate, interleaved=False)
    return from_metric(np.array([metric], dtype=object), metric_crs_for(lon, lat))[0]
