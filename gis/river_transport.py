"""River spill: 1-D advection-dispersion of an instantaneous release (DESIGN 8.5).

    C(x, t) = M / (A sqrt(4 pi D t)) * exp(-(x - u t)^2 / (4 D t)) * exp(-k t)

M released mass (kg), A wetted cross-section (m^2), D longitudinal dispersion coefficient (m^2/s),
u mean velocity (m/s), k first-order decay rate (1/s), x distance downstream of the release (m),
t time since the release (s). Concentrations are returned in mg/L (1 kg/m^3 = 1000 mg/L).
D defaults to Deng, Singh & Bengtsson's (2001) estimate for natural rivers (:func:`deng_dispersion`);
Fischer's (1975) formula is kept for comparison only: on wide rivers it overestimates D about tenfold.

"Arrival" at a point is a concentration: :func:`threshold_crossings` solves C(x, t) = threshold for
the time the concentration first rises above it and the time it falls back below it, by bisection
on ln C (monotone on either side of the peak) to double precision.  Close to the release the 1-D
(Fickian) solution spreads the cloud faster than any water moves; :data:`MAX_TO_MEAN_VELOCITY`
bounds what it may claim (see :func:`earliest_physical_time`).
Travel along a network of reaches is the caller's sum of per-reach times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "deng_dispersion",
    "fischer_dispersion",
    "concentration",
    "peak",
    "threshold_crossings",
    "earliest_physical_time",
    "MAX_TO_MEAN_VELOCITY",
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
    (m/m, > 0). Vectorised with broadcasting. The formula overestimates D for wide natural rivers
    (B/h >> 100) by up to an order of magnitude (on the Yangtze defaults ~30,000 m^2/s): it is kept
    for comparison, not as the default (see :func:`deng_dispersion`).
    """
    u, b, h, shear = _hydraulics(u, width, depth, slope, g)
    return _out(0.011 * u**2 * b**2 / (h * shear))


def deng_dispersion(
    u: ArrayLike, width: ArrayLike, depth: ArrayLike, slope: ArrayLike, g: float = 9.81
) -> Any:
    """Longitudinal dispersion coefficient of a natural river, Deng, Singh & Bengtsson (2001), m^2/s.

    Deng Z.-Q., Singh V. P., Bengtsson L. (2001), "Longitudinal dispersion coefficient in straight
    rivers", J. Hydraul. Eng. 127(11), 919-927:

        D / (h u*) = 0.15 / (8 eps_t0) * (U / u*)^2 * (B / h)^(5/3)
        eps_t0     = 0.145 + (1 / 3520) * (U / u*) * (B / h)^1.38

    with U the mean velocity, u* = sqrt(g h S) the shear velocity, B the width and h the mean depth
    (eps_t0 is their dimensionless transverse mixing coefficient).  Fitted to natural rivers with
    B/h up to a few hundred; on the Yangtze defaults (U 1 m/s, B 1500 m, h 15 m, S 2e-5) it gives
    about 3,500 m^2/s where Fischer gives 30,000.  Vectorised with broadcasting.  **(check)**: the
    formula as commonly quoted from the paper; its text could not be consulted when this was written.
    """
    u, b, h, shear = _hydraulics(u, width, depth, slope, g)
    ratio_u, ratio_b = u / shear, b / h
    eps_t0 = 0.145 + ratio_u * ratio_b**1.38 / 3520.0
    return _out(h * shear * 0.15 / (8.0 * eps_t0) * ratio_u**2 * ratio_b ** (5.0 / 3.0))


def _hydraulics(u: ArrayLike, width: ArrayLike, depth: ArrayLike, slope: ArrayLike,
                g: float) -> tuple[np.ndarray, ...]:
    """u, B, h as arrays and the shear velocity sqrt(g h S); ValueError unless B, h, S are positive."""
    u, b, h, s = (np.asarray(v, dtype=np.float64) for v in (u, width, depth, slope))
    if np.any(h <= 0) or np.any(s <= 0) or np.any(b <= 0):
        raise ValueError("width, depth and slope must be positive")
    return u, b, h, np.sqrt(g * h * s)


