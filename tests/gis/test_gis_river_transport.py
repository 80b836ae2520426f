"""1-D advection-dispersion of a river spill."""

import math

import numpy as np
import pytest

from gis.river_transport import (
    RIVER_CLASSES,
    ReachParameters,
    concentration,
    default_reach_parameters,
    fischer_dispersion,
    leading_edge_time,
    peak,
    tail_time,
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


def test_edge_times_solve_the_edge_equations() -> None:
    u, d = 0.8, 250.0
    x = np.array([100.0, 2_000.0, 50_000.0])
    t_front = leading_edge_time(x, u, d)
    t_back = tail_time(x, u, d)
    np.testing.assert_allclose(u * t_front + 2 * np.sqrt(2 * d * t_front), x, rtol=1e-12)
    np.testing.assert_allclose(u * t_back - 2 * np.sqrt(2 * d * t_back), x, rtol=1e-12)
    assert (t_front < x / u).all() and (t_back > x / u).all()
    # the naive approximation (x - 2 sqrt(2 D x/u)) / u differs noticeably close to the source
    naive = (x[0] - 2 * np.sqrt(2 * d * x[0] / u)) / u
    assert naive < 0 < t_front[0]
    assert isinstance(leading_edge_time(1000.0, 1.0, 10.0), float)
    assert leading_edge_time(1000.0, 1.0, 0.0) == pytest.approx(1000.0)  # no dispersion: pure advection
    with pytest.raises(ValueError):
        tail_time(-1.0, 1.0, 10.0)


def test_default_reach_parameters() -> None:
    y = default_reach_parameters("yangtze-main")
    assert isinstance(y, ReachParameters)
    assert (y.u, y.width, y.depth, y.slope) == (1.0, 1500.0, 15.0, 2e-5)
    assert y.area == 22500.0
    assert y.dispersion == pytest.approx(fischer_dispersion(1.0, 1500.0, 15.0, 2e-5))
    assert set(RIVER_CLASSES) == {"yangtze-main", "major", "minor", "canal"}
    for name in RIVER_CLASSES:
        p = default_reach_parameters(name)
        assert p.u > 0 and p.area > 0 and p.slope > 0 and p.note
    with pytest.raises(ValueError, match="yangtze-main"):
        default_reach_parameters("amazon")
