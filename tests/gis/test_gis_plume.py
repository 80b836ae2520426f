"""Gaussian plume: concentrations against an independent transcription of DESIGN 8.4, zones, placement."""

import math

import numpy as np
import pyproj
import pytest
import shapely

from gis.plume import (
    ThreatZone,
    centreline_concentration,
    concentration,
    place_centreline,
    place_zone,
    sigma_y,
    sigma_z,
    stability_class,
    threat_zone,
)

GEOD = pyproj.Geod(ellps="WGS84")


# Independent transcription of DESIGN 8.4 (scalar math, one branch per class).
def ref_sigmas(x: float, s: str, urban: bool) -> tuple[float, float]:
    if not urban:
        a = {"A": 0.22, "B": 0.16, "C": 0.11, "D": 0.08, "E": 0.06, "F": 0.04}[s]
        sy = a * x / math.sqrt(1 + 0.0001 * x)
        if s == "A":
            sz = 0.20 * x
        elif s == "B":
            sz = 0.12 * x
        elif s == "C":
            sz = 0.08 * x / math.sqrt(1 + 0.0002 * x)
        elif s == "D":
            sz = 0.06 * x / math.sqrt(1 + 0.0015 * x)
        elif s == "E":
            sz = 0.03 * x / (1 + 0.0003 * x)
        else:
            sz = 0.016 * x / (1 + 0.0003 * x)
        return sy, sz
    if s in "AB":
        return 0.32 * x / math.sqrt(1 + 0.0004 * x), 0.24 * x * math.sqrt(1 + 0.001 * x)
    if s == "C":
        return 0.22 * x / math.sqrt(1 + 0.0004 * x), 0.20 * x
    if s == "D":
        return 0.16 * x / math.sqrt(1 + 0.0004 * x), 0.14 * x / math.sqrt(1 + 0.0003 * x)
    return 0.11 * x / math.sqrt(1 + 0.0004 * x), 0.08 * x / math.sqrt(1 + 0.0015 * x)


def ref_conc(q_kg_s, u, x, y, z, s, urban, h):
    sy, sz = ref_sigmas(x, s, urban)
    q_mg = q_kg_s * 1e6
    return (
        q_mg / (2 * math.pi * u * sy * sz)
        * math.exp(-y * y / (2 * sy * sy))
        * (math.exp(-((z - h) ** 2) / (2 * sz * sz)) + math.exp(-((z + h) ** 2) / (2 * sz * sz)))
    )


@pytest.mark.parametrize("s", list("ABCDEF"))
@pytest.mark.parametrize("urban", [False, True])
def test_sigmas_match_design_formulas(s, urban) -> None:
    xs = [10.0, 100.0, 500.0, 2000.0, 10000.0]
    got_y = sigma_y(np.array(xs), s, urban)
    got_z = sigma_z(np.array(xs), s, urban)
    for x, gy, gz in zip(xs, got_y, got_z):
        ry, rz = ref_sigmas(x, s, urban)
        assert gy == pytest.approx(ry, rel=1e-12)
        assert gz == pytest.approx(rz, rel=1e-12)
    assert isinstance(sigma_y(100.0, s, urban), float)


def test_sigma_spot_values_by_hand() -> None:
    # D rural at 1 km: sy = 0.08*1000/sqrt(1.1) = 76.277, sz = 0.06*1000/sqrt(2.5) = 37.947
    assert sigma_y(1000.0, "D") == pytest.approx(76.2770, abs=1e-3)
    assert sigma_z(1000.0, "D") == pytest.approx(37.9473, abs=1e-3)
    # F rural at 1 km: sz = 16/1.3 = 12.3077
    assert sigma_z(1000.0, "F") == pytest.approx(12.3077, abs=1e-3)


@pytest.mark.parametrize(
    "q, u, x, y, z, s, urban, h",
    [
        (1.0, 3.0, 500.0, 0.0, 0.0, "D", False, 0.0),
        (2.5, 1.5, 1200.0, 40.0, 0.0, "F", False, 0.0),
        (0.3, 5.0, 300.0, -25.0, 2.0, "B", True, 0.0),
        (10.0, 4.0, 2000.0, 100.0, 1.5, "C", False, 30.0),
        (1.0, 2.0, 800.0, 0.0, 0.0, "E", True, 10.0),
    ],
)
def test_concentration_against_independent_formula(q, u, x, y, z, s, urban, h) -> None:
    got = concentration(q, u, x, y, z, stability=s, urban=urban, release_height=h)
    assert got == pytest.approx(ref_conc(q, u, x, y, z, s, urban, h), rel=1e-12)
    if y == 0 and z == 0:
        assert centreline_concentration(q, u, x, s, urban, h) == pytest.approx(got, rel=1e-12)


