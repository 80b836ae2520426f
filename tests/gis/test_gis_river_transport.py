"""1-D advection-dispersion of a river spill."""

import math

import numpy as np
import pytest

from gis.river_transport import (
    MAX_TO_MEAN_VELOCITY,
    RIVER_CLASSES,
    ReachParameters,
    concentration,
    default_reach_parameters,
    deng_dispersion,
    earliest_physical_time,
    fischer_dispersion,
    peak,
    threshold_crossings,
)


def test_fischer_by_hand() -> None:
    # Yangtze defaults: u* = sqrt(9.81 * 15 * 2e-5) = 0.0542494; D = 0.011 * 1 * 1500^2 / (15 * u*)
    u_star = math.sqrt(9.81 * 15 * 2e-5)
    assert u_star == pytest.approx(0.0542494, abs=1e-7)
    expected = 0.011 * 1.0**2 * 1500.0**2 / (15.0 * u_star)
    assert expected == pytest.approx(30414.8, abs=0.5)
    assert fischer_dispersion(1.0, 1500.0, 15.0, 2e-5) == pytest.approx(expected, rel=1e-12)
    # small river: u=0.3, B=20, h=1.5, S=5e-4 -> u* = 0.0857875, D = 0.011*0.09*400/(1.5*u*) = 3.0773
    assert fischer_dispersion(0.3, 20.0, 1.5, 5e-4) == pytest.approx(3.0773, abs=1e-3)
    d = fischer_dispersion(np.array([0.5, 1.0]), 100.0, 4.0, 1e-4)
    assert d.shape == (2,) and d[1] == pytest.approx(4 * d[0])  # D ~ u^2
    with pytest.raises(ValueError):
        fischer_dispersion(1.0, 100.0, 0.0, 1e-4)


def test_concentration_against_formula() -> None:
    m, a, d, u, x, t, k = 1000.0, 500.0, 50.0, 0.8, 3000.0, 3600.0, 1e-5
    gauss = math.exp(-((x - u * t) ** 2) / (4 * d * t))
    expected_kg_m3 = m / (a * math.sqrt(4 * math.pi * d * t)) * gauss * math.exp(-k * t)
    assert concentration(m, a, d, u, x, t, k) == pytest.approx(expected_kg_m3 * 1000.0, rel=1e-12)
    assert concentration(m, a, d, u, x, 0.0) == 0.0
    assert concentration(m, a, d, u, x, -5.0) == 0.0


def test_peak_arrives_about_x_over_u() -> None:
    m, a, d, u = 1000.0, 2000.0, 30.0, 1.0
    x = np.array([5_000.0, 20_000.0, 60_000.0])
    t_peak, c_peak = peak(m, a, d, u, x)
    np.testing.assert_allclose(t_peak, x / u, rtol=1e-2)
    np.testing.assert_allclose(t_peak, x / u - d / u**2, atol=1.0)  # the first-order correction
    # the classic approximation C_peak ~ M / (A sqrt(4 pi D x/u)), in mg/L
    approx = m / (a * np.sqrt(4 * np.pi * d * x / u)) * 1000.0
    np.testing.assert_allclose(c_peak, approx, rtol=1e-2)


def test_peak_is_the_true_maximum() -> None:
    m, a, d, u, x, k = 500.0, 300.0, 400.0, 0.5, 8000.0, 2e-5
    t_peak, c_peak = peak(m, a, d, u, x, k)
    ts = np.linspace(0.5 * t_peak, 1.5 * t_peak, 200001)
    cs = concentration(m, a, d, u, x, ts, k)
    assert c_peak == pytest.approx(cs.max(), rel=1e-9)
    assert t_peak == pytest.approx(ts[cs.argmax()], abs=2 * (ts[1] - ts[0]))
    assert t_peak < x / u  # dispersion and decay both bring the peak forward
    assert peak(m, a, d, u, 0.0) == (0.0, math.inf)


