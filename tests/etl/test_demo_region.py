"""The synthetic demo region: counts, labels, determinism, the river network, placement, the CSV."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import geometry_mask
from shapely.geometry import Point, shape

from etl.sources.boundaries import CREDIT, region_boundaries
from etl.sources.demo import CSV_HEADER, DEFAULT_SEED, write_demo_files
from gis.chinese_offsets import gcj02_to_wgs84
from gis.crs import LOCAL_METRIC, metric_crs_for, to_metric
from layers.catalogue import LAYERS

GEOJSON_LAYERS = {
    "river.geojson": "river",
    "water_reserve.geojson": "water_reserve",
    "protection_zone.geojson": "protection_zone",
    "protected_area.geojson": "protected_area",
    "monitoring_station.geojson": "monitoring_station",
    "risk_source.geojson": "risk_source",
}
TO_M = Transformer.from_crs("EPSG:4326", LOCAL_METRIC, always_xy=True)
SOURCE = f"riskatlas synthetic demo (seed {DEFAULT_SEED})"


def metric(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(TO_M.transform(c[:, 0], c[:, 1])))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("demo")
    t0 = time.perf_counter()
    manifest = write_demo_files(out)
    seconds = time.perf_counter() - t0
    features = {
        layer: json.loads((out / name).read_text(encoding="utf-8"))["features"]
        for name, layer in GEOJSON_LAYERS.items()
    }
    raw = (out / "risk_source_chuzhou.csv").read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("gb18030"))))
    return {"dir": out, "manifest": manifest, "seconds": seconds, "features": features, "csv": rows}


@pytest.fixture(scope="module")
def region() -> dict[str, Any]:
    gdf = region_boundaries()
    counties = gdf[gdf["level"] == "county"]
    owner = {c: ("320400" if c in ("320413", "320481") else p) for c, p in zip(counties["code"], counties["parent_code"])}
    return {"gdf": gdf, "counties": counties, "owner": owner}


def county_of(region: dict[str, Any], lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    out = np.full(len(lon), "", dtype=object)
    for code, poly in zip(region["counties"]["code"], region["counties"].geometry):
        out[(out == "") & shapely.contains_xy(poly, lon, lat)] = code
    return out


def points(features: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    xy = np.array([f["geometry"]["coordinates"] for f in features], dtype=float)
    return xy[:, 0], xy[:, 1]


def test_runs_quickly(demo: dict[str, Any]) -> None:
    assert demo["seconds"] < 20.0


def test_counts_meet_minimums(demo: dict[str, Any]) -> None:
    f = demo["features"]
    assert len(f["river"]) >= 30
    assert len(f["water_reserve"]) >= 20
    assert len(f["protected_area"]) >= 20
    assert len(f["monitoring_station"]) >= 30
    assert len(f["protection_zone"]) >= 2 * len(f["water_reserve"])
    csv_rows = len(demo["csv"]) - 1
    assert len(f["risk_source"]) + csv_rows == 2400
    assert csv_rows >= 100
    counts = demo["manifest"].counts
    assert counts["risk_source"] == 2400 and counts["risk_source_chuzhou_csv"] == csv_rows
    for layer in GEOJSON_LAYERS.values():
        assert counts[layer] == len(f[layer]) or layer == "risk_source"
    kinds = {s["properties"]["kind"] for s in f["monitoring_station"]}
    assert kinds == {"air-quality", "national-section", "cross-border-section", "automatic-water"}
    air_cities = {s["properties"]["owner_city"] for s in f["monitoring_station"] if s["properties"]["medium"] == "air"}
    assert air_cities == {"320100", "321100", "321000", "320800", "340200", "340500", "341100", "341800", "320400"}
    reserve_cities = {r["properties"]["owner_city"] for r in f["water_reserve"]}
    assert len(reserve_cities) == 9


def test_every_feature_is_labelled_synthetic(demo: dict[str, Any]) -> None:
    for layer, feats in demo["features"].items():
        for feat in feats:
            assert feat["properties"]["synthetic"] is True, layer
            assert feat["properties"]["source"] == SOURCE, layer
    assert all(row[1].endswith("（合成）") for row in demo["csv"][1:])
    doc = json.loads((demo["dir"] / "demo_manifest.json").read_text(encoding="utf-8"))
    assert doc["synthetic"] is True and doc["seed"] == DEFAULT_SEED and doc["boundary_credit"] == CREDIT
    with rasterio.open(demo["dir"] / "population.tif") as ds:
        assert ds.tags()["synthetic"] == "true"


def test_properties_are_catalogue_fields_with_valid_values(demo: dict[str, Any]) -> None:
    for layer_name, feats in demo["features"].items():
        layer = LAYERS[layer_name]
        allowed = {f.name for f in layer.input_fields}
        for feat in feats:
            props = feat["properties"]
            assert set(props) <= allowed, (layer_name, set(props) - allowed)
            for fld in layer.fields:
                value = props.get(fld.name)
                if fld.required:
                    assert value not in (None, ""), (layer_name, fld.name)
                if fld.domain and value is not None:
                    assert value in fld.domain, (layer_name, fld.name, value)
            assert feat["geometry"]["type"] == layer.geometry_type
    keys = [f["properties"]["key"] for feats in demo["features"].values() for f in feats]
    keys += [row[0] for row in demo["csv"][1:]]
    assert len(keys) == len(set(keys))


def test_substances_and_scores(demo: dict[str, Any]) -> None:
    for feat in demo["features"]["risk_source"]:
        p = feat["properties"]
        assert 1 <= len(p["substances"]) <= 4
        for s in p["substances"]:
            assert set(s) == {"name", "cas", "quantity_t"}
            assert s["quantity_t"] > 0
        for m in ("m_air", "m_water"):  # HJ 941 scores M for each medium
            assert isinstance(p[m], int) and 0 <= p[m] <= 100
        assert "m_score" not in p
        assert p["key"].startswith(f"RS-{p['owner_city']}-")
    statuses = [f["properties"]["status"] for f in demo["features"]["risk_source"]]
    assert statuses.count("active") / len(statuses) > 0.8


def test_same_seed_same_bytes(demo: dict[str, Any], tmp_path: Path) -> None:
    write_demo_files(tmp_path, seed=DEFAULT_SEED)
    for name in list(GEOJSON_LAYERS) + ["risk_source_chuzhou.csv", "population.tif", "demo_manifest.json"]:
        assert (tmp_path / name).read_bytes() == (demo["dir"] / name).read_bytes(), name


def test_other_seed_other_sources(demo: dict[str, Any], tmp_path: Path) -> None:
    manifest = write_demo_files(tmp_path, seed=7, n_sources=300)
    assert manifest.counts["risk_source"] == 300
    assert (tmp_path / "risk_source.geojson").read_bytes() != (demo["dir"] / "risk_source.geojson").read_bytes()
    first = json.loads((tmp_path / "river.geojson").read_text(encoding="utf-8"))["features"][0]
    assert first["properties"]["source"] == "riskatlas synthetic demo (seed 7)"


def network(demo: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[tuple, list[int]], dict[tuple, list[int]]]:
    reaches = demo["features"]["river"]
    starts: dict[tuple, list[int]] = defaultdict(list)
    ends: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(reaches):
        coords = r["geometry"]["coordinates"]
        starts[tuple(coords[0])].append(i)
        ends[tuple(coords[-1])].append(i)
    return reaches, starts, ends


def test_river_network_connected_without_cycles(demo: dict[str, Any]) -> None:
    reaches, starts, ends = network(demo)
    n = len(reaches)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    downstream = {i: starts.get(tuple(r["geometry"]["coordinates"][-1]), []) for i, r in enumerate(reaches)}
    for i, nxt in downstream.items():
        for j in nxt:
            parent[find(i)] = find(j)
    assert len({find(i) for i in range(n)}) == 1
    indegree = {i: 0 for i in range(n)}
    for nxt in downstream.values():
        for j in nxt:
            indegree[j] += 1
    queue = [i for i, d in indegree.items() if d == 0]
    seen = 0
    while queue:
        i = queue.pop()
        seen += 1
        for j in downstream[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                queue.append(j)
    assert seen == n  # a topological order exists: no cycle
    outlets = [i for i, nxt in downstream.items() if not nxt]
    assert {reaches[i]["properties"]["key"].rsplit("-", 1)[0] for i in outlets} <= {"yangtze", "grand-canal-south"}


def test_junctions_split_the_receiving_river(demo: dict[str, Any]) -> None:
    reaches, starts, ends = network(demo)
    mouths = 0
    for r in reaches:
        end = tuple(r["geometry"]["coordinates"][-1])
        river = r["properties"]["key"].rsplit("-", 1)[0]
        others_ending = [j for j in ends[end] if reaches[j]["properties"]["key"].rsplit("-", 1)[0] != river]
        continuing = [j for j in starts.get(end, []) if reaches[j]["properties"]["key"].rsplit("-", 1)[0] != river]
        same_river_next = [j for j in starts.get(end, []) if reaches[j]["properties"]["key"].rsplit("-", 1)[0] == river]
        if not same_river_next and continuing:  # a mouth
            mouths += 1
            into = {reaches[j]["properties"]["key"].rsplit("-", 1)[0] for j in continuing}
            if into != {"huai-to-yangtze"}:  # the Huai continues as the Huai-to-Yangtze channel
                assert others_ending, r["properties"]["key"]
    assert mouths >= 8


def test_chu_flows_into_the_yangtze(demo: dict[str, Any]) -> None:
    reaches, starts, _ = network(demo)
    by_key = {r["properties"]["key"]: i for i, r in enumerate(reaches)}
    i = by_key["chu-01"]
    path = []
    for _ in range(len(reaches)):
        path.append(reaches[i]["properties"]["key"])
        nxt = starts.get(tuple(reaches[i]["geometry"]["coordinates"][-1]), [])
        if not nxt:
            break
        i = nxt[0]
    chu = [k for k in path if k.startswith("chu-")]
    assert chu == sorted(chu) and len(chu) >= 3
    assert path[len(chu)].startswith("yangtze-")
    yangtze = shapely.union_all([shape(r["geometry"]) for r in reaches if r["properties"]["name"] == "长江"])
    first = shape(reaches[by_key["chu-01"]]["geometry"]).coords[0]
    last = shape(reaches[by_key[chu[-1]]]["geometry"]).coords[-1]
    assert metric(yangtze).distance(metric(Point(last))) < 1.0
    assert metric(yangtze).distance(metric(Point(first))) > 50_000.0
    # the Chu comes from Chuzhou (Anhui) and reaches the Yangtze in Nanjing
    assert reaches[by_key["chu-01"]]["properties"]["owner_city"] == "341100"
    assert reaches[by_key[chu[-1]]]["properties"]["owner_city"] == "320100"


def test_reaches_mostly_in_their_city(demo: dict[str, Any], region: dict[str, Any]) -> None:
    counties = region["counties"]
    cities: dict[str, shapely.Geometry] = {}
    for city in set(region["owner"].values()):
        members = [g for c, g in zip(counties["code"], counties.geometry) if region["owner"][c] == city]
        cities[city] = metric(shapely.union_all(members))
    for r in demo["features"]["river"]:
        line = metric(shape(r["geometry"]))
        assert 1_000.0 <= line.length <= 30_100.0, r["properties"]["key"]
        inside = line.intersection(cities[r["properties"]["owner_city"]]).length / line.length
        assert inside > 0.5, r["properties"]["key"]


def test_points_inside_region_counties(demo: dict[str, Any], region: dict[str, Any]) -> None:
    for layer in ("risk_source", "water_reserve", "monitoring_station"):
        lon, lat = points(demo["features"][layer])
        assert (county_of(region, lon, lat) != "").all(), layer
    rows = demo["csv"][1:]
    glon = np.array([float(r[10]) for r in rows])
    glat = np.array([float(r[11]) for r in rows])
    lon, lat = gcj02_to_wgs84(glon, glat)
    codes = county_of(region, lon, lat)
    assert all(region["owner"].get(c) == "341100" for c in codes)


def test_risk_sources_on_land(demo: dict[str, Any]) -> None:
    channels = shapely.union_all([
        metric(shape(r["geometry"])).buffer(r["properties"]["width_m"] / 2.0) for r in demo["features"]["river"]
    ])
    lon, lat = points(demo["features"]["risk_source"])
    x, y = TO_M.transform(lon, lat)
    assert not shapely.contains_xy(channels, x, y).any()


def test_risk_sources_near_borders_and_the_chu(demo: dict[str, Any], region: dict[str, Any]) -> None:
    gdf = region["gdf"]
    city = {c: metric(g) for c, g in zip(gdf["code"], gdf.geometry)}
    feats = demo["features"]["risk_source"]
    nanjing = [metric(shape(f["geometry"])) for f in feats if f["properties"]["owner_city"] == "320100"]
    for other in ("341100", "340500"):  # Jiangsu-Anhui borders
        d = np.array([city[other].distance(p) for p in nanjing])
        assert ((d >= 300.0) & (d <= 3000.0)).sum() >= 10, other
    rows = demo["csv"][1:]
    lon, lat = gcj02_to_wgs84(np.array([float(r[10]) for r in rows]), np.array([float(r[11]) for r in rows]))
    chuzhou = [metric(Point(x, y)) for x, y in zip(lon, lat)]
    d = np.array([city["320100"].distance(p) for p in chuzhou])
    assert ((d >= 300.0) & (d <= 3000.0)).sum() >= 10
    chu = metric(shapely.union_all([shape(r["geometry"]) for r in demo["features"]["river"]
                                    if r["properties"]["name"] == "滁河"]))
    assert sum(chu.distance(p) <= 2000.0 for p in chuzhou) >= 20


def test_chuzhou_csv_is_a_bureau_export(demo: dict[str, Any], region: dict[str, Any]) -> None:
    raw = (demo["dir"] / "risk_source_chuzhou.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rows = demo["csv"]
    assert tuple(rows[0]) == CSV_HEADER
    body = rows[1:]
    assert {r[2] for r in body} <= {"化工", "危险废物", "尾矿库", "污水处理厂", "油气储存", "制药", "电镀", "其他"}
    assert {r[9] for r in body} <= {"运行", "关停", "在建"}
    for r in body:
        names, cas, qty = r[5].split(";"), r[6].split(";"), r[7].split(";")
        assert len(names) == len(cas) == len(qty)
        assert all(float(q) >= 1 for q in qty)
    glon = np.array([float(r[10]) for r in body])
    glat = np.array([float(r[11]) for r in body])
    lon, lat = gcj02_to_wgs84(glon, glat)
    shift_m = np.hypot(*(np.array(TO_M.transform(glon, glat)) - np.array(TO_M.transform(lon, lat))))
    assert (shift_m > 100.0).all()  # really GCJ-02, not WGS84
    truth = county_of(region, lon, lat)
    claimed = np.array([r[12] for r in body])
    wrong = claimed != truth
    assert 1 <= wrong.sum() <= max(3, int(0.05 * len(body)))
    assert all(c in region["owner"] for c in claimed)  # a wrong code is still a real county code


def test_protection_zones(demo: dict[str, Any]) -> None:
    reserves = {r["properties"]["key"]: r for r in demo["features"]["water_reserve"]}
    zones: dict[str, dict[str, shapely.Geometry]] = defaultdict(dict)
    frames = {k: metric_crs_for(*shape(r["geometry"]).coords[0]) for k, r in reserves.items()}
    for z in demo["features"]["protection_zone"]:
        p = z["properties"]
        assert p["reserve_key"] in reserves and p["derived_zone"] is True
        assert p["key"] == f"{p['reserve_key']}-{p['level']}"
        geom = shape(z["geometry"])
        assert geom.is_valid and geom.geom_type == "MultiPolygon"
        # in the frame the zones are drawn in (a transverse Mercator centred on the intake): there the
        # levels share edges exactly, where another projection bends them apart or together by millimetres
        zones[p["reserve_key"]][p["level"]] = to_metric([geom], frames[p["reserve_key"]])[0]
    assert set(zones) == set(reserves)
    for key, levels in zones.items():
        intake = to_metric([shape(reserves[key]["geometry"])], frames[key])[0]
        assert levels["1"].contains(intake), key
        if "2" in levels:
            # they share edges: what the files' 1 cm rounding of coordinates (7 decimal places) can make
            # overlap is a sliver at most 1 cm wide along level 1's boundary
            assert levels["1"].intersection(levels["2"]).area < 0.01 * levels["1"].length, key
    maanshan_yangtze = [k for k, r in reserves.items()
                        if r["properties"]["owner_city"] == "340500" and r["properties"]["water_body"] == "长江"]
    assert maanshan_yangtze and all(set(zones[k]) == {"1", "2", "quasi"} for k in maanshan_yangtze)


def test_protected_areas_valid(demo: dict[str, Any]) -> None:
    names = set()
    for a in demo["features"]["protected_area"]:
        geom = shape(a["geometry"])
        assert geom.is_valid and not geom.is_empty
        names.add(a["properties"]["name"])
    assert {"老山国家森林公园", "石臼湖湿地", "琅琊山风景名胜区", "南京长江江豚省级自然保护区"} <= names


def test_cross_border_sections_on_crossings(demo: dict[str, Any], region: dict[str, Any]) -> None:
    gdf = region["gdf"]
    boundaries = metric(shapely.union_all(list(gdf.loc[gdf["level"] == "city"].geometry.boundary)))
    sections = [s for s in demo["features"]["monitoring_station"] if s["properties"]["kind"] == "cross-border-section"]
    assert len(sections) >= 8
    assert any("省界" in s["properties"]["name"] for s in sections)
    for s in sections:
        assert boundaries.distance(metric(shape(s["geometry"]))) < 2500.0, s["properties"]["name"]
        assert s["properties"]["target_class"] in ("II", "III")


def test_population_raster(demo: dict[str, Any], region: dict[str, Any]) -> None:
    with rasterio.open(demo["dir"] / "population.tif") as ds:
        assert ds.crs.to_epsg() == 4326
        assert ds.dtypes[0] == "float32"
        assert ds.res == pytest.approx((0.005, 0.005))
        assert ds.profile["compress"] == "deflate"
        assert "ynthetic" in ds.tags()["description"]
        data = ds.read(1)
        gdf = region["gdf"]
        nanjing = gdf.loc[gdf["code"] == "320100", "geometry"].iloc[0]
        inside = ~geometry_mask([nanjing], out_shape=data.shape, transform=ds.transform)
        total = float(data[inside].sum(dtype="float64"))
    assert 8.0e6 < total < 11.0e6
    assert data.min() >= 0


def test_manifest(demo: dict[str, Any]) -> None:
    doc = json.loads((demo["dir"] / "demo_manifest.json").read_text(encoding="utf-8"))
    assert doc == demo["manifest"].to_json()
    by_file = {f["file"]: f for f in doc["files"]}
    assert set(by_file) == set(GEOJSON_LAYERS) | {"risk_source_chuzhou.csv", "population.tif"}
    for name, entry in by_file.items():
        assert (demo["dir"] / name).is_file()
        assert set(entry) >= {"file", "layer", "format", "crs", "mapping"}
    assert by_file["risk_source_chuzhou.csv"]["mapping"] == "demo_chuzhou_risk_source"
    assert by_file["risk_source_chuzhou.csv"]["crs"] == "GCJ-02"
    assert by_file["risk_source.geojson"]["mapping"] is None
    assert by_file["population.tif"]["layer"] == "population"
