"""River spill: 1-D advection-dispersion of an instantaneous release (DESIGN 8.5).

    C(x, t) = M / (A sqrt(4 pi D t)) * exp(-(x - u t)^2 / (4 D t)) * exp(-k t)

M released mass (kg), A wetted cross-section (m^2), D longitudinal dispersion coefficient (m^2/s),
u mean velocity (m/s), k first-order decay rate (1/s), x distance downstream of the release (m),
t time since the release (s). Concentrations are returned in mg/L (1 kg/m^3 = 1000 mg/L).
D defaults to Fischer's estimate D = 0.011 u^2 B^2 / (h u*), u* = sqrt(g h S).

The cloud's edges are taken at two standard deviations (sigma = sqrt(2 D t)) either side of its
centre u t; the times they pass a point are solved exactly (each is a quadratic in sqrt(t)).
Travel along a network of reaches is the caller's sum of per-reach times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "fischer_dispersion",
    "concentration",
    "peak",
    "leading_edge_time",
    "tail_time",
    "ReachParameters",
    "RIVER_CLASSES",
    "default_reach_parameters",
]


def _out(value: Any) -> Any:
    arr = np.asarray(value, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def fischer_dispersion(
    u: ArrayLike, width: ArrayLike, depth: ArrayLike, slope: ArrayLike, g: float = 9.81
) -> Any:
    """Fischer (1975) longitudinal dispersion coefficient D = 0.011 u^2 B^2 / (h u*), m^2/s.

    u* = sqrt(g h S) is the shear velocity; u mean velocity (m/s), width B (m), depth h (m), slope S
    (m/m, > 0). Vectorised with broadcasting. The formula is known to overestimate D for very wide
    rivers (B/h >> 100) by up to an order of magnitude; it is the default only until measured values
    are loaded.
    """
    u, b, h, s = (np.asarray(v, dtype=np.float64) for v in (u, width, depth, slope))
    if np.any(h <= 0) or np.any(s <= 0) or np.any(b <= 0):
        raise ValueError("width, depth and slope must be positive")
    shear = np.sqrt(g * h * s)
    return _out(0.011 * u**2 * b**2 / (h * shear))


def concentration(
    mass_kg: float,
    area_m2: ArrayLike,
    D: ArrayLike,
    u: ArrayLike,
    x: ArrayLike,
    t: ArrayLike,
    k: ArrayLike = 0.0,
) -> Any:
    """Concentration in mg/L at distance x (m) downstream and time t (s) after the release.

    Vectorised with broadcasting; 0 for t <= 0 (before the release). k is the first-order decay rate
    in 1/s (0 for a conservative substance).
    """
    arrays = (np.asarray(w, dtype=np.float64) for w in (area_m2, D, u, x, t, k))
    a, d, v, xa, ta, ka = np.broadcast_arrays(*arrays)
    if np.any(a <= 0) or np.any(d <= 0):
        raise ValueError("area and dispersion coefficient must be positive")
    after = ta > 0
    ts = np.where(after, ta, 1.0)
    exponent = -((xa - v * ts) ** 2) / (4 * d * ts) - ka * ts
    kg_m3 = mass_kg / (a * np.sqrt(4 * np.pi * d * ts)) * np.exp(exponent)
    return _out(np.where(after, kg_m3 * 1000.0, 0.0))


def peak(
    mass_kg: float, area_m2: ArrayLike, D: ArrayLike, u: ArrayLike, x: ArrayLike, k: ArrayLike = 0.0
) -> tuple[Any, Any]:
    """Time (s) and value (mg/L) of the highest concentration passing distance x.

    Exact maximum of C(x, t) over t: setting dC/dt = 0 gives (u^2 + 4Dk) t^2 + 2 D t - x^2 = 0, so
    t_peak = x^2 / (D + sqrt(D^2 + (u^2 + 4Dk) x^2)), which is slightly earlier than x/u
    (t_peak ~ x/u - D/u^2 for a conservative substance). At x = 0 the peak is (0, inf).
    Vectorised with broadcasting.
    """
    d, v, xa, ka = np.broadcast_arrays(*(np.asarray(w, dtype=np.float64) for w in (D, u, x, k)))
    t_peak = xa**2 / (d + np.sqrt(d**2 + (v**2 + 4 * d * ka) * xa**2))
    at_source = t_peak == 0
    c_peak = np.asarray(concentration(mass_kg, area_m2, d, v, xa, np.where(at_source, 1.0, t_peak), ka))
    c_peak = np.where(at_source, np.inf, c_peak)
    return _out(t_peak), _out(c_peak)


def _edge_terms(x: ArrayLike, u: ArrayLike, D: ArrayLike) -> tuple[np.ndarray, ...]:
    xa, v, d = np.broadcast_arrays(*(np.asarray(w, dtype=np.float64) for w in (x, u, D)))
    if np.any(xa < 0) or np.any(v <= 0) or np.any(d < 0):
        raise ValueError("need x >= 0, u > 0 and D >= 0")
    a = np.sqrt(2 * d)
    root = np.sqrt(a**2 + v * xa)
    return xa, v, a, root


def leading_edge_time(x: ArrayLike, u: ArrayLike, D: ArrayLike) -> Any:
    """Time (s) at which the cloud's front, u t + 2 sqrt(2 D t), reaches x (m, >= 0).

    With s = sqrt(t) the front equation is u s^2 + 2 sqrt(2D) s - x = 0, whose positive root gives
    t = (x / (sqrt(2D + u x) + sqrt(2D)))^2 (exact, written without cancellation). This is earlier
    than the advective time x/u, increasingly so for small x; it is not the approximation
    (x - 2 sqrt(2 D t))/u evaluated at t = x/u. Vectorised.
    """
    xa, v, a, root = _edge_terms(x, u, D)
    return _out((xa / (root + a)) ** 2)


def tail_time(x: ArrayLike, u: ArrayLike, D: ArrayLike) -> Any:
    """Time (s) at which the cloud's back, u t - 2 sqrt(2 D t), has passed x (m, >= 0).

    Positive root of u s^2 - 2 sqrt(2D) s - x = 0 with s = sqrt(t):
    t = ((sqrt(2D + u x) + sqrt(2D)) / u)^2. Between :func:`leading_edge_time` and this time the
    point lies inside the central ~95 % of the cloud. Vectorised.
    """
    xa, v, a, root = _edge_terms(x, u, D)
    return _out(((root + a) / v) ** 2)


@dataclass(frozen=True)
class ReachParameters:
    """Hydraulic defaults of a river class: mean velocity u (m/s), width (m), depth (m), slope (m/m)."""

    river_class: str
    u: float
    width: float
    depth: float
    slope: float
    note: str

    @property
    def area(self) -> float:
        """Wetted cross-section, width x depth (m^2)."""
        return self.width * self.depth

    @property
    def dispersion(self) -> float:
        """Fischer's D for these parameters (m^2/s)."""
        return float(fischer_dispersion(self.u, self.width, self.depth, self.slope))


