"""HJ 338-2018 zones derived from an intake: lengths along the river, exclusivity, lake radii."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
import yaml
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon

from gis.crs import LOCAL_METRIC
from gis.protection_zones import (
    LAKE_KEYS,
    RIVER_KEYS,
    GroundwaterRules,
    Hydraulics,
    LakeClasses,
    groundwater_radii,
    groundwater_zones,
    lake_zones,
    river_zones,
    zone_parameters,
)

YAML = Path(__file__).resolve().parents[2] / "layers" / "data" / "hj338_protection_zones.yaml"
TO_M = Transformer.from_crs("EPSG:4326", LOCAL_METRIC, always_xy=True)
TO_LL = Transformer.from_crs(LOCAL_METRIC, "EPSG:4326", always_xy=True)


def metric(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(TO_M.transform(c[:, 0], c[:, 1])))


def lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(TO_LL.transform(c[:, 0], c[:, 1])))


@pytest.fixture(scope="module")
def params() -> dict[str, float]:
    return zone_parameters(yaml.safe_load(YAML.read_text(encoding="utf-8")))


def test_yaml_has_design_values_with_clauses(params: dict[str, float]) -> None:
    doc = yaml.safe_load(YAML.read_text(encoding="utf-8"))
    assert params["up1"] == 1000 and params["down1"] == 100 and params["land1"] == 50
    assert params["up2"] == 2000 and params["down2"] == 200 and params["land2"] == 1000
    assert params["r1_small"] == 300 and params["land1_small"] == 200
    assert params["r1_large"] == 500 and params["r2_large"] == 2000
    for section, keys in (("river", RIVER_KEYS), ("lake", LAKE_KEYS)):
        for key in keys:
            entry = doc[section][key]
            assert entry["clause"].startswith("HJ 338-2018"), key
            assert entry["check"] is True, key
    assert "check" in doc["note"].lower() or doc["status"] == "check"


def test_zone_parameters_rejects_missing_and_negative() -> None:
    doc = yaml.safe_load(YAML.read_text(encoding="utf-8"))
    del doc["river"]["up2"]
    with pytest.raises(ValueError, match="up2"):
        zone_parameters(doc)
    doc = yaml.safe_load(YAML.read_text(encoding="utf-8"))
    doc["lake"]["r1_large"]["value"] = -5
    with pytest.raises(ValueError, match="r1_large"):
        zone_parameters(doc)


def straight_river() -> tuple[LineString, Point]:
    """A 30 km west-to-east river in metres around lon 118.5, lat 32.0; intake 10 m north of it."""
    x0, y0 = TO_M.transform(118.5, 32.0)
    line_m = LineString([(x0 - 20000, y0), (x0 + 10000, y0)])
    return lonlat(line_m), lonlat(Point(x0, y0 + 10))


def length_inside(zone: shapely.Geometry, line_ll: LineString) -> float:
    return metric(line_ll).intersection(metric(zone)).length


def test_river_zone_lengths_along_the_river(params: dict[str, float]) -> None:
    line, intake = straight_river()
    zones = river_zones(intake, line, 400.0, params)
    assert set(zones) == {"1", "2", "quasi"}
    assert length_inside(zones["1"], line) == pytest.approx(params["up1"] + params["down1"], abs=3)
    assert length_inside(zones["2"], line) == pytest.approx(params["up2"] + params["down2"], abs=3)
    assert length_inside(zones["quasi"], line) == pytest.approx(params["up_quasi"], abs=3)
    # upstream is west (the line is digitised west to east): level 1 reaches 1000 m west, 100 m east
    x_intake = metric(intake).x
    xmin, _, xmax, _ = metric(zones["1"]).bounds
    assert x_intake - xmin == pytest.approx(params["up1"], abs=3)
    assert xmax - x_intake == pytest.approx(params["down1"], abs=3)
    qxmin, _, qxmax, _ = metric(zones["quasi"]).bounds
    assert x_intake - qxmax == pytest.approx(params["up1"] + params["up2"], abs=3)
    assert x_intake - qxmin == pytest.approx(params["up1"] + params["up2"] + params["up_quasi"], abs=3)


def test_river_zone_widths_are_river_plus_land(params: dict[str, float]) -> None:
    line, intake = straight_river()
    zones = river_zones(intake, line, 400.0, params)
    _, ymin, _, ymax = metric(zones["1"]).bounds
    assert ymax - ymin == pytest.approx(400 + 2 * params["land1"], abs=2)
    _, ymin2, _, ymax2 = metric(zones["2"]).bounds
    assert ymax2 - ymin2 == pytest.approx(400 + 2 * params["land2"], abs=2)


def test_levels_do_not_overlap_and_level1_holds_intake(params: dict[str, float]) -> None:
    line, intake = straight_river()
    zones = {k: metric(v) for k, v in river_zones(intake, line, 400.0, params).items()}
    assert zones["1"].contains(metric(intake))
    assert zones["1"].intersection(zones["2"]).area < 1.0
    assert zones["quasi"].intersection(zones["2"]).area < 1.0
    assert zones["quasi"].intersection(zones["1"]).area < 1.0
    assert all(z.is_valid for z in zones.values())


def test_bent_river_lengths(params: dict[str, float]) -> None:
    x0, y0 = TO_M.transform(118.5, 32.0)
    # flows south, then turns east at the corner 1500 m upstream of the intake... intake on the east leg
    line_m = LineString([(x0 - 1500, y0 + 8000), (x0 - 1500, y0), (x0 + 5000, y0)])
    line = lonlat(line_m)
    intake = lonlat(Point(x0, y0))
    zones = river_zones(intake, line, 200.0, params)
    assert length_inside(zones["1"], line) == pytest.approx(1100, abs=3)
    assert length_inside(zones["2"], line) == pytest.approx(2200, abs=5)
    assert metric(zones["1"]).intersection(metric(zones["2"])).area < 1.0


def test_zones_are_clipped_at_the_start_of_the_line(params: dict[str, float]) -> None:
    x0, y0 = TO_M.transform(118.5, 32.0)
    line = lonlat(LineString([(x0 - 2000, y0), (x0 + 3000, y0)]))
    zones = river_zones(lonlat(Point(x0, y0)), line, 100.0, params)
    assert "quasi" not in zones
    assert length_inside(zones["2"], line) == pytest.approx(1000 + params["down2"], abs=3)


def test_intake_far_from_river_is_refused(params: dict[str, float]) -> None:
    line, _ = straight_river()
    x0, y0 = TO_M.transform(118.5, 32.0)
    with pytest.raises(ValueError, match="from the river line"):
        river_zones(lonlat(Point(x0, y0 + 900)), line, 400.0, params)


def max_radius(zone: shapely.Geometry, centre: Point) -> float:
    ring = metric(zone)
    pts = shapely.points(shapely.get_coordinates(ring))
    return float(shapely.distance(metric(centre), pts).max())


def test_lake_radii(params: dict[str, float]) -> None:
    intake = Point(118.9, 31.45)
    small = lake_zones(intake, "small", params)
    assert set(small) == {"1"}
    assert max_radius(small["1"], intake) == pytest.approx(params["r1_small"] + params["land1_small"], abs=1)
    large = lake_zones(intake, "large", params)
    assert set(large) == {"1", "2"}
    assert max_radius(large["1"], intake) == pytest.approx(params["r1_large"], abs=1)
    assert max_radius(large["2"], intake) == pytest.approx(params["r1_large"] + params["r2_large"], abs=1)
    assert large["1"].contains(intake) and not large["2"].contains(intake)
    assert metric(large["1"]).intersection(metric(large["2"])).area < 1.0


def test_small_lake_with_shoreline(params: dict[str, float]) -> None:
    x0, y0 = TO_M.transform(118.9, 31.45)
    # the lake is the half-plane south of a straight shore 100 m north of the intake
    lake = lonlat(Polygon([(x0 - 5000, y0 - 5000), (x0 + 5000, y0 - 5000), (x0 + 5000, y0 + 100),
                           (x0 - 5000, y0 + 100)]))
    zone = metric(lake_zones(lonlat(Point(x0, y0)), "small", params, lake)["1"])
    _, ymin, _, ymax = zone.bounds
    assert y0 - ymin == pytest.approx(params["r1_small"], abs=1)  # water: 300 m south
    assert ymax - (y0 + 100) == pytest.approx(params["land1_small"], abs=1)  # land: 200 m beyond the shore


def test_bad_lake_rule(params: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="rule"):
        lake_zones((118.9, 31.45), "huge", params)  # type: ignore[arg-type]
    # a size label is not a rule: a medium water body is small-rule as a reservoir, large-rule as a lake
    with pytest.raises(ValueError, match="rule"):
        lake_zones((118.9, 31.45), "medium", params)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# lake and reservoir size classes (HJ 338-2018 表1): reservoirs by total storage, lakes by area


@pytest.fixture(scope="module")
def classes() -> LakeClasses:
    return LakeClasses.from_doc(yaml.safe_load(YAML.read_text(encoding="utf-8"))["size_classes"])


@pytest.mark.parametrize(("body", "storage", "area", "size", "rule", "radius1", "outer"), [
    # a small reservoir (0.05 x 10^8 m3): 300 m + 200 m land, level 1 only
    ("reservoir", 0.05, None, "small", "small", 500.0, None),
    # a medium reservoir (Chuzhou's Chengxi, 0.5 x 10^8 m3): the same 300 m rule, NOT 500 m + 2000 m
    ("reservoir", 0.5, None, "medium", "small", 500.0, None),
    # a large reservoir (Gangkouwan, 9 x 10^8 m3): 500 m, ring to 2500 m
    ("reservoir", 9.0, None, "large", "large", 500.0, 2500.0),
    # a small lake (Gucheng Lake, ~30 km2): 300 m rule
    ("lake", None, 30.0, "small", "small", 500.0, None),
    # a large lake (Gaoyou Lake, ~660 km2): 500 m + 2000 m
    ("lake", None, 660.0, "large", "large", 500.0, 2500.0),
])
def test_size_classes_decide_the_rule_and_radii(classes: LakeClasses, params: dict[str, float], body: str,
                                                storage: float | None, area: float | None, size: str, rule: str,
                                                radius1: float, outer: float | None) -> None:
    got = classes.size_of(body, storage_1e8_m3=storage, area_km2=area)  # type: ignore[arg-type]
    assert got == size
    assert classes.rule_of(body, got) == rule  # type: ignore[arg-type]
    intake = Point(118.24, 32.30)
    zones = lake_zones(intake, classes.rule_of(body, got), params)  # type: ignore[arg-type]
    # hand-computed: small rule 300 m water + 200 m land = 500 m; large rule 500 m, then 500 + 2000 m
    assert max_radius(zones["1"], intake) == pytest.approx(radius1, abs=1)
    if outer is None:
        assert set(zones) == {"1"}
    else:
        assert max_radius(zones["2"], intake) == pytest.approx(outer, abs=1)


def test_class_bounds(classes: LakeClasses) -> None:
    assert classes.size_of("reservoir", storage_1e8_m3=0.0999) == "small"
    assert classes.size_of("reservoir", storage_1e8_m3=0.1) == "medium"
    assert classes.size_of("reservoir", storage_1e8_m3=0.999) == "medium"
    assert classes.size_of("reservoir", storage_1e8_m3=1.0) == "large"
    assert classes.size_of("lake", area_km2=99.9) == "small"
    assert classes.size_of("lake", area_km2=100.0) == "large"
    assert classes.rule_of("lake", "medium") == "large"  # 大中型湖泊
    assert classes.rule_of("reservoir", "medium") == "small"  # 中型水库
    assert classes.whole_water_of("reservoir", "small") and not classes.whole_water_of("reservoir", "medium")
    with pytest.raises(ValueError, match="storage"):
        classes.size_of("reservoir", area_km2=5.0)
    with pytest.raises(ValueError, match="area"):
        classes.size_of("lake", storage_1e8_m3=5.0)
    with pytest.raises(ValueError, match="water_body_type"):
        classes.size_of("pond", area_km2=1.0)  # type: ignore[arg-type]


def test_small_reservoir_with_shoreline_takes_the_whole_water(params: dict[str, float]) -> None:
    x0, y0 = TO_M.transform(118.24, 32.30)
    # a 2 km x 1 km reservoir with the intake at its centre
    res = lonlat(Polygon([(x0 - 1000, y0 - 500), (x0 + 1000, y0 - 500), (x0 + 1000, y0 + 500), (x0 - 1000, y0 + 500)]))
    whole = {k: metric(v) for k, v in lake_zones(lonlat(Point(x0, y0)), "small", params, res, whole_water=True).items()}
    assert set(whole) == {"1"}
    # the whole water (2 km2) plus a 200 m land strip round it: (2000 + 400) x (1000 + 400) less the
    # corners' squares, plus quarter discs of 200 m
    expected = 2400 * 1400 - 4 * 200 * 200 + np.pi * 200 ** 2
    assert whole["1"].area == pytest.approx(expected, rel=2e-3)
    # a medium reservoir of the same shape: the 300 m disc of water and its land, the rest of the water level 2
    medium = {k: metric(v) for k, v in lake_zones(lonlat(Point(x0, y0)), "small", params, res).items()}
    assert set(medium) == {"1", "2"}
    water1 = np.pi * 300 ** 2
    assert medium["2"].area == pytest.approx(2000 * 1000 - water1, rel=2e-3)


def test_lake_classes_from_a_bad_document() -> None:
    doc = yaml.safe_load(YAML.read_text(encoding="utf-8"))["size_classes"]
    doc["reservoir"]["medium_min"]["value"] = 2.0
    with pytest.raises(ValueError, match="medium_min"):
        LakeClasses.from_doc(doc)
    doc = yaml.safe_load(YAML.read_text(encoding="utf-8"))["size_classes"]
    doc["rule"]["reservoir"]["medium"] = "huge"
    with pytest.raises(ValueError, match=r"rule\.reservoir\.medium"):
        LakeClasses.from_doc(doc)


# --------------------------------------------------------------------------------------------------
# groundwater (wells)


@pytest.fixture(scope="module")
def gw() -> GroundwaterRules:
    return GroundwaterRules.from_doc(yaml.safe_load(YAML.read_text(encoding="utf-8"))["groundwater"])


def test_groundwater_yaml_is_the_table_with_clauses() -> None:
    doc = yaml.safe_load(YAML.read_text(encoding="utf-8"))["groundwater"]
    assert doc["large_yield_m3_per_day"]["value"] == 50000
    assert doc["porous_phreatic_radius_m"]["clause"].startswith("HJ 338-2018")
    for entry in (doc["large_yield_m3_per_day"], doc["alpha"], doc["travel_days"]["1"], doc["travel_days"]["2"],
                  doc["porous_phreatic_radius_m"]):
        assert entry["check"] is True


@pytest.mark.parametrize(("medium", "r1", "r2"), [
    ("fine-sand", 50, 500), ("medium-sand", 100, 1000), ("coarse-sand", 200, 2000), ("gravel", 500, 5000),
    ("pebble", 1000, 10000),
])
def test_porous_phreatic_radii_are_the_table_high_end(gw: GroundwaterRules, medium: str, r1: float, r2: float) -> None:
    assert groundwater_radii(gw, "porous", "phreatic", 8000, medium) == {"1": r1, "2": r2}


def test_porous_confined_has_level1_only(gw: GroundwaterRules) -> None:
    assert groundwater_radii(gw, "porous", "confined", 8000, "medium-sand") == {"1": 100}


def test_formula_radii_for_fissure_and_karst(gw: GroundwaterRules) -> None:
    h = Hydraulics(k_m_per_day=20.0, gradient=0.005, porosity=0.05)
    # R = 1.5 * 20 m/d * 0.005 * T / 0.05: 300 m for T = 100 d, 3000 m for T = 1000 d
    assert groundwater_radii(gw, "karst", "phreatic", 20000, hydraulics=h) == pytest.approx({"1": 300.0, "2": 3000.0})
    assert groundwater_radii(gw, "fissure", "confined", 20000, hydraulics=h) == pytest.approx({"1": 300.0})
    # a porous aquifer with known hydraulics uses the formula, not the table
    assert groundwater_radii(gw, "porous", "phreatic", 20000, "gravel", h) == pytest.approx({"1": 300.0, "2": 3000.0})


def test_groundwater_refusals(gw: GroundwaterRules) -> None:
    with pytest.raises(ValueError, match="numerical"):
        groundwater_radii(gw, "porous", "phreatic", 50000, "gravel")
    with pytest.raises(ValueError, match="hydraulics"):
        groundwater_radii(gw, "karst", "phreatic", 1000)
    with pytest.raises(ValueError, match="medium"):
        groundwater_radii(gw, "porous", "phreatic", 1000)
    with pytest.raises(ValueError, match="aquifer"):
        groundwater_radii(gw, "basalt", "phreatic", 1000, "gravel")
    with pytest.raises(ValueError, match="porosity"):
        Hydraulics(10.0, 0.01, 0.0)


def test_groundwater_zones_are_disc_and_ring(gw: GroundwaterRules) -> None:
    well = Point(118.55, 33.00)
    zones = groundwater_zones(well, groundwater_radii(gw, "porous", "phreatic", 8000, "medium-sand"))
    assert max_radius(zones["1"], well) == pytest.approx(100, abs=0.5)
    assert max_radius(zones["2"], well) == pytest.approx(1000, abs=0.5)
    assert zones["1"].contains(well) and not zones["2"].contains(well)
    assert metric(zones["1"]).area == pytest.approx(np.pi * 100 ** 2, rel=2e-3)
    assert metric(zones["2"]).area == pytest.approx(np.pi * (1000 ** 2 - 100 ** 2), rel=2e-3)


@pytest.mark.parametrize("where", [(87.6, 43.8), (126.6, 45.8), (109.5, 18.3)])  # Urumqi, Harbin, Sanya
def test_zones_are_true_on_the_ground_far_from_the_home_region(params: dict[str, float],
                                                               where: tuple[float, float]) -> None:
    """Zones are drawn in a frame centred on the intake: their sizes hold in metres on the ellipsoid
    (pyproj's Geod) anywhere in China, not only near 118.5 E, where one fixed projection would have
    grown them by up to 15 %."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    discs = groundwater_zones(where, {"1": 100.0, "2": 1000.0})
    area1 = abs(geod.geometry_area_perimeter(discs["1"])[0])
    area2 = abs(geod.geometry_area_perimeter(discs["2"])[0])
    assert area1 == pytest.approx(np.pi * 100.0**2, rel=2e-3)
    assert area2 == pytest.approx(np.pi * (1000.0**2 - 100.0**2), rel=2e-3)
    lake = lake_zones(where, "large", params)
    r1 = params["r1_large"]
    assert abs(geod.geometry_area_perimeter(lake["1"])[0]) == pytest.approx(np.pi * r1**2, rel=2e-3)
    # a straight river flowing north through the intake: level 1 reaches up1 upstream along it
    lon, lat = where
    south = geod.fwd(lon, lat, 180.0, 20_000)[:2]
    north = geod.fwd(lon, lat, 0.0, 20_000)[:2]
    zones = river_zones(where, LineString([south, where, north]), 200.0, params)
    ys = shapely.get_coordinates(zones["1"])[:, 1]
    up = geod.inv(lon, lat, lon, ys.min())[2]
    down = geod.inv(lon, lat, lon, ys.max())[2]
    assert up == pytest.approx(params["up1"], abs=1.0) and down == pytest.approx(params["down1"], abs=1.0)
