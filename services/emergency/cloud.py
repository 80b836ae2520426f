"""The pollutant cloud along a walk of reaches with different hydraulics (DESIGN 8.5).

Within one uniform reach the cloud is the 1-D advection-dispersion solution of
:mod:`gis.river_transport`.  Across reaches it is composed as follows, and everything at a point is
then computed with that module's functions (no second copy of the formulas):

* **Time**: the cloud's centre reaches a point at the cumulative travel time
  tau = sum of L_j / u_j over the reaches before it plus the part of its own reach (the walk's times).
* **Spread**: what is passed from reach to reach is the cloud's *temporal* variance at a point
  (a cross-section sees the same passage duration on either side of a reach boundary: the flux is
  continuous).  Inside reach j it grows as d(sigma_t^2) = 2 D_j dt / u_j^2.
* **Equivalent uniform reach**: at a point in reach i the cloud is that of a uniform river with the
  *local* velocity u_i and cross-section A_i, the distance x_eq = u_i tau (same travel time), and
  D_eq = u_i^2 sigma_t^2 / (2 tau) (same spread).  In a single uniform reach x_eq = x and D_eq = D, so
  the classic solution is recovered exactly.
* **Mass**: the time integral of the flux u_i A_i C at any point equals the mass reaching it, so the
  1-D solution conserves mass across reaches (with k = 0); where the network branches downstream,
  the mass divides in proportion to the branches' flows (class default u A where no flow is stored).
* **Decay**: e^(-k t) with t the time since the release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gis import river_transport as rt

__all__ = ["Reach", "ReachSpec", "Equivalent", "Points", "Passage", "equivalent", "passages", "chain",
           "concentration"]

#: Closer than this to the release point (m of travel) the 1-D solution is singular; nothing is computed.
MIN_DISTANCE_M = 1.0


@dataclass(frozen=True)
class Reach:
    """One walked reach with the cloud's state where it enters it.

    start_m/end_m and t_start_s/t_end_s are distance and advective time from the release along the
    walk; ``var_t_start`` the cloud's temporal variance (s^2) entering the reach; ``mass_share`` the
    part of the released mass that takes this branch.
    """

    index: int
    parent: int | None
    start_m: float
    end_m: float
    t_start_s: float
    t_end_s: float
    u: float
    area: float
    dispersion: float
    mass_share: float
    var_t_start: float

    def var_t(self, at_m: float) -> float:
        """Temporal variance (s^2) of the cloud at ``at_m`` metres from the release, inside this reach."""
        s = max(at_m - self.start_m, 0.0)
        return self.var_t_start + 2.0 * self.dispersion * s / self.u**3

    def tau(self, at_m: float) -> float:
        """Advective travel time (s) from the release to ``at_m``, inside this reach."""
        return self.t_start_s + max(at_m - self.start_m, 0.0) / self.u


@dataclass(frozen=True)
class ReachSpec:
    """What :func:`chain` needs of one walked reach; ``parent`` is the index of the reach above it."""

    parent: int | None
    start_m: float
    end_m: float
    t_start_s: float
    t_end_s: float
    u: float
    area: float
    dispersion: float
    mass_share: float = 1.0


def chain(specs: list[ReachSpec]) -> list[Reach]:
    """The walked reaches with the cloud's entering variance, each its parent's at the parent's end.

    ``specs`` must list every parent before its children (the walk's order of arrival does).
    """
    out: list[Reach] = []
    for i, sp in enumerate(specs):
        if sp.u <= 0 or sp.area <= 0 or sp.dispersion <= 0:
            raise ValueError(f"reach {i}: velocity, area and dispersion must be positive")
        if sp.parent is not None and not 0 <= sp.parent < i:
            raise ValueError(f"reach {i}: its parent {sp.parent} must be listed before it")
        var0 = 0.0 if sp.parent is None else out[sp.parent].var_t(out[sp.parent].end_m)
        out.append(Reach(i, sp.parent, sp.start_m, sp.end_m, sp.t_start_s, sp.t_end_s, sp.u, sp.area,
                         sp.dispersion, sp.mass_share, var0))
    return out


@dataclass(frozen=True)
class Equivalent:
    """The uniform reach equivalent to the walk up to one point (see the module docstring)."""

    x_m: float
    u: float
    area: float
    dispersion: float
    mass_kg: float
    tau_s: float


def equivalent(reach: Reach, at_m: float, mass_kg: float) -> Equivalent | None:
    """The equivalent uniform reach at ``at_m`` metres from the release (None at the release point)."""
    tau = reach.tau(at_m)
    x_eq = reach.u * tau
    if x_eq < MIN_DISTANCE_M:
        return None
    d_eq = reach.u**2 * reach.var_t(at_m) / (2.0 * tau)
    return Equivalent(x_eq, reach.u, reach.area, d_eq, mass_kg * reach.mass_share, tau)


@dataclass(frozen=True)
class Passage:
    """How the cloud passes a point, seconds after the release: the peak, and the window above a threshold.

    ``rise_s``/``fall_s`` are None when the peak does not exceed the threshold (or there is none).
    """

    peak_s: float
    peak_mg_l: float
    rise_s: float | None
    fall_s: float | None


@dataclass(frozen=True)
class Points:
    """Many equivalent reaches as arrays, for one vectorised evaluation of them all."""

    x_m: np.ndarray
    u: np.ndarray
    area: np.ndarray
    dispersion: np.ndarray
    mass_kg: np.ndarray

    @classmethod
    def of(cls, eqs: list[Equivalent]) -> Points:
        """Stack equivalent reaches into arrays."""
        cols = list(zip(*[(e.x_m, e.u, e.area, e.dispersion, e.mass_kg) for e in eqs])) or [()] * 5
        return cls(*(np.asarray(c, dtype=np.float64) for c in cols))


def passages(p: Points, thresholds_mg_l: np.ndarray | None = None, decay_per_s: float = 0.0) -> list[Passage]:
    """Peak time and value at every point, and when it rises above and falls below its threshold.

    ``thresholds_mg_l[i]`` is point i's threshold (NaN: none).  Everything is solved on the analytic
    solution by :mod:`gis.river_transport` (exact maximum; crossings by root-finding), vectorised.
    """
    n = p.x_m.size
    if n == 0:
        return []
    t_peak, c_peak = (np.atleast_1d(v) for v in rt.peak(p.mass_kg, p.area, p.dispersion, p.u, p.x_m, decay_per_s))
    limits = np.full(n, np.nan) if thresholds_mg_l is None else np.asarray(thresholds_mg_l, dtype=np.float64)
    rise, fall = (np.atleast_1d(v) for v in rt.threshold_crossings(p.mass_kg, p.area, p.dispersion, p.u, p.x_m,
                                                                    limits, decay_per_s))
    return [Passage(float(tp), float(cp), _finite(r), _finite(f)) for tp, cp, r, f in zip(t_peak, c_peak, rise, fall)]


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def concentration(eq: Equivalent, t_s: np.ndarray | float, decay_per_s: float = 0.0) -> np.ndarray | float:
    """Concentration (mg/L) at the point of ``eq`` at time(s) ``t_s`` after the release."""
    return rt.concentration(eq.mass_kg, eq.area, eq.dispersion, eq.u, eq.x_m, t_s, decay_per_s)