def concentration(
    mass_kg: ArrayLike,
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
    kg_m3 = np.asarray(mass_kg, dtype=np.float64) / (a * np.sqrt(4 * np.pi * d * ts)) * np.exp(exponent)
    return _out(np.where(after, kg_m3 * 1000.0, 0.0))


def peak(
    mass_kg: ArrayLike, area_m2: ArrayLike, D: ArrayLike, u: ArrayLike, x: ArrayLike, k: ArrayLike = 0.0
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


def threshold_crossings(
    mass_kg: ArrayLike,
    area_m2: ArrayLike,
    D: ArrayLike,
    u: ArrayLike,
    x: ArrayLike,
    threshold_mg_l: ArrayLike,
    k: ArrayLike = 0.0,
) -> tuple[Any, Any]:
    """Times (s) the concentration at x first rises above ``threshold_mg_l`` and falls back below it.

    At a fixed x > 0, ln C(t) = ln(M / (A sqrt(4 pi D))) - ln(t)/2 - (x - u t)^2 / (4 D t) - k t rises
    from -inf to its maximum at :func:`peak` and falls to -inf, so each crossing is the single root of
    ln C(t) = ln(threshold) on one side of the peak.  Both are found by bisection in ln t, run until
    the bracket no longer shrinks (double precision).  NaN where the peak does not exceed the
    threshold (or the threshold is NaN).  Vectorised with broadcasting.
    """
    arrays = (np.asarray(w, dtype=np.float64) for w in (mass_kg, area_m2, D, u, x, threshold_mg_l, k))
    broadcast = np.broadcast_arrays(*arrays)
    scalar = broadcast[0].ndim == 0
    m, a, d, v, xa, lim, ka = (np.atleast_1d(w) for w in broadcast)
    if np.any(xa <= 0) or np.any(v <= 0):
        raise ValueError("need x > 0 and u > 0")
    t_peak, c_peak = (np.atleast_1d(w) for w in peak(m, a, d, v, xa, ka))
    hit = np.isfinite(lim) & (lim > 0) & (c_peak > np.where(np.isfinite(lim), lim, np.inf))
    log_lim = np.log(np.where(hit, lim, 1.0))
    log_c0 = np.log(m * 1000.0 / (a * np.sqrt(4.0 * np.pi * d)))

    def above(log_t: np.ndarray) -> np.ndarray:
        t = np.exp(log_t)
        return log_c0 - 0.5 * log_t - (xa - v * t) ** 2 / (4.0 * d * t) - ka * t > log_lim

    log_peak = np.log(np.where(hit, t_peak, 1.0))
    # rising side: below at a time far before the peak, above at the peak
    lo = log_peak - 1.0
    for _ in range(200):
        still = hit & above(lo)
        if not still.any():
            break
        lo = np.where(still, lo - 1.0, lo)
    rise = _bisect(above, lo, log_peak, hit)
    # falling side: above at the peak, below at a time far after it
    hi = log_peak + 1.0
    for _ in range(200):
        still = hit & above(hi)
        if not still.any():
            break
        hi = np.where(still, hi + 1.0, hi)
    fall = _bisect(above, log_peak, hi, hit, rising=False)
    rise, fall = np.where(hit, np.exp(rise), np.nan), np.where(hit, np.exp(fall), np.nan)
    return (float(rise[0]), float(fall[0])) if scalar else (rise, fall)


def _bisect(above: Any, a: np.ndarray, b: np.ndarray, live: np.ndarray, rising: bool = True) -> np.ndarray:
    """The boundary between 'below' and 'above' in [a, b] (ln t): below at a when ``rising``, else at b."""
    a, b = a.copy(), b.copy()
    for _ in range(200):
        mid = 0.5 * (a + b)
        shrinking = live & (mid > a) & (mid < b)
        if not shrinking.any():
            break
        up = above(mid)
        to_b = up if rising else ~up  # the midpoint replaces the end on its side of the root
        b = np.where(shrinking & to_b, mid, b)
        a = np.where(shrinking & ~to_b, mid, a)
    return 0.5 * (a + b)


#: Largest ratio of the fastest point velocity in a river's cross-section to its mean velocity: no
#: dissolved matter travels faster than the fastest water, so nothing reaches x before
#: x / (MAX_TO_MEAN_VELOCITY u).  Chiu C.-L. & Said C. A. A. (1995), "Maximum and mean velocities and
#: entropy in open-channel flow", J. Hydraul. Eng. 121(1), 26-35: U / u_max = phi(M) =
#: e^M / (e^M - 1) - 1/M, about 0.66 (M ~ 2.1) in many natural rivers; 1 / 0.66 = 1.5 (check against
#: velocity surveys of the reach where they exist).
MAX_TO_MEAN_VELOCITY = 1.5


def earliest_physical_time(advective_s: ArrayLike) -> Any:
    """The earliest time (s) anything released can reach a point the mean flow reaches at ``advective_s``.

    A 1-D (Fickian) result earlier than this outruns the fastest water in the channel: the model is
    outside its range there (close to the release, before the cloud has mixed over the section).
    """
    return _out(np.asarray(advective_s, dtype=np.float64) / MAX_TO_MEAN_VELOCITY)


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
        """Deng et al.'s (2001) D for these parameters (m^2/s)."""
        return float(deng_dispersion(self.u, self.width, self.depth, self.slope))


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
