"""No public output lets anyone compute a restricted quantity (DESIGN 9).

For a source holding one substance, Q (HJ 941: Σ qᵢ/Qᵢ) times the substance's critical quantity is the
stored tonnage, which is restricted.  As the public (no key), collect every output that speaks of such a
source — OGC item and items (JSON, HTML), queryables, vector tiles (collection, all collections, the web
map's lean tiles), /nearby, the grade explanation, an overlay, the border-hazard flags (GeoJSON, CSV,
GeoPackage), a plume and its bulletin, the report map — and look at every number in them: neither the
tonnage, nor Q, nor Q for air or water (nor any rounding of them to two or more decimals) may appear,
and filters or sorting on Q are refused.  The Q band does appear.  An analyst still sees Q.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import morecantile
import pyogrio
import pytest
from fastapi.testclient import TestClient

from layers import db
from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.settings import APISettings

ANALYST = {"X-API-Key": "analyst-key"}
TMS = morecantile.tms.get("WebMercatorQuad")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys: Path = tmp_path_factory.mktemp("keys") / "keys.json"
    keys.write_text(json.dumps({"analyst-key": {"user": "ana", "role": "analyst"}}))
    with TestClient(create_app(demo_db, APISettings(api_keys_file=keys))) as c:
        yield c


@pytest.fixture(scope="module")
def site(demo_db: DatabaseSettings) -> dict[str, Any]:
    """A graded one-substance source with Q ≥ 1 and a border-zone flag, whose Q and tonnage have decimals
    enough (two or more) that finding them by chance among other numbers is out of the question."""
    with db.connect(demo_db) as conn:
        row = conn.execute(
            """SELECT s.key, s.name, s.city_code, s.q_value, s.q_band, s.substances, g.q_air, g.q_water,
                      ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat
               FROM riskatlas.risk_source s JOIN riskatlas.risk_grade g ON g.source_key = s.key
               WHERE jsonb_array_length(s.substances) = 1 AND g.status = 'graded' AND s.q_value >= 1
                 AND mod((s.q_value * 100)::numeric, 1) <> 0
                 AND mod((s.substances->0->>'quantity_t')::numeric * 100, 1) <> 0
                 AND EXISTS (SELECT 1 FROM riskatlas.hazard_flag f WHERE f.source_key = s.key)
               ORDER BY s.key LIMIT 1""").fetchone()
    assert row is not None, "the demo region has no graded one-substance source with a flag"
    tonnes = float(row["substances"][0]["quantity_t"])
    secret = {"q_value": float(row["q_value"]), "quantity_t": tonnes}
    for medium in ("q_air", "q_water"):
        if row[medium]:
            secret[medium] = float(row[medium])
    return {**row, "secret": secret}


# --------------------------------------------------------------------------------------------------
# finding numbers


def _decimals(text: str) -> int:
    mantissa = re.split("[eE]", text)[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _tokens(value: Any) -> Iterable[str]:
    """Every number in a JSON-like value, as text: numbers themselves and numbers written inside strings."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        yield repr(value)
    elif isinstance(value, str):
        yield from NUMBER.findall(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _tokens(k)
            yield from _tokens(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tokens(v)


def _leaks(value: Any, secret: dict[str, float]) -> list[str]:
    """The numbers in ``value`` that equal a secret or show one rounded to two or more decimals."""
    found = []
    for text in _tokens(value):
        try:
            x = float(text)
        except ValueError:
            continue
        d = _decimals(text)
        for name, s in secret.items():
            if x == s or (d >= 2 and round(s, d) == x):
                found.append(f"{name} {s!r} as {text}")
    return found


def _assert_silent(where: str, value: Any, site: dict[str, Any]) -> None:
    leaks = _leaks(value, site["secret"])
    assert not leaks, f"{where} shows {leaks}"


def _features_of(doc: dict[str, Any], key: str, prop: str = "key") -> list[dict[str, Any]]:
    return [f for f in doc.get("features", []) if (f.get("properties") or {}).get(prop) == key]


def _tile(client: TestClient, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = client.get(path, headers=headers or {})
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    return mapbox_vector_tile.decode(r.content, default_options={"y_coord_down": True})


def _tile_properties(decoded: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [f["properties"] for layer in decoded.values() for f in layer["features"]
            if f["properties"].get("key") == key]


def _embedded_collections(page: str) -> Iterable[dict[str, Any]]:
    """Every GeoJSON FeatureCollection written into an HTML page (the report maps inline them)."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r'\{\s*"type"\s*:\s*"FeatureCollection"', page):
        try:
            doc, _ = decoder.raw_decode(page, m.start())
        except json.JSONDecodeError:
            continue
        yield doc


# --------------------------------------------------------------------------------------------------
# the public


def test_ogc_items_and_queryables_show_the_band_not_q(client: TestClient, site: dict[str, Any]) -> None:
    key = site["key"]
    item = client.get(f"/collections/risk_source/items/{key}")
    assert item.status_code == 200
    props = item.json()["properties"]
    assert props["q_band"] == site["q_band"] and site["q_band"] in ("Q1", "Q2", "Q3")
    assert "q_value" not in props and "substances" not in props
    _assert_silent("the item", item.json(), site)
    html = client.get(f"/collections/risk_source/items/{key}?f=html")
    assert html.status_code == 200 and site["q_band"] in html.text
    _assert_silent("the item page", NUMBER.findall(html.text), site)
    for fmt in ("json", "html"):
        many = client.get("/collections/risk_source/items", params={"filter": f"key = '{key}'", "f": fmt})
        assert many.status_code == 200
        _assert_silent(f"the items ({fmt})", many.json() if fmt == "json" else NUMBER.findall(many.text), site)
    queryables = client.get("/collections/risk_source/queryables").json()
    assert "q_value" not in queryables["properties"]
    assert queryables["properties"]["q_band"]["enum"] == ["Q0", "Q1", "Q2", "Q3"]
    schema = client.get("/collections/risk_source/schema")
    if schema.status_code == 200:
        assert "q_value" not in schema.json().get("properties", {})


def test_q_cannot_be_narrowed_down_by_filtering_or_sorting(client: TestClient, site: dict[str, Any]) -> None:
    q = site["q_value"]
    for params in ({"filter": f"key = '{site['key']}' AND q_value > {q - 0.001}"},
                   {"filter": json.dumps({"op": ">", "args": [{"property": "q_value"}, 1]}), "filter-lang": "cql2-json"},
                   {"q_value": str(q)},
                   {"sortby": "-q_value"}):
        r = client.get("/collections/risk_source/items", params=params)
        assert r.status_code == 400, (params, r.status_code)
    overlay = client.post("/analysis/overlay", json={
        "left": "risk_source", "predicate": "within", "right": "admin_area", "right_filter": {"code": site["city_code"]},
        "left_filter": f"q_value > {q - 0.001}", "limit": 10})
    assert overlay.status_code == 400
    tiles = client.get(f"/collections/risk_source/tiles/WebMercatorQuad/0/0/0?filter=q_value > {q - 0.001}")
    assert tiles.status_code == 400


def test_vector_tiles_carry_the_band_not_q(client: TestClient, site: dict[str, Any]) -> None:
    tile = TMS.tile(site["lon"], site["lat"], 12)
    z, row, col = tile.z, tile.y, tile.x
    paths = [f"/collections/risk_source/tiles/WebMercatorQuad/{z}/{row}/{col}",
             f"/tiles/WebMercatorQuad/{z}/{row}/{col}",
             f"/map/tiles/risk_source/{z}/{row}/{col}"]
    for path in paths:
        found = _tile_properties(_tile(client, path), site["key"])
        assert found, f"{path} lacks the source"
        for props in found:
            assert "q_value" not in props
            _assert_silent(path, props, site)
    props = _tile_properties(_tile(client, paths[0]), site["key"])[0]
    assert props["q_band"] == site["q_band"]


def test_nearby_says_nothing_of_q(client: TestClient, site: dict[str, Any]) -> None:
    for f in ("json", "geojson"):
        r = client.get("/nearby", params={"x": site["lon"], "y": site["lat"], "radius": 300, "f": f})
        assert r.status_code == 200, r.text
        assert site["key"] in r.text
        _assert_silent(f"/nearby ({f})", r.json(), site)


def test_grade_explanation_gives_bands_to_the_public(client: TestClient, site: dict[str, Any]) -> None:
    r = client.get(f"/analysis/grade/{site['key']}")
    assert r.status_code == 200, r.text
    doc = r.json()
    _assert_silent("the grade explanation", doc, site)
    q_step = next(s for s in doc["steps"] if s["step"] == 1)
    assert "q_air" not in q_step and "q_water" not in q_step
    assert max(q_step["q_air_band"], q_step["q_water_band"]) == site["q_band"]
    assert isinstance(q_step["substances"], str) and "restricted" in q_step["substances"]


def test_overlay_and_border_hazards_say_nothing_of_q(client: TestClient, site: dict[str, Any]) -> None:
    r = client.post("/analysis/overlay", json={
        "left": "risk_source", "predicate": "within", "right": "admin_area",
        "left_filter": {"key": site["key"]}, "right_filter": {"code": site["city_code"]}, "limit": 10})
    assert r.status_code == 200, r.text
    assert _features_of(r.json(), site["key"], "left_key"), "the overlay lacks the source"
    assert "left_q_value" not in r.text and "left_q_band" in r.text
    _assert_silent("the overlay", r.json(), site)
    geojson = client.get("/analysis/border-hazards", params={"city": site["city_code"], "limit": 1000})
    assert geojson.status_code == 200
    mine = _features_of(geojson.json(), site["key"], "source_key")
    assert mine, "the border-hazard flags lack the source"
    _assert_silent("the border-hazard flags", mine, site)
    rows = list(csv.DictReader(io.StringIO(client.get("/analysis/border-hazards", params={
        "city": site["city_code"], "f": "csv"}).content.decode("utf-8-sig"))))
    mine = [r for r in rows if r.get("source_key") == site["key"]]
    assert mine
    _assert_silent("the border-hazard CSV", mine, site)
    gpkg = client.get("/analysis/border-hazards", params={"city": site["city_code"], "f": "gpkg"})
    assert gpkg.status_code == 200
    table = pyogrio.read_dataframe(io.BytesIO(gpkg.content))
    mine = table[table["source_key"] == site["key"]].drop(columns="geometry").to_dict("records")
    assert mine
    _assert_silent("the border-hazard GeoPackage", mine, site)


def test_plume_and_bulletin_say_nothing_of_q(client: TestClient, site: dict[str, Any]) -> None:
    release = {"x": site["lon"], "y": site["lat"], "substance": "chlorine", "release_rate_kg_s": 1.0,
               "wind_from_deg": 90.0, "wind_speed_m_s": 3.0, "stability": "D"}
    r = client.post("/analysis/plume", json=release)
    assert r.status_code == 200, r.text
    _assert_silent("the plume", _features_of(r.json(), site["key"]) or r.json(), site)
    for f in ("json", "text", "csv"):
        b = client.get("/analysis/plume/bulletin", params={**release, "f": f})
        assert b.status_code == 200, b.text
        _assert_silent(f"the bulletin ({f})", b.json() if f == "json" else NUMBER.findall(b.text), site)


def test_report_map_shows_the_band_not_q(client: TestClient, site: dict[str, Any]) -> None:
    r = client.get("/maps/overview.html", params={"city": site["city_code"], "layers": "risk_source"})
    assert r.status_code == 200
    features = [f for doc in _embedded_collections(r.text) for f in _features_of(doc, site["key"])]
    assert features, "the report map lacks the source"
    for f in features:
        assert "q_value" not in f["properties"] and f["properties"]["q_band"] == site["q_band"]
        _assert_silent("the report map", f, site)


def test_style_document_names_the_band_in_both_languages(client: TestClient) -> None:
    doc = client.get("/styles.json").json()
    assert doc["values"]["q_band"]["Q1"] == {"en": "Q1 (1 ≤ Q < 10)", "zh": "Q1（1≤Q<10）"}
    fields = {f["name"]: f for f in doc["layers"]["risk_source"]["fields"]}
    assert fields["q_band"]["title_zh"] == "Q值区间" and fields["q_value"]["restricted"] is True


# --------------------------------------------------------------------------------------------------
# analysts


def test_analysts_still_see_q(client: TestClient, site: dict[str, Any]) -> None:
    props = client.get(f"/collections/risk_source/items/{site['key']}", headers=ANALYST).json()["properties"]
    assert props["q_value"] == pytest.approx(site["q_value"]) and props["q_band"] == site["q_band"]
    assert props["substances"][0]["quantity_t"] == pytest.approx(site["secret"]["quantity_t"])
    r = client.get("/collections/risk_source/items", headers=ANALYST,
                   params={"filter": f"key = '{site['key']}' AND q_value > {site['q_value'] - 0.001}"})
    assert r.status_code == 200 and r.json()["numberReturned"] == 1
    q_step = next(s for s in client.get(f"/analysis/grade/{site['key']}", headers=ANALYST).json()["steps"]
                  if s["step"] == 1)
    assert max(q_step["q_air"], q_step["q_water"]) == pytest.approx(site["q_value"])
    assert q_step["substances"][0]["ratio"] == pytest.approx(site["q_value"])


def test_reasons_for_the_public_keep_no_quantity_and_no_q() -> None:
    from services.grading import public_reasons

    reasons = ["substance '苯': quantity -5 t is negative",
               "substance '某物质': CAS '1234-56-7' is not in the HJ 169 table",
               "air Q is 3.27 (≥ 1) but the source has no M score; the bureau scores M on site (risk_source.m_score)",
               "M score 3 lies below every M band (the first starts at 5)"]
    out = public_reasons(reasons)
    assert out == ["the substance inventory cannot be graded (the lines and their problems are shown to analysts, "
                   "stewards and admins)",
                   "air Q is ≥ 1 but the source has no M score; the bureau scores M on site (risk_source.m_score)",
                   "M score 3 lies below every M band (the first starts at 5)"]