def test_ground_release_centreline_is_q_over_pi_u_sy_sz() -> None:
    sy, sz = ref_sigmas(1000.0, "D", False)
    expected = 1e6 / (math.pi * 3.0 * sy * sz)  # 1 kg/s in mg/s
    assert centreline_concentration(1.0, 3.0, 1000.0, "D") == pytest.approx(expected, rel=1e-12)


def test_upwind_is_zero_and_vectorised() -> None:
    c = centreline_concentration(1.0, 3.0, np.array([-10.0, 0.0, 10.0]), "D")
    assert c[0] == 0.0 and c[1] == 0.0 and c[2] > 0
    grid = concentration(1.0, 3.0, np.array([[100.0], [200.0]]), np.array([0.0, 10.0, 20.0]), stability="D")
    assert grid.shape == (2, 3) and (np.diff(grid, axis=1) < 0).all()


@pytest.mark.parametrize(
    "wind, day, insolation, cloud, expected",
    [
        (1.5, True, "strong", None, "A"),
        (2.5, True, "strong", None, "B"),  # A-B
        (4.0, True, "moderate", None, "C"),  # B-C
        (5.5, True, "moderate", None, "D"),  # C-D
        (7.0, True, "strong", None, "C"),
        (7.0, True, "slight", None, "D"),
        (2.5, False, None, 5, "E"),
        (2.5, False, None, 2, "F"),
        (4.0, False, None, 2, "E"),
        (4.0, False, None, 6, "D"),
        (1.0, False, None, 1, "F"),
        (1.0, True, "strong", 8, "D"),  # overcast
    ],
)
def test_stability_class_table(wind, day, insolation, cloud, expected) -> None:
    assert stability_class(wind, day, insolation, cloud) == expected


def test_stability_class_needs_inputs() -> None:
    with pytest.raises(ValueError):
        stability_class(3.0, True, None)
    with pytest.raises(ValueError):
        stability_class(3.0, False, None, None)
    with pytest.raises(ValueError):
        stability_class(-1.0, True, "strong")


@pytest.mark.parametrize("s, urban", [("D", False), ("F", False), ("B", True), ("E", True)])
def test_far_edge_solves_loc(s, urban) -> None:
    loc = 58.0
    zone = threat_zone(0.5, 2.0, s, loc, urban=urban)
    assert not zone.capped
    c = ref_conc(0.5, 2.0, zone.far_edge_m, 0.0, 0.0, s, urban, 0.0)
    assert c == pytest.approx(loc, rel=1e-3)
    # and the zone ends there
    assert zone.polygon.bounds[2] == pytest.approx(zone.far_edge_m, rel=1e-9)
    assert zone.polygon.bounds[0] == pytest.approx(0.0, abs=1e-9)


def test_zone_half_width_matches_formula_and_polygon_is_valid() -> None:
    zone = threat_zone(1.0, 3.0, "D", 58.0)
    poly = zone.polygon
    assert isinstance(zone, ThreatZone) and poly.is_valid and poly.geom_type == "Polygon"
    # symmetric about the plume axis
    minx, miny, maxx, maxy = poly.bounds
    assert maxy == pytest.approx(-miny, rel=1e-12)
    assert maxy == pytest.approx(zone.max_half_width_m, rel=1e-12)
    # the crosswind edge at x = far/2 is where C(x, y) = LOC
    x = zone.far_edge_m / 2
    section = poly.intersection(shapely.LineString([(x, -1e4), (x, 1e4)]))
    y_edge = section.bounds[3]
    assert ref_conc(1.0, 3.0, x, y_edge, 0.0, "D", False, 0.0) == pytest.approx(58.0, rel=2e-3)
    # a point just inside exceeds the LOC, just outside does not
    assert ref_conc(1.0, 3.0, x, 0.95 * y_edge, 0, "D", False, 0) > 58.0
    assert ref_conc(1.0, 3.0, x, 1.05 * y_edge, 0, "D", False, 0) < 58.0


def test_zone_area_grows_with_release_rate() -> None:
    areas = [threat_zone(q, 3.0, "D", 58.0).area_m2 for q in (0.1, 0.5, 1.0, 5.0)]
    assert all(a < b for a, b in zip(areas, areas[1:]))
    assert threat_zone(1.0, 3.0, "D", 5.8).area_m2 > threat_zone(1.0, 3.0, "D", 58.0).area_m2


