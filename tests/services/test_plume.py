"""Air threat zones through the API: far edges against the Briggs formulas solved here independently,
the zone's place and shape on the map, population and receptors counted independently, whom to tell,
the 10 km cap, and bad inputs answered with a reason."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import Point, shape
from typer.testing import CliRunner

from etl.raster import raster_path
from gis.crs import GCJ02, from_wgs84
from layers import db
from layers.settings import DatabaseSettings
from services.web.app import create_app

GEOD = Geod(ellps="WGS84")
CHEM_PARK = (118.79, 32.27)  # the densest cluster of demo risk sources (Nanjing, Luhe)

# Briggs (1973) open-country and urban sigmas as DESIGN.md 8.4 gives them, written out again here
RURAL_A = dict(zip("ABCDEF", (0.22, 0.16, 0.11, 0.08, 0.06, 0.04)))


def sigma_y(x: float, s: str, urban: bool) -> float:
    if urban:
        c = {"A": 0.32, "B": 0.32, "C": 0.22, "D": 0.16, "E": 0.11, "F": 0.11}[s]
        return c * x / math.sqrt(1 + 0.0004 * x)
    return RURAL_A[s] * x / math.sqrt(1 + 0.0001 * x)


def sigma_z(x: float, s: str, urban: bool) -> float:
    if urban:
        return {"A": 0.24 * x * math.sqrt(1 + 0.001 * x), "B": 0.24 * x * math.sqrt(1 + 0.001 * x), "C": 0.20 * x,
                "D": 0.14 * x / math.sqrt(1 + 0.0003 * x), "E": 0.08 * x / math.sqrt(1 + 0.0015 * x),
                "F": 0.08 * x / math.sqrt(1 + 0.0015 * x)}[s]
    return {"A": 0.20 * x, "B": 0.12 * x, "C": 0.08 * x / math.sqrt(1 + 0.0002 * x),
            "D": 0.06 * x / math.sqrt(1 + 0.0015 * x), "E": 0.03 * x / (1 + 0.0003 * x),
            "F": 0.016 * x / (1 + 0.0003 * x)}[s]


def centreline_mg_m3(q_kg_s: float, u: float, x: float, s: str, urban: bool) -> float:
    """Ground-level release, ground-level centreline: C = Q / (π u σy σz)."""
    return q_kg_s * 1e6 / (math.pi * u * sigma_y(x, s, urban) * sigma_z(x, s, urban))


def far_edge_m(q: float, u: float, s: str, loc: float, urban: bool) -> float:
    """x where the centreline concentration falls to ``loc`` (bisection; C decreases with x)."""
    lo, hi = 0.01, 10_000.0
    for _ in range(300):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if centreline_mg_m3(q, u, mid, s, urban) > loc else (lo, mid)
    return 0.5 * (lo + hi)


def max_half_width_m(q: float, u: float, s: str, loc: float, urban: bool) -> float:
    far = far_edge_m(q, u, s, loc, urban)
    best = 0.0
    for x in np.linspace(far / 20000, far, 20000):
        c = centreline_mg_m3(q, u, x, s, urban)
        if c > loc:
            best = max(best, sigma_y(x, s, urban) * math.sqrt(2 * math.log(c / loc)))
    return best


def _area_weighted(demo_db: DatabaseSettings, polygon: Any) -> float:
    """People in a WGS84 polygon: every cell of the demo raster weighted by the part of it covered (shapely boxes)."""
    with rasterio.open(raster_path(demo_db, "population")) as ds:
        data = ds.read(1).astype(float)
        t = ds.transform
        nodata = ds.nodata
    if nodata is not None:
        data[data == nodata] = 0.0
    minx, miny, maxx, maxy = polygon.bounds
    c0, c1 = int((minx - t.c) // t.a) - 1, int((maxx - t.c) // t.a) + 2
    r0, r1 = int((maxy - t.f) // t.e) - 1, int((miny - t.f) // t.e) + 2
    total = 0.0
    for r in range(max(r0, 0), min(r1, data.shape[0])):
        for c in range(max(c0, 0), min(c1, data.shape[1])):
            cell = shapely.box(t.c + c * t.a, t.f + (r + 1) * t.e, t.c + (c + 1) * t.a, t.f + r * t.e)
            if cell.intersects(polygon):
                total += data[r, c] * cell.intersection(polygon).area / cell.area
    return total


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db)) as c:
        yield c


def _plume(client: TestClient, **body: Any) -> dict[str, Any]:
    payload = {"x": CHEM_PARK[0], "y": CHEM_PARK[1], "substance": "chlorine", "release_rate_kg_s": 1.0,
               "wind_from_deg": 0.0, "wind_speed_m_s": 3.0, "stability": "D", **body}
    r = client.post("/analysis/plume", json=payload)
    assert r.status_code == 200, r.text
    return r.json()


def _zones(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["properties"]["endpoint"]: f for f in res["features"] if f["properties"]["role"] == "zone"}


@pytest.mark.parametrize("q, u, s, terrain", [(1.0, 3.0, "D", "rural"), (0.3, 2.0, "F", "rural"),
                                             (2.0, 4.0, "C", "urban"), (5.0, 1.5, "E", "urban")])
def test_zone_far_edge_is_where_briggs_concentration_equals_the_end_point(
        client: TestClient, q: float, u: float, s: str, terrain: str) -> None:
    res = _plume(client, release_rate_kg_s=q, wind_speed_m_s=u, stability=s, terrain=terrain, wind_from_deg=30.0)
    urban = terrain == "urban"
    for endpoint, loc in (("endpoint-1", 58.0), ("endpoint-2", 5.8)):  # chlorine, HJ 169 Table H.1
        z = _zones(res)[endpoint]
        p = z["properties"]
        expected = far_edge_m(q, u, s, loc, urban)
        if expected >= 10_000:
            assert p["capped"] and p["far_edge_m"] == 10_000
            continue
        assert p["loc_mg_m3"] == loc and not p["capped"]
        assert p["far_edge_m"] == pytest.approx(expected, rel=1e-4)
        assert centreline_mg_m3(q, u, p["far_edge_m"], s, urban) == pytest.approx(loc, rel=1e-3)
        assert p["max_half_width_m"] == pytest.approx(max_half_width_m(q, u, s, loc, urban), rel=1e-2)
        # on the map: the farthest vertex lies the far edge away, straight downwind (wind from 30° → 210°)
        ring = np.asarray(z["geometry"]["coordinates"][0])
        fwd, _, dist = GEOD.inv(np.full(len(ring), CHEM_PARK[0]), np.full(len(ring), CHEM_PARK[1]),
                                ring[:, 0], ring[:, 1])
        far = int(np.argmax(dist))
        assert dist[far] == pytest.approx(p["far_edge_m"], rel=2e-3)
        assert (fwd[far] % 360) == pytest.approx(210.0, abs=0.5)
        area = abs(GEOD.geometry_area_perimeter(shape(z["geometry"]))[0]) / 1e6
        assert area == pytest.approx(p["area_km2"], rel=5e-3)


def test_population_and_receptors_match_independent_counts(client: TestClient, demo_db: DatabaseSettings) -> None:
    res = _plume(client, release_rate_kg_s=5.0, stability="F", wind_speed_m_s=2.0, wind_from_deg=0.0)
    outer = shape(_zones(res)["endpoint-2"]["geometry"])
    inner = shape(_zones(res)["endpoint-1"]["geometry"])
    props = _zones(res)["endpoint-2"]["properties"]

    for zone, polygon in (("endpoint-2", outer), ("endpoint-1", inner)):  # one figure: the area-weighted sum
        p = _zones(res)[zone]["properties"]
        assert p["population_basis"] == "area_weighted"
        assert p["population"] == pytest.approx(_area_weighted(demo_db, polygon), abs=1.0)
    assert props["population"] > 0

    with db.connect(demo_db, "app") as conn:
        rows = conn.execute("SELECT key, ST_X(geom) AS x, ST_Y(geom) AS y FROM riskatlas.risk_source").fetchall()
    mine = {r["key"] for r in rows if outer.intersects(Point(r["x"], r["y"]))}
    reported = {f["properties"]["key"] for f in res["features"]
                if f["properties"]["role"] == "receptor" and f["properties"]["layer"] == "risk_source"}
    assert mine and reported == mine
    assert props["counts"]["risk_source"] == len(mine)
    inner_keys = {r["key"] for r in rows if inner.intersects(Point(r["x"], r["y"]))}
    zoned = {f["properties"]["key"]: f["properties"]["zone"] for f in res["features"]
             if f["properties"]["role"] == "receptor" and f["properties"]["layer"] == "risk_source"}
    assert {k for k, z in zoned.items() if z == "endpoint-1"} == inner_keys
    for f in res["features"]:
        p = f["properties"]
        if p["role"] == "receptor":
            d = GEOD.inv(*CHEM_PARK, *shape(f["geometry"]).representative_point().coords[0])[2]
            assert p["distance_m"] <= d + 1.0 and p["distance_m"] <= math.hypot(10_000, props["max_half_width_m"])
            assert p["first_arrival_s"] == pytest.approx(p["distance_m"] / 2.0, abs=0.1)


def test_jurisdictions_inside_are_told_in_order_of_arrival(client: TestClient) -> None:
    res = _plume(client, substance="ammonia", release_rate_kg_s=20.0, stability="F", wind_speed_m_s=1.5,
                 wind_from_deg=315.0)
    outer = shape(_zones(res)["endpoint-2"]["geometry"])
    levels = {j["level"] for j in res["jurisdictions"]}
    assert {"province", "city", "county"} <= levels
    assert "320100" in {j["code"] for j in res["jurisdictions"]}  # the park lies in Nanjing
    for j in res["jurisdictions"]:  # inside the drawn zones, or named beyond the 10 km cap
        assert (10_000 < j["distance_m"]) if j["beyond_modelled_range"] else (0 <= j["distance_m"] <= 10_000)
        assert j["first_arrival_s"] == pytest.approx(j["distance_m"] / 1.5, abs=0.1)
    arrivals = [e["first_arrival_s"] for e in res["notify"]]
    assert arrivals == sorted(arrivals) and [e["order"] for e in res["notify"]] == list(range(1, len(arrivals) + 1))
    assert all(e["via"] == ["air"] for e in res["notify"])
    counties = [j for j in res["jurisdictions"] if j["level"] == "county" and not j["beyond_modelled_range"]]
    for zone in ("endpoint-1", "endpoint-2"):  # the counties tile each zone, with the zone's own figure
        zone_pop = _zones(res)[zone]["properties"]["population"]
        assert sum(j["population_by_zone"][zone] for j in counties) == pytest.approx(zone_pop, rel=0.02, abs=2)
    assert outer.area > 0


def test_one_population_per_zone_in_every_output(client: TestClient) -> None:
    # a release whose end-point-1 zone lies inside one county: the row that names that zone gives its people
    res = _plume(client, release_rate_kg_s=5.0, stability="F", wind_speed_m_s=2.0, wind_from_deg=0.0)
    zones = {z: _zones(res)[z]["properties"]["population"] for z in ("endpoint-1", "endpoint-2")}
    assert 0 < zones["endpoint-1"] < zones["endpoint-2"]
    rows = {e["code"]: e for e in res["notify"]}
    for j in res["jurisdictions"]:
        assert j["population_basis"] == "area_weighted"
        if j["beyond_modelled_range"]:  # named, not drawn: no population is claimed
            assert j["population"] is None
            continue
        assert j["population"] == j["population_by_zone"][j["zone"]]
        assert rows[j["code"]]["population"] == j["population"]
        assert j["population"] <= zones[j["zone"]] + 1  # never more people than the zone it names holds
        if j["level"] == "province":  # the zone lies in one province: its row holds the zone's figure exactly
            assert j["population"] == zones[j["zone"]]
            assert f"{zones[j['zone']]}" in rows[j["code"]]["detail"]
    text = client.get("/analysis/plume/bulletin", params={
        "x": CHEM_PARK[0], "y": CHEM_PARK[1], "substance": "chlorine", "release_rate_kg_s": 5.0,
        "wind_from_deg": 0.0, "wind_speed_m_s": 2.0, "stability": "F"}).text
    assert f"人口（面积加权）population (area-weighted) {zones['endpoint-1']}" in text
    assert "cell centres" not in text


def test_a_capped_zone_still_names_the_neighbours_downwind(client: TestClient, demo_db: DatabaseSettings) -> None:
    # chlorine, 10 kg/s, at night with a clear sky and wind from the west: F, both zones cut at 10 km
    res = _plume(client, release_rate_kg_s=10.0, stability=None, day=False, cloud_cover_eighths=2,
                 wind_speed_m_s=2.0, wind_from_deg=270.0)
    assert res["model"]["stability"] == "F"
    ep1 = _zones(res)["endpoint-1"]["properties"]
    assert ep1["capped"] and ep1["far_edge_m"] == 10_000
    reach = far_edge_m_unbounded(10.0, 2.0, "F", 58.0)
    assert ep1["continues_to_m"] == pytest.approx(reach, abs=0.1)  # given to 0.1 m
    beyond = {j["code"]: j for j in res["jurisdictions"] if j["beyond_modelled_range"]}
    assert "321000" in beyond, "Yangzhou lies downwind beyond the cap"
    yz = beyond["321000"]
    assert yz["zone"] == "endpoint-1" and 10_000 < yz["distance_m"] < reach
    assert yz["first_arrival_s"] == pytest.approx(yz["distance_m"] / 2.0, abs=0.1)
    # independently: walk the geodesic east from the source and find where it first enters Yangzhou
    with db.connect(demo_db, "app") as conn:
        g = conn.execute("SELECT ST_AsGeoJSON(geom) AS g FROM riskatlas.admin_area WHERE code = '321000'").fetchone()
    yangzhou = shape(json.loads(g["g"]))
    entry = next(d for d in np.arange(10_000.0, reach, 50.0)
                 if yangzhou.contains(Point(*GEOD.fwd(*CHEM_PARK, 90.0, d)[:2])))
    assert yz["distance_m"] == pytest.approx(entry, abs=200.0)
    row = next(e for e in res["notify"] if e["code"] == "321000")
    assert row["beyond_modelled_range"] and "超出模拟范围" in row["detail_zh"] and "beyond the modelled range" in row["detail"]
    assert not any(j["beyond_modelled_range"] for j in res["jurisdictions"] if j["code"] == "320100")
    capped = [w for w in res["warnings"] if w["code"] == "plume-capped"]
    assert capped and all(w["zh"] and w["en"] for w in capped)
    assert any(f"{reach / 1000:.1f}" in w["en"] for w in capped)


def far_edge_m_unbounded(q: float, u: float, s: str, loc: float) -> float:
    """Where the centreline falls to ``loc``, without the 10 km cap (bisection up to 100 km)."""
    lo, hi = 10.0, 100_000.0
    for _ in range(300):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if centreline_mg_m3(q, u, mid, s, False) > loc else (lo, mid)
    return 0.5 * (lo + hi)


def test_cap_at_ten_km_and_low_wind_warning(client: TestClient) -> None:
    res = _plume(client, release_rate_kg_s=50.0, wind_speed_m_s=0.6, stability="F")
    assert res["capped"]
    z = _zones(res)["endpoint-2"]
    assert z["properties"]["capped"] and z["properties"]["far_edge_m"] == 10_000
    ring = np.asarray(z["geometry"]["coordinates"][0])
    fwd, _, dist = GEOD.inv(np.full(len(ring), CHEM_PARK[0]), np.full(len(ring), CHEM_PARK[1]),
                            ring[:, 0], ring[:, 1])
    downwind = dist * np.cos(np.radians(fwd - 180.0))  # wind from the north: downwind is south
    assert downwind.max() == pytest.approx(10_000, rel=2e-3)  # cut square at 10 km downwind, as ALOHA
    assert any("below 1 m/s" in w["en"] and "低于1 m/s" in w["zh"] for w in res["warnings"])
    assert any("10000 m" in w["en"] and "10000米" in w["zh"] for w in res["warnings"])


def test_stability_is_derived_when_not_given(client: TestClient) -> None:
    res = _plume(client, stability=None, day=True, insolation="strong", wind_speed_m_s=2.5)
    assert res["model"]["stability"] == "B" and res["model"]["stability_source"].startswith("derived")
    night = _plume(client, stability=None, day=False, cloud_cover_eighths=2, wind_speed_m_s=2.5)
    assert night["model"]["stability"] == "F"


def test_gcj02_in_and_out(client: TestClient) -> None:
    gx, gy = from_wgs84(*CHEM_PARK, GCJ02)
    res = _plume(client, x=gx, y=gy, crs="gcj02", output_crs="gcj02")
    assert res["crs"] == "urn:riskatlas:crs:gcj02"
    src = next(f for f in res["features"] if f["properties"]["role"] == "release")
    assert src["geometry"]["coordinates"] == pytest.approx([gx, gy], abs=1e-6)
    assert res["incident"]["location"]["lon"] == pytest.approx(CHEM_PARK[0], abs=1e-6)


@pytest.mark.parametrize("body, needles", [
    ({"wind_speed_m_s": 0}, ["wind_speed_m_s", "positive"]),
    ({"wind_speed_m_s": -2}, ["wind_speed_m_s", "-2"]),
    ({"release_rate_kg_s": -1}, ["release_rate_kg_s", "positive"]),
    ({"substance": "unobtainium"}, ["unobtainium", "HJ 169"]),
    ({"substance": "mercury"}, ["no toxic end-points", "endpoint1_mg_m3"]),
    ({"stability": "G"}, ["stability"]),
    ({"stability": None}, ["stability", "day"]),
    ({"wind_from_deg": 400}, ["wind_from_deg", "360"]),
    ({"max_distance_m": 20_000}, ["max_distance_m", "10 km"]),
])
def test_bad_plume_inputs_get_a_400_that_says_why(client: TestClient, body: dict[str, Any],
                                                 needles: list[str]) -> None:
    payload = {"x": CHEM_PARK[0], "y": CHEM_PARK[1], "substance": "chlorine", "release_rate_kg_s": 1.0,
               "wind_from_deg": 0.0, "wind_speed_m_s": 3.0, "stability": "D", **body}
    r = client.post("/analysis/plume", json=payload)
    assert r.status_code == 400, r.text
    for needle in needles:
        assert needle in r.json()["description"]


def test_plume_bulletin_and_cli_map(client: TestClient, demo_db: DatabaseSettings, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    r = client.get("/analysis/plume/bulletin", params={"x": CHEM_PARK[0], "y": CHEM_PARK[1], "substance": "氯气",
                                                        "release_rate_kg_s": 2, "wind_from_deg": 90,
                                                        "wind_speed_m_s": 2, "stability": "E"})
    assert r.status_code == 200 and "大气威胁区 / Air threat zones" in r.text and "南京市 Nanjing" in r.text

    from services.cli.main import app

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("RISKATLAS_DB_NAME", demo_db.db_name)
    monkeypatch.setenv("RISKATLAS_STATE_DIR", str(demo_db.state_dir))
    html = tmp_path / "plume.html"
    res = CliRunner().invoke(app, ["plume", "--x", str(CHEM_PARK[0]), "--y", str(CHEM_PARK[1]), "-s", "chlorine",
                                   "--rate-kg-s", "2", "--wind-from", "90", "--wind-speed", "2", "--night",
                                   "--cloud", "6", "--map", str(html)])
    assert res.exit_code == 0, res.output
    assert "threat zones" in res.stdout and "who must be told" in res.stdout
    page = html.read_text(encoding="utf-8")
    assert "L.geoJson" in page or "L.geoJSON" in page
    capped = tmp_path / "capped.html"
    res = CliRunner().invoke(app, ["plume", "--x", str(CHEM_PARK[0]), "--y", str(CHEM_PARK[1]), "-s", "chlorine",
                                   "--rate-kg-s", "10", "--wind-from", "270", "--wind-speed", "2", "--night",
                                   "--cloud", "2", "--map", str(capped)])
    assert res.exit_code == 0, res.output
    assert "扬州市" in res.stdout and "提示 warning" in res.stdout
    page = capped.read_text(encoding="utf-8")  # the map's panel names Yangzhou and says why, and the warnings
    assert "扬州市" in page and "超出模拟范围 beyond the modelled range" in page
    assert "提示 Warnings" in page and "威胁区只画到10000米" in page and "the zone is drawn only to 10000 m" in page
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', page)
    bad = CliRunner().invoke(app, ["plume", "--x", "118.8", "--y", "32.2", "-s", "chlorine", "--rate-kg-s", "1",
                                   "--wind-from", "0", "--wind-speed", "0", "--stability", "D", "--json"])
    error = json.loads(bad.stdout)["error"]
    assert bad.exit_code == 2 and "--wind-speed" in error and "wind_speed_m_s" not in error, error


@pytest.mark.parametrize("args, option", [
    (["--night"], "--cloud"),  # a rule over two fields names the command's options, not the API's fields
    (["--stability", "F", "--wind-from", "400"], "--wind-from"),
    (["--stability", "F", "--rate-kg-s", "-1"], "--rate-kg-s"),
])
def test_the_command_line_names_its_own_options_in_errors(args: list[str], option: str) -> None:
    from services.cli.main import app

    base = {"--x": "118.79", "--y": "32.27", "--substance": "chlorine", "--rate-kg-s": "2", "--wind-from": "270",
            "--wind-speed": "3"}
    given = dict(zip(args[::2], args[1::2])) if args != ["--night"] else {}
    argv = ["plume", *[v for k, val in {**base, **given}.items() for v in (k, val)], *(["--night"] if "--night" in args
                                                                                     else []), "--json"]
    done = CliRunner().invoke(app, argv)
    assert done.exit_code == 2, done.stdout
    error = json.loads(done.stdout)["error"]
    assert option in error and "cloud_cover_eighths" not in error and "wind_from_deg" not in error, error