@pytest.mark.parametrize("k", [0.0, 5e-5])
def test_mass_conservation(k) -> None:
    m, a, d, u, t = 2000.0, 800.0, 120.0, 0.7, 7200.0
    sigma = math.sqrt(2 * d * t)
    x = np.linspace(u * t - 12 * sigma, u * t + 12 * sigma, 20001)
    c_mg_l = concentration(m, a, d, u, x, t, k)
    mass = np.trapezoid(c_mg_l * 1e-3 * a, x)  # mg/L -> kg/m^3, times area, along x
    assert mass == pytest.approx(m * math.exp(-k * t), rel=5e-3)
    assert mass == pytest.approx(m * math.exp(-k * t), rel=1e-6)  # in fact far better than required


def _deng_by_hand(u: float, b: float, h: float, slope: float) -> float:
    """Deng, Singh & Bengtsson (2001), J. Hydraul. Eng. 127(11), written out again here."""
    u_star = math.sqrt(9.81 * h * slope)
    eps_t0 = 0.145 + (1 / 3520) * (u / u_star) * (b / h) ** 1.38
    return h * u_star * 0.15 / (8 * eps_t0) * (u / u_star) ** 2 * (b / h) ** (5 / 3)


def test_deng_dispersion_by_hand_and_far_below_fischer_on_the_yangtze() -> None:
    # Yangtze defaults: u* = 0.0542494, U/u* = 18.4334, B/h = 100: eps_t0 = 0.145 + 18.4334 * 100^1.38 / 3520
    u_star = math.sqrt(9.81 * 15 * 2e-5)
    eps = 0.145 + (1.0 / u_star) * 100**1.38 / 3520
    assert eps == pytest.approx(3.1578, abs=1e-3)
    expected = 15 * u_star * 0.15 / (8 * eps) * (1.0 / u_star) ** 2 * 100 ** (5 / 3)
    assert expected == pytest.approx(_deng_by_hand(1.0, 1500.0, 15.0, 2e-5), rel=1e-12)
    assert deng_dispersion(1.0, 1500.0, 15.0, 2e-5) == pytest.approx(expected, rel=1e-12)
    assert 3000 < expected < 4000  # about 3,500 m²/s, where Fischer gives 30,000
    assert fischer_dispersion(1.0, 1500.0, 15.0, 2e-5) / expected > 8
    for u, b, h, s in [(0.3, 20.0, 1.5, 5e-4), (0.5, 150.0, 5.0, 1e-4), (2.0, 400.0, 3.0, 3e-4)]:
        assert deng_dispersion(u, b, h, s) == pytest.approx(_deng_by_hand(u, b, h, s), rel=1e-12)
    d = deng_dispersion(np.array([0.5, 1.0]), 100.0, 4.0, 1e-4)
    assert d.shape == (2,)
    with pytest.raises(ValueError):
        deng_dispersion(1.0, 100.0, 4.0, 0.0)


def _c_by_hand(m: float, a: float, d: float, u: float, x: float, t: float, k: float) -> float:
    """C(x, t) in mg/L written out again, in plain floats."""
    return m / (a * math.sqrt(4 * math.pi * d * t)) * math.exp(-((x - u * t) ** 2) / (4 * d * t) - k * t) * 1000


