"""River spill: arrivals on synthetic rivers against x/u, mass conservation, the demo region's order of
jurisdictions, GB 3838 comparison, bulletins, the CLI, and bad inputs answered with a reason."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from typer.testing import CliRunner

from etl.load import load_file
from gis.crs import GCJ02, from_wgs84
from layers import db
from layers.settings import DatabaseSettings
from services.emergency import cloud
from services.emergency.walk import prepare
from services.river import downstream, jurisdictions_entered, snap
from services.web.app import create_app
from tests.services.river_reference import jurisdictions_along

GEOD = Geod(ellps="WGS84")
LAT = 32.02  # east from Pukou (Nanjing) across the plain towards Zhenjiang
XS = [118.55, 118.85, 119.15, 119.45]
RELEASE_LON = 118.70  # the middle vertex of the first reach
MAANSHAN = (118.45, 31.753)  # on the Yangtze in He County, Ma'anshan


def _geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def _river(fresh_db: DatabaseSettings, tmp_path: Path, hydraulics: list[dict[str, Any]]) -> DatabaseSettings:
    """Three straight reaches along LAT, loaded through the ETL, with an intake and a section on reach 3."""
    reaches = []
    for i, props in enumerate(hydraulics):
        mid = (XS[i] + XS[i + 1]) / 2
        reaches.append({"type": "Feature", "properties": {"key": f"R{i + 1}", "name": "直河", "river_class": "major",
                                                          **props},
                        "geometry": {"type": "LineString",
                                     "coordinates": [[XS[i], LAT], [mid, LAT], [XS[i + 1], LAT]]}})
    assert load_file(fresh_db, _geojson(tmp_path / "river.geojson", reaches), "river").rows_inserted == 3
    intake = {"type": "Feature", "properties": {"key": "W1", "name": "下游取水口", "kind": "river"},
              "geometry": {"type": "Point", "coordinates": [119.30, LAT + 0.001]}}
    assert load_file(fresh_db, _geojson(tmp_path / "w.geojson", [intake]), "water_reserve").rows_inserted == 1
    section = {"type": "Feature", "properties": {"key": "S1", "name": "直河交界断面", "medium": "water",
                                                 "kind": "cross-border-section", "target_class": "III"},
               "geometry": {"type": "Point", "coordinates": [119.40, LAT]}}
    assert load_file(fresh_db, _geojson(tmp_path / "s.geojson", [section]), "monitoring_station").rows_inserted == 1
    return fresh_db


@pytest.fixture
def uniform_river(fresh_db: DatabaseSettings, tmp_path: Path) -> DatabaseSettings:
    same = {"velocity_ms": 0.5, "width_m": 100.0, "depth_m": 4.0, "slope": 1e-4}
    return _river(fresh_db, tmp_path, [same, same, same])


@pytest.fixture
def stepped_river(fresh_db: DatabaseSettings, tmp_path: Path) -> DatabaseSettings:
    return _river(fresh_db, tmp_path, [
        {"velocity_ms": 1.0, "width_m": 200.0, "depth_m": 5.0, "slope": 1e-4},
        {"velocity_ms": 0.5},  # width, depth and slope: the 'major' class defaults
        {"velocity_ms": 2.0, "width_m": 50.0, "depth_m": 2.0, "slope": 4e-4},
    ])


@pytest.fixture(scope="module")
def demo_client(demo_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db)) as client:
        yield client


def _x(lon0: float, lon1: float) -> float:
    """Geodesic metres along the river between two longitudes (through the reach vertices)."""
    lons = sorted({lon0, lon1, *XS, *[(a + b) / 2 for a, b in zip(XS, XS[1:])]})
    lons = [v for v in lons if lon0 <= v <= lon1]
    return GEOD.line_length(lons, [LAT] * len(lons))


def _by_role(result: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [f["properties"] for f in result["features"] if f["properties"]["role"] == role]


def _spill(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/analysis/spill", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_arrival_times_on_a_straight_river_equal_x_over_u(uniform_river: DatabaseSettings) -> None:
    d, u, area, mass_kg = 5.0, 0.5, 400.0, 2000.0
    with TestClient(create_app(uniform_river)) as client:
        res = _spill(client, x=RELEASE_LON, y=LAT, substance="benzene", mass_t=2, dispersion_m2_s=d, horizon_h=200)
    reaches = _by_role(res, "reach")
    assert [r["reach_key"] for r in reaches] == ["R1", "R2", "R3"]
    for r, end_lon in zip(reaches, XS[1:]):
        x = r["end_m"]
        assert x == pytest.approx(_x(RELEASE_LON, end_lon), rel=2e-3)  # geodesic metres along the river
        assert r["t_end_s"] == pytest.approx(x / u, abs=0.2)  # both are given to 0.1 in the response
        # the peak passes at the exact maximum of C(x, t): t = x² / (D + √(D² + u²x²)), about D/u² before x/u
        t_peak = x**2 / (d + math.sqrt(d**2 + u**2 * x**2))
        assert r["end_peak_s"] == pytest.approx(t_peak, rel=1e-5)
        assert 0 < x / u - r["end_peak_s"] <= d / u**2 + 1.0
        c = (mass_kg / (area * math.sqrt(4 * math.pi * d * t_peak))
             * math.exp(-((x - u * t_peak) ** 2) / (4 * d * t_peak)))
        assert r["end_peak_mg_l"] == pytest.approx(c * 1000.0, rel=1e-3)
        # the leading edge and the tail are the centre ± 2σ passing x: u t ± 2√(2 D t) = x
        for key, sign in (("end_leading_edge_s", +1), ("end_tail_s", -1)):
            t = r[key]
            assert u * t + sign * 2 * math.sqrt(2 * d * t) == pytest.approx(x, rel=1e-4)
    intake = next(p for p in _by_role(res, "receptor") if p["key"] == "W1")
    assert intake["receptor"] == "intake" and intake["distance_to_path_m"] == pytest.approx(111, abs=5)
    assert intake["advective_s"] == pytest.approx(_x(RELEASE_LON, 119.30) / u, rel=3e-3)


def test_travel_time_sums_reach_by_reach_and_defaults_are_stated(stepped_river: DatabaseSettings) -> None:
    with TestClient(create_app(stepped_river)) as client:
        res = _spill(client, x=RELEASE_LON, y=LAT + 0.002, substance="toluene", mass_t=1, horizon_h=200)
    assert res["snap"]["reach_key"] == "R1" and 150 < res["snap"]["distance_m"] < 300
    t1 = _x(RELEASE_LON, XS[1]) / 1.0
    t2 = t1 + _x(XS[1], XS[2]) / 0.5
    t3 = t2 + _x(XS[2], XS[3]) / 2.0
    ends = [r["t_end_s"] for r in _by_role(res, "reach")]
    assert ends == pytest.approx([t1, t2, t3], rel=2e-3)
    starts = [r["t_start_s"] for r in _by_role(res, "reach")]
    assert starts[1:] == pytest.approx(ends[:2])

    model = {r["reach_key"]: r for r in res["model"]["reaches"]}
    assert model["R1"]["defaults_used"] == [] and model["R1"]["area_m2"] == pytest.approx(1000.0)
    assert set(model["R2"]["defaults_used"]) == {"width_m", "depth_m", "slope"}
    assert model["R2"]["width_m"] == res["model"]["class_defaults"]["major"]["width_m"]
    for r in model.values():  # Fischer: D = 0.011 u² B² / (h √(g h S)), computed here independently
        u, b, h, slope = r["velocity_m_s"], r["width_m"], r["depth_m"], r["slope"]
        fischer = 0.011 * u**2 * b**2 / (h * math.sqrt(9.81 * h * slope))
        assert r["dispersion_source"] == "fischer" and r["dispersion_m2_s"] == pytest.approx(fischer, rel=1e-3)

    section = next(p for p in _by_role(res, "receptor") if p["key"] == "S1")
    assert section["receptor"] == "cross_border_section" and section["target_class"] == "III"
    assert section["advective_s"] == pytest.approx(t2 + _x(XS[2], 119.40) / 2.0, rel=3e-3)
    times = [p["advective_s"] for p in _by_role(res, "receptor")]
    assert times == sorted(times)


def test_the_cloud_conserves_mass_across_reaches(stepped_river: DatabaseSettings) -> None:
    mass = 1000.0
    with db.connect(stepped_river, "app") as conn:
        start = snap(conn, RELEASE_LON, LAT)
        walk = prepare(conn, downstream(conn, start, 400 * 3600.0), 400 * 3600.0)
    assert len(walk.cloud) == 3
    # time-integrated flux ∫ u A C dt at points in every reach (and at the reach ends) equals M
    for reach in walk.cloud:
        for at_m in np.linspace(reach.start_m, reach.end_m, 4)[1:]:
            eq = cloud.equivalent(reach, float(at_m), mass)
            tail = cloud.passage(eq).tail_s
            t = np.linspace(1.0, 6.0 * tail, 400_001)
            c_kg_m3 = np.asarray(cloud.concentration(eq, t)) / 1000.0
            flux = float(np.trapezoid(c_kg_m3, t)) * reach.u * reach.area
            assert flux == pytest.approx(mass, rel=2e-3), (reach.index, at_m)
    # and at fixed times the mass in the water, ∫ A C dx along the walk, is M while the cloud crosses
    # the boundaries between reaches of different u, A and D
    for t in (30_000.0, 50_000.0, 65_000.0):  # early enough that the cloud has not left the river's end
        total = 0.0
        for reach in walk.cloud:
            xs = np.linspace(reach.start_m, reach.end_m, 20_001)
            xs = xs[xs >= cloud.MIN_DISTANCE_M]
            cs = np.array([float(cloud.concentration(cloud.equivalent(reach, float(x), mass), t)) for x in xs])
            total += float(np.trapezoid(cs / 1000.0 * reach.area, xs))
        assert total == pytest.approx(mass, rel=0.03), t


def test_horizon_cuts_the_path_and_what_lies_beyond(uniform_river: DatabaseSettings) -> None:
    with TestClient(create_app(uniform_river)) as client:
        res = _spill(client, x=RELEASE_LON, y=LAT, substance="benzene", mass_t=1, horizon_h=30)
    reaches = _by_role(res, "reach")
    assert reaches[-1]["cut_at_horizon"] and reaches[-1]["t_end_s"] == pytest.approx(30 * 3600.0)
    assert reaches[-1]["end_m"] == pytest.approx(0.5 * 30 * 3600.0, rel=3e-3)
    end = res["features"][[f["properties"]["role"] for f in res["features"]].index("reach") + len(reaches) - 1]
    lon_end = end["geometry"]["coordinates"][-1][0]
    assert _x(RELEASE_LON, lon_end) == pytest.approx(0.5 * 30 * 3600.0, rel=3e-3)
    assert all(p["advective_s"] <= 30 * 3600.0 + 1 for p in _by_role(res, "receptor"))
    assert "W1" not in {p["key"] for p in _by_role(res, "receptor")}  # at 119.30: 44 h away


def test_release_in_maanshan_reaches_the_cities_downstream_in_order(demo_client: TestClient) -> None:
    res = _spill(demo_client, x=MAANSHAN[0], y=MAANSHAN[1], substance="7664-41-7", mass_t=20)
    cities = [j["code"] for j in res["jurisdictions"] if j["level"] == "city"]
    assert cities[:2] == ["340500", "320100"]
    assert set(cities[2:4]) == {"321000", "321100"}
    provinces = [j["code"] for j in res["jurisdictions"] if j["level"] == "province"]
    assert provinces == ["340000", "320000"]
    entries = [j["advective_s"] for j in res["jurisdictions"]]
    assert entries == sorted(entries)
    notify = res["notify"]
    assert [e["order"] for e in notify] == list(range(1, len(notify) + 1))
    assert [e["first_arrival_s"] for e in notify] == sorted(e["first_arrival_s"] for e in notify)
    assert {e["code"] for e in notify} == {j["code"] for j in res["jurisdictions"]}
    sections = [p for p in _by_role(res, "receptor") if p["receptor"] == "cross_border_section"]
    assert sections and sections[0]["name"].startswith("长江马鞍山")
    assert res["crs"].endswith("CRS84") and res["model"]["mixing_length_km"] > 100


def test_fast_crossings_agree_with_jurisdictions_along(demo_db: DatabaseSettings) -> None:
    with db.connect(demo_db, "app") as conn:
        steps = downstream(conn, snap(conn, *MAANSHAN), 72 * 3600.0)
        fast = jurisdictions_entered(conn, steps)
        for level in ("province", "city", "county"):
            slow = jurisdictions_along(conn, steps, level)
            mine = [e for e in fast if e.properties["level"] == level]
            assert [e.key for e in mine] == [c.code for c in slow]
            assert [e.entry_s for e in mine] == pytest.approx([c.entry_s for c in slow], abs=1.0)


def test_mass_divides_where_the_network_branches(demo_client: TestClient) -> None:
    res = _spill(demo_client, x=119.40, y=32.24, substance="benzene", mass_t=5, horizon_h=120)
    model = {r["reach_key"]: r for r in res["model"]["reaches"]}
    assert {"yangtze-13", "grand-canal-south-01"} <= set(model)
    yangtze, canal = model["yangtze-13"], model["grand-canal-south-01"]
    assert yangtze["mass_share"] + canal["mass_share"] == pytest.approx(model["yangtze-12"]["mass_share"], rel=1e-5)
    assert canal["mass_share"] == pytest.approx(canal["flow_m3_s"] / (canal["flow_m3_s"] + yangtze["flow_m3_s"]),
                                                rel=1e-3)
    assert "丹阳市" in {j["name"] for j in res["jurisdictions"]}  # reached by the canal only


def test_peaks_are_compared_with_gb3838(demo_client: TestClient) -> None:
    res = _spill(demo_client, x=MAANSHAN[0], y=MAANSHAN[1], substance="benzene", mass_t=50)
    receptors = _by_role(res, "receptor")
    assert all(p["gb3838_factor"] == "benzene" and p["class_iii_limit_mg_l"] == 0.01 for p in receptors)
    exceeded = [p for p in receptors if p["exceeds_class_iii"]]
    assert exceeded and all(p["ratio_to_class_iii"] > 1 for p in exceeded)
    for p in exceeded:
        assert p["class_iii_exceeded_from"] <= p["peak_time"] <= p["class_iii_exceeded_until"]
    assert all(p["ratio_to_class_iii"] == pytest.approx(p["peak_mg_l"] / 0.01, rel=1e-3) for p in receptors)
    plain = _spill(demo_client, x=MAANSHAN[0], y=MAANSHAN[1], substance="methanol", mass_t=50)
    assert all("gb3838_factor" not in p for p in _by_role(plain, "receptor"))
    assert any("no GB 3838-2002 factor" in a for a in plain["model"]["assumptions"])


def test_gcj02_input_lands_on_the_same_point(demo_client: TestClient) -> None:
    gx, gy = from_wgs84(*MAANSHAN, GCJ02)
    res = _spill(demo_client, x=gx, y=gy, crs="GCJ-02", substance="benzene", mass_t=1, horizon_h=6)
    assert res["incident"]["location"]["lon"] == pytest.approx(MAANSHAN[0], abs=1e-6)
    assert res["incident"]["location"]["lat"] == pytest.approx(MAANSHAN[1], abs=1e-6)
    out = _spill(demo_client, x=gx, y=gy, crs="gcj02", output_crs="gcj02", substance="benzene", mass_t=1, horizon_h=6)
    release = next(f for f in out["features"] if f["properties"]["role"] == "release")
    assert release["geometry"]["coordinates"] == pytest.approx([gx, gy], abs=1e-6)
    assert out["crs"] == "urn:riskatlas:crs:gcj02"


FAR_FROM_RIVERS = (120.2, 30.8)


@pytest.mark.parametrize("body, status, needles", [
    ({"mass_t": -5}, 400, ["mass_t", "positive", "-5"]),
    ({"mass_t": 0}, 400, ["mass_t", "positive"]),
    ({"substance": "kryptonite"}, 400, ["kryptonite", "HJ 169"]),
    ({"crs": "EPSG:99999"}, 400, ["crs", "EPSG:99999"]),
    ({"horizon_h": 1000}, 400, ["horizon_h", "720"]),
    ({"snap_distance_m": -1}, 400, ["snap_distance_m"]),
    ({"x": "east"}, 400, ["x"]),
    ({"tonnes": 3}, 400, ["tonnes"]),
])
def test_bad_spill_inputs_get_a_400_that_says_why(demo_client: TestClient, body: dict[str, Any], status: int,
                                                 needles: list[str]) -> None:
    r = demo_client.post("/analysis/spill", json={"x": MAANSHAN[0], "y": MAANSHAN[1], "substance": "benzene",
                                                  "mass_t": 1, **body})
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["code"] == "InvalidParameterValue"
    for needle in needles:
        assert needle in doc["description"]


def test_a_point_far_from_any_river_names_the_distance(demo_client: TestClient, demo_db: DatabaseSettings) -> None:
    r = demo_client.post("/analysis/spill", json={"x": FAR_FROM_RIVERS[0], "y": FAR_FROM_RIVERS[1],
                                                  "substance": "benzene", "mass_t": 1})
    assert r.status_code == 400
    found = float(re.search(r"is (\d+) m away", r.json()["description"]).group(1))
    with db.connect(demo_db, "app") as conn:
        nearest = conn.execute(
            "SELECT min(ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)) AS d "
            "FROM riskatlas.river", FAR_FROM_RIVERS).fetchone()["d"]
    assert nearest > 50_000 and found == pytest.approx(nearest, abs=1.0)
    assert "snap_distance_m" in r.json()["description"]


def test_bulletins_as_csv_text_and_json(demo_client: TestClient) -> None:
    params = {"x": MAANSHAN[0], "y": MAANSHAN[1], "substance": "苯", "mass_t": 10, "release_time": "2026-03-01T08:00"}
    r = demo_client.get("/analysis/spill/bulletin", params={**params, "f": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["序号 No.", "类别 Type", "代码 Code", "名称 Name"]
    codes = [row[2] for row in rows[1:]]
    assert codes.index("340500") < codes.index("320100") < codes.index("321100")
    assert any(row[1] == "取水口 intake" for row in rows[1:])
    assert rows[1][5].startswith("2026-03-01T08:00")

    text = demo_client.get("/analysis/spill/bulletin", params=params).text
    assert "需通知的行政区" in text and "Jurisdictions to notify" in text and "马鞍山市 Ma'anshan" in text

    both = demo_client.post("/analysis/bulletin", params={"f": "json"}, json={
        "spill": params,
        "plume": {"x": MAANSHAN[0], "y": MAANSHAN[1], "substance": "benzene", "release_rate_kg_s": 20,
                  "wind_from_deg": 270, "wind_speed_m_s": 2, "stability": "F", "release_time": "2026-03-01T08:00"}})
    assert both.status_code == 200, both.text
    doc = both.json()
    assert len(doc["incidents"]) == 2
    via = {e["code"]: e["via"] for e in doc["notify"]}
    assert "river" in via["340500"] and "air" in via["340500"]
    bad = demo_client.get("/analysis/spill/bulletin", params={**params, "mass_t": -1})
    assert bad.status_code == 400 and "mass_t" in bad.json()["description"]


def test_cli_spill_writes_json_map_and_bulletin(demo_db: DatabaseSettings, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from services.cli.main import app

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("RISKATLAS_DB_NAME", demo_db.db_name)
    monkeypatch.setenv("RISKATLAS_STATE_DIR", str(demo_db.state_dir))
    runner = CliRunner()
    html, bulletin = tmp_path / "spill.html", tmp_path / "b.csv"
    res = runner.invoke(app, ["spill", "--x", str(MAANSHAN[0]), "--y", str(MAANSHAN[1]), "-s", "benzene",
                              "--mass-t", "10", "--json", "--map", str(html), "--bulletin", str(bulletin)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["analysis"] == "spill" and doc["notify"][0]["code"] in ("340000", "340500", "340523")
    page = html.read_text(encoding="utf-8")
    assert "L.polyline" in page or "L.polyLine" in page
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', page)  # no CDN: Leaflet is inlined
    assert bulletin.read_text(encoding="utf-8").lstrip("\ufeff").startswith("序号 No.")
    table = runner.invoke(app, ["spill", "--x", str(MAANSHAN[0]), "--y", str(MAANSHAN[1]), "-s", "benzene",
                                "--mass-t", "10"])
    assert table.exit_code == 0 and "who must be told" in table.stdout
    bad = runner.invoke(app, ["spill", "--x", "120.2", "--y", "30.8", "-s", "benzene", "--mass-t", "1", "--json"])
    assert bad.exit_code == 2 and "m away" in json.loads(bad.stdout)["error"]