def test_zone_capped_at_ten_km_and_low_wind_warning() -> None:
    zone = threat_zone(50.0, 0.8, "F", 5.8)
    assert zone.capped and zone.far_edge_m == 10_000.0
    assert zone.polygon.bounds[2] == pytest.approx(10_000.0)
    assert any("below 1 m/s" in w["en"] and "1 m/s" in w["zh"] for w in zone.warnings)
    assert any("10000 m" in w["en"] and "10000米" in w["zh"] for w in zone.warnings)
    assert {w["code"] for w in zone.warnings} == {"plume-low-wind", "plume-capped"}
    calm_free = threat_zone(1.0, 3.0, "D", 58.0)
    assert calm_free.warnings == () and not calm_free.capped and calm_free.continues_to_m is None


def test_a_capped_zone_says_how_far_it_goes_on() -> None:
    # chlorine 10 kg/s at night (F), 2 m/s: still above end-point 1 (58 mg/m³) at 10 km
    q, u, loc = 10.0, 2.0, 58.0
    zone = threat_zone(q, u, "F", loc)
    assert zone.capped and zone.far_edge_m == 10_000.0 and zone.polygon.bounds[2] == pytest.approx(10_000.0)

    def c(x: float) -> float:
        sy, sz = ref_sigmas(x, "F", False)
        return q * 1e6 / (math.pi * u * sy * sz)

    lo, hi = 10_000.0, 100_000.0  # independent bisection, C decreasing in x
    assert c(lo) > loc > c(hi)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if c(mid) > loc else (lo, mid)
    assert zone.continues_to_m == pytest.approx(lo, rel=1e-9)
    assert any(f"{lo / 1000:.1f}" in w["en"] for w in zone.warnings)
    # end-point 2 stays above 5.8 mg/m³ past the range followed (Briggs' F sigma_z levels off)
    assert threat_zone(q, u, "F", 5.8).continues_to_m == math.inf


def test_centreline_beyond_the_cap_runs_downwind() -> None:
    lon, lat = 118.79, 32.27
    line = place_centreline(10_000.0, 28_000.0, lon, lat, wind_from_deg=270.0)
    az0, _, d0 = GEOD.inv(lon, lat, *line.coords[0])
    az1, _, d1 = GEOD.inv(lon, lat, *line.coords[-1])
    assert d0 == pytest.approx(10_000.0, rel=1e-3) and d1 == pytest.approx(28_000.0, rel=1e-3)
    assert az0 == pytest.approx(90.0, abs=0.2) and az1 == pytest.approx(90.0, abs=0.2)


def test_zone_rejects_bad_inputs() -> None:
    for args in [(0.0, 3.0, "D", 58.0), (1.0, 0.0, "D", 58.0), (1.0, 3.0, "D", -1.0), (1.0, 3.0, "G", 58.0)]:
        with pytest.raises(ValueError):
            threat_zone(*args)


def test_place_zone_wind_from_north_lies_south() -> None:
    lon, lat = 118.78, 32.05
    zone = threat_zone(1.0, 3.0, "D", 58.0)
    placed = place_zone(zone, lon, lat, wind_from_deg=0.0)
    assert placed.is_valid
    minx, miny, maxx, maxy = placed.bounds
    assert maxy == pytest.approx(lat, abs=1e-9)  # the source is the northernmost point
    assert miny < lat - 0.006  # ~760 m south
    tip_lon, tip_lat = min(placed.exterior.coords, key=lambda c: c[1])
    assert GEOD.inv(lon, lat, tip_lon, tip_lat)[2] == pytest.approx(zone.far_edge_m, rel=1e-3)
    assert abs(tip_lon - lon) < 1e-6
    # geodesic area on the ground matches the local-frame area
    area, _ = GEOD.geometry_area_perimeter(placed)
    assert abs(area) == pytest.approx(zone.area_m2, rel=1e-3)


@pytest.mark.parametrize("wind_from, expected_bearing", [(0, 180), (90, 270), (225, 45), (300, 120)])
def test_place_zone_rotation(wind_from, expected_bearing) -> None:
    lon, lat = 118.78, 32.05
    zone = threat_zone(1.0, 3.0, "D", 58.0)
    placed = place_zone(zone.polygon, lon, lat, wind_from)
    centroid = placed.centroid
    az, _, _ = GEOD.inv(lon, lat, centroid.x, centroid.y)
    assert (az - expected_bearing + 180) % 360 - 180 == pytest.approx(0.0, abs=0.5)
