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
from gis.protection_zones import LAKE_KEYS, RIVER_KEYS, lake_zones, river_zones, zone_parameters

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
    assert lake_zones(intake, "medium", params).keys() == large.keys()


def test_small_lake_with_shoreline(params: dict[str, float]) -> None:
    x0, y0 = TO_M.transform(118.9, 31.45)
    # the lake is the half-plane south of a straight shore 100 m north of the intake
    lake = lonlat(Polygon([(x0 - 5000, y0 - 5000), (x0 + 5000, y0 - 5000), (x0 + 5000, y0 + 100),
                           (x0 - 5000, y0 + 100)]))
    zone = metric(lake_zones(lonlat(Point(x0, y0)), "small", params, lake)["1"])
    _, ymin, _, ymax = zone.bounds
    assert y0 - ymin == pytest.approx(params["r1_small"], abs=1)  # water: 300 m south
    assert ymax - (y0 + 100) == pytest.approx(params["land1_small"], abs=1)  # land: 200 m beyond the shore


def test_bad_lake_size(params: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="size"):
        lake_zones((118.9, 31.45), "huge", params)  # type: ignore[arg-type]
