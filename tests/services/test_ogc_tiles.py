"""OGC API Tiles: tile matrix sets, tileset metadata, TileJSON, and MVT tiles holding the right features."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mapbox_vector_tile
import morecantile
import pytest
from fastapi.testclient import TestClient

from layers import db
from layers.catalogue import LAYERS
from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.settings import APISettings

ANALYST = {"X-API-Key": "analyst-key"}
INSPECTOR = {"X-API-Key": "inspector-key"}
TMS = morecantile.tms.get("WebMercatorQuad")
MVT = "application/vnd.mapbox-vector-tile"


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys: Path = tmp_path_factory.mktemp("keys") / "keys.json"
    keys.write_text(json.dumps({"analyst-key": {"user": "ana", "role": "analyst"},
                                "inspector-key": {"user": "ins", "role": "inspector"}}))
    with TestClient(create_app(demo_db, APISettings(api_keys_file=keys))) as c:
        yield c


@pytest.fixture(scope="module")
def site(demo_db: DatabaseSettings) -> dict:
    """A risk site and the z12 tile that holds it."""
    with db.connect(demo_db) as conn:
        row = conn.execute(
            "SELECT key, ST_X(geom) x, ST_Y(geom) y FROM riskatlas.risk_source ORDER BY key LIMIT 1"
        ).fetchone()
    tile = TMS.tile(row["x"], row["y"], 12)
    return {**row, "z": tile.z, "col": tile.x, "row": tile.y}


def _count_in_tile(
    settings: DatabaseSettings, table: str, z: int, x: int, y: int, where: str = "TRUE"
) -> int:
    with db.connect(settings) as conn:
        return conn.execute(
            f"SELECT count(*) n FROM riskatlas.{table} WHERE {where} AND ST_Intersects("
            "ST_Transform(geom, 3857), ST_TileEnvelope(%s, %s, %s, margin => 64.0 / 4096))",
            (z, x, y),
        ).fetchone()["n"]


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def test_tile_matrix_sets(client: TestClient) -> None:
    doc = client.get("/tileMatrixSets").json()
    assert [t["id"] for t in doc["tileMatrixSets"]] == ["WebMercatorQuad"]
    tms = client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert tms["id"] == "WebMercatorQuad" and len(tms["tileMatrices"]) == 25
    assert "3857" in json.dumps(tms["crs"])
    assert client.get("/tileMatrixSets/WorldCRS84Quad").status_code == 404


def test_collection_tilesets_and_metadata(client: TestClient) -> None:
    sets = client.get("/collections/risk_source/tiles").json()["tilesets"]
    assert sets[0]["dataType"] == "vector" and sets[0]["tileMatrixSetURI"].endswith("WebMercatorQuad")
    meta = client.get("/collections/risk_source/tiles/WebMercatorQuad").json()
    item = next(lk for lk in meta["links"] if lk["rel"] == "item")
    assert item["type"] == MVT and item["templated"] is True
    assert item["href"].endswith(
        "/collections/risk_source/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}"
    )
    layer = meta["layers"][0]
    assert layer["id"] == "risk_source" and layer["geometryDimension"] == 0
    assert "name" in layer["propertiesSchema"]["properties"]
    assert "contact" not in layer["propertiesSchema"]["properties"]
    assert "boundingBox" in meta
    assert client.get("/collections/risk_source/tiles/Other").status_code == 404
    assert client.get("/collections/nope/tiles").status_code == 404


def test_tilejson(client: TestClient) -> None:
    doc = client.get("/collections/admin_area/tiles/WebMercatorQuad/tilejson.json").json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"][0].endswith("/collections/admin_area/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert (
        doc["vector_layers"][0]["id"] == "admin_area"
        and doc["vector_layers"][0]["fields"]["name"] == "String"
    )
    x0, y0, x1, y1 = doc["bounds"]
    assert 110 < x0 < x1 < 125 and 25 < y0 < y1 < 40  # the two provinces are in admin_area
    lon, lat, zoom = doc["center"]  # a client opens where the data is, at a zoom where it fills a screen
    assert (lon, lat) == ((x0 + x1) / 2, (y0 + y1) / 2)
    assert 512 <= 256 * 2 ** zoom * (x1 - x0) / 360 <= 2048
    all_layers = client.get("/tiles/WebMercatorQuad/tilejson.json").json()
    assert {v["id"] for v in all_layers["vector_layers"]} == set(LAYERS)
    some = client.get("/tiles/WebMercatorQuad/tilejson.json?collections=river,risk_source").json()
    assert [v["id"] for v in some["vector_layers"]] == ["river", "risk_source"]
    assert some["tiles"][0].endswith("?collections=river,risk_source")


def test_point_tile_holds_the_features_postgis_finds(
    client: TestClient, demo_db: DatabaseSettings, site: dict
) -> None:
    z, x, y = site["z"], site["col"], site["row"]
    r = client.get(f"/collections/risk_source/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    layer = _decode(r.content)["risk_source"]
    assert layer["extent"] == 4096
    assert len(layer["features"]) == _count_in_tile(demo_db, "risk_source", z, x, y)
    feature = next(f for f in layer["features"] if f["properties"]["key"] == site["key"])
    bounds = TMS.xy_bounds(morecantile.Tile(x, y, z))
    mx, my = TMS.xy(site["x"], site["y"])
    ex = (mx - bounds.left) / (bounds.right - bounds.left) * 4096
    ey = (bounds.top - my) / (bounds.top - bounds.bottom) * 4096
    px, py = feature["geometry"]["coordinates"]
    assert abs(px - ex) <= 1 and abs(py - ey) <= 1
    restricted = {f.name for f in LAYERS["risk_source"].fields if f.restricted}
    assert restricted and not restricted & set(feature["properties"])


def test_restricted_fields_only_in_tiles_of_roles_that_may_see_them(client: TestClient, site: dict) -> None:
    path = f"/collections/risk_source/tiles/WebMercatorQuad/{site['z']}/{site['row']}/{site['col']}"
    public = client.get(path)
    analyst = client.get(path, headers=ANALYST)
    assert all("contact" not in f["properties"] for f in _decode(public.content)["risk_source"]["features"])
    assert client.get(path, params={"properties": "name,contact"}).status_code == 400
    # an inspector may not see contacts either: asking for them is refused, not silently dropped
    for field in ("contact", "substances", "q_value"):
        refused = client.get(path, params={"properties": f"name,{field}"}, headers=INSPECTOR)
        assert refused.status_code == 400 and field in refused.json()["description"], field
    inspector = _decode(client.get(path, headers=INSPECTOR).content)["risk_source"]["features"]
    assert inspector and all("contact" not in f["properties"] for f in inspector)
    chosen = client.get(path, params={"properties": "name,contact"}, headers=ANALYST)
    features = _decode(chosen.content)["risk_source"]["features"]
    assert any("contact" in f["properties"] for f in features)
    assert all(set(f["properties"]) <= {"name", "contact"} for f in features)
    assert public.headers["cache-control"].startswith("public")
    assert analyst.headers["cache-control"].startswith("private")
    multi = client.get(
        f"/tiles/WebMercatorQuad/{site['z']}/{site['row']}/{site['col']}?collections=risk_source"
    )
    assert all("contact" not in f["properties"] for f in _decode(multi.content)["risk_source"]["features"])


def test_etag_and_if_none_match(client: TestClient, site: dict) -> None:
    path = f"/collections/risk_source/tiles/WebMercatorQuad/{site['z']}/{site['row']}/{site['col']}"
    first = client.get(path)
    etag = first.headers["etag"]
    assert etag.startswith('"') and "max-age=" in first.headers["cache-control"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(path, headers={"If-None-Match": f'W/{etag}, "x"'}).status_code == 304


def test_empty_tile_is_204(client: TestClient) -> None:
    r = client.get("/collections/risk_source/tiles/WebMercatorQuad/10/100/100")  # the Arctic Ocean
    assert r.status_code == 204 and r.content == b"" and "etag" in r.headers


@pytest.mark.parametrize(
    "path, status",
    [
        ("/collections/risk_source/tiles/WebMercatorQuad/25/0/0", 400),
        ("/collections/risk_source/tiles/WebMercatorQuad/3/8/0", 400),
        ("/collections/risk_source/tiles/WebMercatorQuad/3/0/8", 400),
        ("/collections/risk_source/tiles/WebMercatorQuad/-1/0/0", 400),
        ("/collections/risk_source/tiles/WebMercatorQuad/a/0/0", 400),
        ("/collections/risk_source/tiles/WebMercatorQuad/3/0/99999999999999999999", 400),
        ("/collections/risk_source/tiles/Other/3/0/0", 404),
        ("/collections/nope/tiles/WebMercatorQuad/3/0/0", 404),
        ("/tiles/WebMercatorQuad/3/9/0", 400),
        ("/tiles/WebMercatorQuad/3/0/0?collections=nope", 400),
    ],
)
def test_bad_tile_requests(client: TestClient, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.json()["description"]


def test_filter_on_a_tile(client: TestClient, demo_db: DatabaseSettings, site: dict) -> None:
    z, x, y = site["z"] - 3, site["col"] >> 3, site["row"] >> 3
    path = f"/collections/risk_source/tiles/WebMercatorQuad/{z}/{y}/{x}"
    r = client.get(path, params={"filter": "category = 'chemical'"})
    features = _decode(r.content)["risk_source"]["features"]
    assert features and all(f["properties"]["category"] == "chemical" for f in features)
    assert len(features) == _count_in_tile(demo_db, "risk_source", z, x, y, "category = 'chemical'")
    assert client.get(path, params={"filter": "nope = 1"}).status_code == 400


def test_multi_layer_tile_for_the_web_map(client: TestClient, demo_db: DatabaseSettings, site: dict) -> None:
    z, x, y = 8, site["col"] >> 4, site["row"] >> 4
    r = client.get(f"/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    layers = _decode(r.content)
    for name in LAYERS:
        assert (name in layers) == (_count_in_tile(demo_db, name, z, x, y) > 0), name
    assert len(layers["risk_source"]["features"]) == _count_in_tile(demo_db, "risk_source", z, x, y)
    only = _decode(client.get(f"/tiles/WebMercatorQuad/{z}/{y}/{x}?collections=river").content)
    assert set(only) == {"river"}


def test_polygons_are_simplified_at_low_zoom(client: TestClient, demo_db: DatabaseSettings) -> None:
    tile = TMS.tile(118.8, 32.05, 6)
    layer = _decode(client.get(f"/collections/admin_area/tiles/WebMercatorQuad/6/{tile.y}/{tile.x}").content)[
        "admin_area"
    ]
    assert layer["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    sent = sum(len(json.dumps(f["geometry"]["coordinates"])) for f in layer["features"])
    deep = TMS.tile(118.8, 32.05, 9)
    with db.connect(demo_db) as conn:
        stored = conn.execute("SELECT sum(ST_NPoints(geom)) n FROM riskatlas.admin_area").fetchone()["n"]
    assert stored > 10_000
    assert sent / 10 < stored  # roughly: far fewer vertices than stored were sent
    assert client.get(f"/collections/admin_area/tiles/WebMercatorQuad/9/{deep.y}/{deep.x}").status_code == 200


def test_feature_cap_per_tile(demo_db: DatabaseSettings, site: dict) -> None:
    with TestClient(create_app(demo_db, APISettings(tile_max_features=5))) as c:
        z, x, y = 7, site["col"] >> 5, site["row"] >> 5
        layer = _decode(c.get(f"/collections/risk_source/tiles/WebMercatorQuad/{z}/{y}/{x}").content)[
            "risk_source"
        ]
        assert len(layer["features"]) == 5


def test_tiles_show_new_data_at_once(fresh_db: DatabaseSettings) -> None:
    with TestClient(create_app(fresh_db, APISettings())) as c:
        tile = TMS.tile(118.8, 32.05, 14)
        path = f"/collections/risk_source/tiles/WebMercatorQuad/14/{tile.y}/{tile.x}"
        before = c.get(path)
        assert before.status_code == 204
        with db.connect(fresh_db) as conn:
            conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, synthetic, geom)
                            VALUES ('T-1', 'new', 'chemical', true,
                                    ST_SetSRID(ST_MakePoint(118.8, 32.05), 4326))""")
            conn.commit()
        after = c.get(path, headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert [f["properties"]["key"] for f in _decode(after.content)["risk_source"]["features"]] == ["T-1"]


def test_tiles_carry_what_a_map_needs_unless_asked_for_more(client: TestClient, site: dict) -> None:
    path = f"/collections/risk_source/tiles/WebMercatorQuad/{site['z']}/{site['row']}/{site['col']}"
    props = _decode(client.get(path).content)["risk_source"]["features"][0]["properties"]
    assert {"key", "name", "category", "city_code", "m_air", "m_water", "synthetic"} <= set(props)
    assert "address" not in props and "source" not in props
    meta = client.get("/collections/risk_source/tiles/WebMercatorQuad").json()
    assert set(meta["layers"][0]["propertiesSchema"]["properties"]) >= set(props)
    props = _decode(client.get(path, params={"properties": "address"}).content)["risk_source"]["features"][0][
        "properties"
    ]
    assert set(props) == {"address"}
    assert client.get(path, params={"properties": "substances"}).status_code == 400


def test_points_are_aggregated_in_bins_above_a_count(client: TestClient, demo_db: DatabaseSettings,
                                                     site: dict) -> None:
    """bins-above: a tile holding more sources than that sends `risk_source_bins`, whose counts by level add
    up to every source in the tile (not the first few thousand); a tile holding few sends single points."""
    z, x, y = 7, site["col"] >> 5, site["row"] >> 5
    with db.connect(demo_db) as conn:
        exact = conn.execute(
            "SELECT count(*) n, count(*) FILTER (WHERE risk_level = 'major') major, "
            "count(*) FILTER (WHERE risk_level IS NULL) none FROM riskatlas.risk_source "
            "WHERE ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(%s, %s, %s))", (z, x, y)).fetchone()
    assert exact["n"] > 100
    r = client.get(f"/collections/risk_source/tiles/WebMercatorQuad/{z}/{y}/{x}?bins-above=50")
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    layers = _decode(r.content)
    assert set(layers) == {"risk_source_bins"}
    bins = [f["properties"] for f in layers["risk_source_bins"]["features"]]
    assert 1 < len(bins) <= (4096 // 64) ** 2
    assert sum(b["n"] for b in bins) == exact["n"]
    assert sum(b["n_major"] for b in bins) == exact["major"] and sum(b["n_none"] for b in bins) == exact["none"]
    assert all(b["n"] == b["n_major"] + b["n_larger"] + b["n_general"] + b["n_none"] for b in bins)
    for f in layers["risk_source_bins"]["features"]:
        px, py = f["geometry"]["coordinates"]
        assert 0 < px < 4096 and 0 < py < 4096 and (px - 32) % 64 == 0 and (py - 32) % 64 == 0
    # few sources in the tile: single points, as without the parameter
    few = client.get(f"/collections/risk_source/tiles/WebMercatorQuad/{z}/{y}/{x}?bins-above={exact['n'] + 500}")
    assert set(_decode(few.content)) == {"risk_source"}
    # the web map's tile: the point layers aggregate, areas and lines are untouched
    both = _decode(client.get(f"/tiles/WebMercatorQuad/{z}/{y}/{x}?bins-above=50").content)
    assert "risk_source_bins" in both and "risk_source" not in both and "admin_area" in both
    assert client.get(f"/tiles/WebMercatorQuad/{z}/{y}/{x}?bins-above=0").status_code == 400
    # the planner's map's lean tiles: the same cells, also under its filter
    lean = _decode(client.get(f"/map/tiles/risk_source/{z}/{y}/{x}?bins-above=50").content)
    assert sum(f["properties"]["n"] for f in lean["risk_source_bins"]["features"]) == exact["n"]
    major = _decode(client.get(f"/map/tiles/risk_source/{z}/{y}/{x}",
                               params={"bins-above": 1, "filter": "risk_level = 'major'"}).content)
    assert sum(f["properties"]["n"] for f in major["risk_source_bins"]["features"]) == exact["major"]
    assert client.get(f"/map/tiles/risk_source/{z}/{y}/{x}?bins-above=0").status_code == 400