#: Screening defaults per river class, used for any reach attribute that is missing (DESIGN 8.5).
#: They are typical values for the lower Yangtze plain, not measurements: replace with gauged data.
RIVER_CLASSES: dict[str, ReachParameters] = {
    p.river_class: p
    for p in (
        ReachParameters(
            "yangtze-main", 1.0, 1500.0, 15.0, 2e-5,
            "Yangtze main stem, Wuhu-Zhenjiang reach: ~1 m/s mean velocity, 1-2 km wide, 10-20 m deep, "
            "water-surface slope ~2e-5 (DESIGN 8.5: 1 m/s until measured data is loaded)",
        ),
        ReachParameters(
            "major", 0.5, 150.0, 5.0, 1e-4,
            "large tributary or main stem of a regional river (e.g. Chu He, Qinhuai He, Shuiyang Jiang)",
        ),
        ReachParameters("minor", 0.3, 20.0, 1.5, 5e-4, "small river or stream"),
        ReachParameters(
            "canal", 0.2, 60.0, 3.0, 1e-5,
            "navigation or irrigation canal (e.g. the Grand Canal): wide, flat, slow",
        ),
    )
}


def default_reach_parameters(river_class: str) -> ReachParameters:
    """Documented default hydraulics for 'yangtze-main', 'major', 'minor' or 'canal' (see RIVER_CLASSES).

    Raises ValueError for any other class, naming the allowed ones.
    """
    try:
        return RIVER_CLASSES[river_class]
    except KeyError:
        raise ValueError(f"unknown river class {river_class!r}; use one of {sorted(RIVER_CLASSES)}") from None