def _root_by_hand(f, lo: float, hi: float) -> float:
    """Plain bisection on the sign of f, 200 halvings (f(lo) and f(hi) of opposite sign)."""
    f_lo = f(lo)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if (f(mid) > 0) == (f_lo > 0):
            lo, f_lo = mid, f(mid)
        else:
            hi = mid
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("m, a, d, u, x, lim, k", [
    (10_000.0, 22_500.0, 3536.0, 1.0, 16_000.0, 0.01, 0.0),  # 10 t of benzene on the Yangtze, at Nanjing
    (1_000.0, 400.0, 5.0, 0.5, 20_000.0, 0.2, 0.0),
    (500.0, 300.0, 400.0, 0.5, 8_000.0, 0.05, 2e-5),
    (50.0, 1000.0, 50.0, 0.8, 60_000.0, 1e-4, 1e-6),
])
def test_threshold_crossings_against_an_independent_root(m, a, d, u, x, lim, k) -> None:
    rise, fall = threshold_crossings(m, a, d, u, x, lim, k)
    # independently: the peak by dense sampling, then a root of C - limit on either side of it
    ts = np.linspace(1.0, 20 * x / u, 400_001)
    cs = np.array([_c_by_hand(m, a, d, u, x, t, k) for t in ts[::100]])
    t_max = float(ts[::100][cs.argmax()])
    assert cs.max() > lim

    def g(t: float) -> float:
        return _c_by_hand(m, a, d, u, x, t, k) - lim

    lo = t_max
    while g(lo) > 0:
        lo /= 2
    hi = t_max
    while g(hi) > 0:
        hi *= 2
    assert rise == pytest.approx(_root_by_hand(g, lo, t_max), rel=1e-9)
    assert fall == pytest.approx(_root_by_hand(g, t_max, hi), rel=1e-9)
    assert rise < peak(m, a, d, u, x, k)[0] < fall
    assert concentration(m, a, d, u, x, rise, k) == pytest.approx(lim, rel=1e-9)
    assert concentration(m, a, d, u, x, fall, k) == pytest.approx(lim, rel=1e-9)


def test_threshold_never_reached_and_vectorised() -> None:
    rise, fall = threshold_crossings(1.0, 22_500.0, 3536.0, 1.0, np.array([16_000.0, 50_000.0]), [10.0, 1e-7])
    assert math.isnan(rise[0]) and math.isnan(fall[0])  # the peak stays below 10 mg/L
    assert rise[1] < 50_000.0 < fall[1]
    rise, fall = threshold_crossings(1.0, 10.0, 1.0, 1.0, 100.0, float("nan"))
    assert math.isnan(rise) and math.isnan(fall)
    with pytest.raises(ValueError):
        threshold_crossings(1.0, 10.0, 1.0, 1.0, 0.0, 1.0)


def test_nothing_outruns_the_fastest_water() -> None:
    # Chiu & Said (1995): U / u_max = e^M / (e^M - 1) - 1/M, about 0.66 for M = 2.1
    phi = math.exp(2.1) / (math.exp(2.1) - 1) - 1 / 2.1
    assert 1 / phi == pytest.approx(MAX_TO_MEAN_VELOCITY, rel=0.02)
    assert earliest_physical_time(16_000.0) == pytest.approx(16_000.0 / MAX_TO_MEAN_VELOCITY)
    # Fischer's D on the Yangtze: the threshold is crossed at Nanjing long before any water could arrive
    rise, _ = threshold_crossings(50_000.0, 22_500.0, fischer_dispersion(1.0, 1500.0, 15.0, 2e-5), 1.0, 16_000.0,
                                  0.01)
    assert rise < 0.5 * earliest_physical_time(16_000.0)


def test_default_reach_parameters() -> None:
    y = default_reach_parameters("yangtze-main")
    assert isinstance(y, ReachParameters)
    assert (y.u, y.width, y.depth, y.slope) == (1.0, 1500.0, 15.0, 2e-5)
    assert y.area == 22500.0
    assert y.dispersion == pytest.approx(_deng_by_hand(1.0, 1500.0, 15.0, 2e-5), rel=1e-12)
    assert set(RIVER_CLASSES) == {"yangtze-main", "major", "minor", "canal"}
    for name in RIVER_CLASSES:
        p = default_reach_parameters(name)
        assert p.u > 0 and p.area > 0 and p.slope > 0 and p.note
    with pytest.raises(ValueError, match="yangtze-main"):
        default_reach_parameters("amazon")
