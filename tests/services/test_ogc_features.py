"""OGC API Features Part 1 over the demo region: every endpoint, paging, bbox, HTML, roles, fresh data."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

from layers import db
from layers.catalogue import LAYERS
from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.ogc.extents import ExtentCache
from services.web.settings import APISettings

ANALYST = {"X-API-Key": "analyst-key"}
INSPECTOR = {"X-API-Key": "inspector-key"}
RESTRICTED = ("substances", "contact")


def _keys_file(folder: Path) -> Path:
    path = folder / "keys.json"
    path.write_text(
        json.dumps(
            {
                "analyst-key": {"user": "ana", "role": "analyst"},
                "inspector-key": {"user": "ian", "role": "inspector"},
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(demo_db, APISettings(api_keys_file=_keys_file(tmp_path_factory.mktemp("keys"))))
    with TestClient(app) as c:
        yield c


def _sql(settings: DatabaseSettings, query: str, params: tuple = ()) -> list[dict]:
    with db.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def _rel(doc: dict, rel: str, type_: str | None = None) -> dict | None:
    return next(
        (lk for lk in doc["links"] if lk["rel"] == rel and (type_ is None or lk.get("type") == type_)), None
    )


def test_landing_page_links_to_api_conformance_and_collections(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert _rel(doc, "service-desc")["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert _rel(doc, "conformance")["href"].endswith("/conformance")
    assert _rel(doc, "data")["href"].endswith("/collections")
    assert _rel(doc, "self")["type"] == "application/json"
    assert _rel(doc, "alternate")["type"] == "text/html"


def test_conformance_declares_features_crs_filter_and_tiles(client: TestClient) -> None:
    classes = client.get("/conformance").json()["conformsTo"]
    for expected in (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
        "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    ):
        assert expected in classes


def test_api_is_openapi_3_0_with_one_items_path_per_collection(client: TestClient) -> None:
    r = client.get("/api")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json;version=3.0")
    doc = r.json()
    assert doc["openapi"].startswith("3.0")
    assert "/collections/{collectionId}/items" in doc["paths"]
    for name in LAYERS:
        params = {p["name"] for p in doc["paths"][f"/collections/{name}/items"]["get"]["parameters"]}
        assert {"bbox", "limit", "filter", "filter-lang", "crs"} <= params
    text = json.dumps(doc)
    assert (
        '"type": "null"' not in text
        and "422" not in doc["paths"]["/collections/{collectionId}/items"]["get"]["responses"]
    )
    limit = next(
        p
        for p in doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == 10_000 and limit["schema"]["default"] == 100


def test_collections_list_every_layer_with_extent_and_crs(
    client: TestClient, demo_db: DatabaseSettings
) -> None:
    doc = client.get("/collections").json()
    ids = [c["id"] for c in doc["collections"]]
    assert ids == [*LAYERS, "observations"]  # every layer of the catalogue, then the observations
    rs = next(c for c in doc["collections"] if c["id"] == "risk_source")
    truth = _sql(
        demo_db,
        "SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 "
        "FROM (SELECT ST_Extent(geom) e FROM riskatlas.risk_source) s",
    )[0]
    assert rs["extent"]["spatial"]["bbox"][0] == pytest.approx(
        [truth["x0"], truth["y0"], truth["x1"], truth["y1"]]
    )
    assert rs["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert (
        "urn:riskatlas:crs:gcj02" in rs["crs"] and "http://www.opengis.net/def/crs/EPSG/0/4326" in rs["crs"]
    )
    items = _rel(rs, "items", "application/geo+json")
    assert items["href"].endswith("/collections/risk_source/items?f=json")
    assert _rel(rs, "http://www.opengis.net/def/rel/ogc/1.0/queryables")


def test_one_collection_and_unknown_collection(client: TestClient) -> None:
    r = client.get("/collections/river")
    assert r.status_code == 200 and r.json()["id"] == "river"
    r = client.get("/collections/nope")
    assert r.status_code == 404
    assert r.json()["code"] == "NotFound" and "risk_source" in r.json()["description"]
    assert client.get("/collections/nope/items").status_code == 404


def test_items_default_page_counts_and_links(client: TestClient, demo_db: DatabaseSettings) -> None:
    total = _sql(demo_db, "SELECT count(*) n FROM riskatlas.risk_source")[0]["n"]
    r = client.get("/collections/risk_source/items")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberMatched"] == total and doc["numberReturned"] == 100 == len(doc["features"])
    assert doc["timeStamp"].endswith("Z")
    nxt = _rel(doc, "next")
    assert nxt["type"] == "application/geo+json" and _rel(doc, "prev") is None
    assert _rel(doc, "self")["type"] == "application/geo+json"
    assert _rel(doc, "alternate")["type"] == "text/html"
    assert _rel(doc, "collection")["type"] == "application/json"
    assert parse_qs(urlparse(nxt["href"]).query)["offset"] == ["100"]


def test_paging_visits_every_feature_once(client: TestClient, demo_db: DatabaseSettings) -> None:
    expected = {r["key"] for r in _sql(demo_db, "SELECT key FROM riskatlas.water_reserve")}
    seen: list[str] = []
    url = "/collections/water_reserve/items?limit=7"
    pages = 0
    while url:
        doc = client.get(url).json()
        seen += [f["id"] for f in doc["features"]]
        nxt = _rel(doc, "next")
        url = nxt["href"].replace("http://testserver", "") if nxt else None
        pages += 1
        if pages > 1:
            assert _rel(doc, "prev") is not None
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected


def test_bbox_selects_exactly_what_postgis_selects(client: TestClient, demo_db: DatabaseSettings) -> None:
    box = (118.6, 31.9, 118.95, 32.2)
    truth = {
        r["key"]
        for r in _sql(
            demo_db,
            "SELECT key FROM riskatlas.risk_source WHERE "
            "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
            box,
        )
    }
    assert truth
    doc = client.get(
        "/collections/risk_source/items", params={"bbox": ",".join(map(str, box)), "limit": 5000}
    ).json()
    assert {f["id"] for f in doc["features"]} == truth and doc["numberMatched"] == len(truth)
    for f in doc["features"]:
        x, y = f["geometry"]["coordinates"]
        assert box[0] <= x <= box[2] and box[1] <= y <= box[3]
    # 6 numbers (with heights) are accepted too
    doc6 = client.get(
        "/collections/risk_source/items",
        params={"bbox": f"{box[0]},{box[1]},0,{box[2]},{box[3]},100", "limit": 5000},
    ).json()
    assert doc6["numberMatched"] == len(truth)


def test_polygon_bbox_uses_the_geometry_not_its_envelope(
    client: TestClient, demo_db: DatabaseSettings
) -> None:
    box = (118.7, 32.0, 118.72, 32.02)
    truth = {
        r["key"]
        for r in _sql(
            demo_db,
            "SELECT key FROM riskatlas.admin_area WHERE "
            "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
            box,
        )
    }
    doc = client.get("/collections/admin_area/items", params={"bbox": ",".join(map(str, box))}).json()
    assert {f["id"] for f in doc["features"]} == truth


@pytest.mark.parametrize(
    "bbox, needle",
    [
        ("1,2,3", "4 (minx,miny,maxx,maxy)"),
        ("1,2,3,4,5", "4 (minx,miny,maxx,maxy)"),
        ("nan,1,2,3", "finite"),
        ("a,b,c,d", "not a number"),
        ("119,32,118,33", "lower corner"),
        ("118,33,119,32", "lower corner"),
        ("100,-95,120,10", "latitudes"),
        ("1,2,3,4,5,6,7", "4 or 6"),
        ("", "not a number"),
        ("inf,1,2,3", "finite"),
    ],
)
def test_bad_bbox_is_400_saying_why(client: TestClient, bbox: str, needle: str) -> None:
    r = client.get("/collections/risk_source/items", params={"bbox": bbox})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "InvalidParameterValue"
    assert needle in r.json()["description"]


@pytest.mark.parametrize("limit", ["0", "-1", "10001", "99999999999999999999", "abc", "1.5"])
def test_bad_limit_is_400(client: TestClient, limit: str) -> None:
    r = client.get(f"/collections/risk_source/items?limit={limit}")
    assert r.status_code == 400, r.text
    assert "limit" in r.json()["description"]


def test_max_limit_and_offset(client: TestClient, demo_db: DatabaseSettings) -> None:
    total = _sql(demo_db, "SELECT count(*) n FROM riskatlas.risk_source")[0]["n"]
    doc = client.get("/collections/risk_source/items?limit=10000").json()
    assert doc["numberReturned"] == total and _rel(doc, "next") is None
    doc = client.get(f"/collections/risk_source/items?offset={total - 3}").json()
    assert doc["numberReturned"] == 3 and doc["numberMatched"] == total and _rel(doc, "prev")
    doc = client.get(f"/collections/risk_source/items?offset={total + 50}").json()
    assert doc["numberReturned"] == 0 and doc["numberMatched"] == total
    assert client.get("/collections/risk_source/items?offset=-1").status_code == 400


def test_single_item_by_key_and_admin_area_by_code(client: TestClient, demo_db: DatabaseSettings) -> None:
    key = _sql(demo_db, "SELECT key FROM riskatlas.river ORDER BY key LIMIT 1")[0]["key"]
    r = client.get(f"/collections/river/items/{key}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    doc = r.json()
    assert doc["type"] == "Feature" and doc["id"] == key and doc["geometry"]["type"] == "LineString"
    assert _rel(doc, "collection") and _rel(doc, "self")
    r = client.get("/collections/admin_area/items/320100")
    assert r.status_code == 200 and r.json()["properties"]["name"] == "南京市"
    r = client.get("/collections/admin_area/items/999999")
    assert r.status_code == 404 and "999999" in r.json()["description"]


def test_properties_and_sortby(client: TestClient, demo_db: DatabaseSettings) -> None:
    # Q is restricted (for a one-substance site it gives the tonnage): the public may neither ask for it
    # nor sort by it; an analyst may do both
    for query in ("properties=name,q_value", "sortby=-q_value"):
        assert client.get(f"/collections/risk_source/items?{query}").status_code == 400, query
    doc = client.get("/collections/risk_source/items?properties=name,q_value&sortby=-q_value&limit=20",
                     headers=ANALYST).json()
    assert all(set(f["properties"]) == {"name", "q_value"} for f in doc["features"])
    values = [f["properties"]["q_value"] for f in doc["features"]]
    top = [
        r["q_value"]
        for r in _sql(
            demo_db,
            "SELECT q_value FROM riskatlas.risk_source ORDER BY q_value DESC NULLS LAST, key LIMIT 20",
        )
    ]
    assert values == top
    doc = client.get("/collections/water_reserve/items?sortby=%2Bname,-key&limit=50").json()
    names = [f["properties"]["name"] for f in doc["features"]]
    truth = [
        r["name"]
        for r in _sql(
            demo_db,
            "SELECT name FROM riskatlas.water_reserve ORDER BY name ASC NULLS LAST, key DESC LIMIT 50",
        )
    ]
    assert names == truth
    doc = client.get("/collections/water_reserve/items?properties=").json()
    assert all(f["properties"] == {} for f in doc["features"])
    for bad, named in (
        ("properties=nope", "nope"),
        ("sortby=nope", "nope"),
        ("sortby=-substances", "substances"),
        ("properties=name,geom", "geom"),
        ("sortby=na me", "encode"),
    ):
        r = client.get(f"/collections/risk_source/items?{bad}")
        assert r.status_code == 400, bad
        assert named in r.json()["description"], (bad, r.text)


def test_equality_query_parameters_and_unknown_parameters(
    client: TestClient, demo_db: DatabaseSettings
) -> None:
    n = _sql(demo_db, "SELECT count(*) n FROM riskatlas.risk_source WHERE category = 'chemical'")[0]["n"]
    doc = client.get("/collections/risk_source/items?category=chemical&limit=1").json()
    assert doc["numberMatched"] == n > 0
    doc = client.get("/collections/admin_area/items?level=city&parent_code=320000").json()
    truth = _sql(
        demo_db, "SELECT count(*) n FROM riskatlas.admin_area WHERE level='city' AND parent_code='320000'"
    )
    assert doc["numberMatched"] == truth[0]["n"] > 0
    r = client.get("/collections/risk_source/items?colour=red")
    assert r.status_code == 400 and "colour" in r.json()["description"]
    r = client.get("/collections/risk_source/items?m_score=high")
    assert r.status_code == 400 and "integer" in r.json()["description"]
    r = client.get("/collections/risk_source/items?contact=x")
    assert r.status_code == 400  # restricted: not a parameter for the public


def test_restricted_fields_only_for_roles_that_may_see_them(client: TestClient) -> None:
    public = client.get("/collections/risk_source/items?limit=50").json()
    inspector = client.get("/collections/risk_source/items?limit=50", headers=INSPECTOR).json()
    analyst = client.get("/collections/risk_source/items?limit=50", headers=ANALYST).json()
    for doc in (public, inspector):
        for f in doc["features"]:
            assert not set(RESTRICTED) & set(f["properties"])
    assert all(set(RESTRICTED) <= set(f["properties"]) for f in analyst["features"])
    assert any(f["properties"]["substances"] for f in analyst["features"])
    r = client.get("/collections/risk_source/items?properties=contact")
    assert r.status_code == 400
    assert client.get("/collections/risk_source/items?properties=contact", headers=ANALYST).status_code == 200
    html = client.get("/collections/risk_source/items?f=html&limit=20").text
    assert "contact" not in html and "substances" not in html
    html = client.get("/collections/risk_source/items?f=html&limit=20", headers=ANALYST).text
    assert "substances" in html
    key = public["features"][0]["id"]
    assert "contact" not in client.get(f"/collections/risk_source/items/{key}").json()["properties"]
    assert (
        "contact" in client.get(f"/collections/risk_source/items/{key}", headers=ANALYST).json()["properties"]
    )
    assert client.get("/collections/risk_source/items", headers={"X-API-Key": "wrong"}).status_code == 401


def test_html_views_for_browsers(client: TestClient) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for path in (
        "/",
        "/conformance",
        "/collections",
        "/collections/risk_source",
        "/collections/risk_source/items?limit=5",
        "/collections/admin_area/items/320100",
        "/collections/risk_source/queryables",
    ):
        r = client.get(path, headers=browser)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html"), path
        assert "<html" in r.text and "http://" not in r.text.split("<style>")[1].split("</style>")[0]
    r = client.get("/collections/admin_area/items?f=html")
    assert "南京市" in r.text
    # JSON stays the default for clients that ask for nothing in particular or for JSON
    assert (
        client.get("/collections", headers={"Accept": "*/*"})
        .headers["content-type"]
        .startswith("application/json")
    )
    assert client.get("/collections?f=xml").status_code == 400


def test_describedby_schema_lists_the_role_fields(client: TestClient) -> None:
    props = client.get("/collections/risk_source/schema").json()["properties"]["properties"]["properties"]
    assert "name" in props and "contact" not in props
    props = client.get("/collections/risk_source/schema", headers=ANALYST).json()["properties"]["properties"][
        "properties"
    ]
    assert "contact" in props


def test_a_new_load_shows_up_without_restart(fresh_db: DatabaseSettings) -> None:
    app = create_app(fresh_db, APISettings())
    with TestClient(app) as c:
        app.state.ogc_extents = ExtentCache(ttl=0.0)
        before = c.get("/collections/risk_source/items").json()
        assert before["numberMatched"] == 0
        assert c.get("/collections/risk_source").json()["extent"]["spatial"]["bbox"] == [
            [-180.0, -90.0, 180.0, 90.0]
        ]
        with db.connect(fresh_db) as conn:
            conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, synthetic, geom)
                            VALUES ('T-1', 'new site', 'chemical', true,
                                    ST_SetSRID(ST_MakePoint(118.8, 32.05), 4326))""")
            conn.commit()
        after = c.get("/collections/risk_source/items").json()
        assert after["numberMatched"] == 1 and after["features"][0]["id"] == "T-1"
        assert c.get("/collections/risk_source").json()["extent"]["spatial"]["bbox"] == [
            [118.8, 32.05, 118.8, 32.05]
        ]


def _insert_sites(settings: DatabaseSettings, first: int, n: int, batch: bool) -> None:
    with db.connect(settings) as conn:
        conn.execute(
            """INSERT INTO riskatlas.risk_source (key, name, category, synthetic, geom)
               SELECT 'T-' || g, 'site ' || g, 'chemical', true,
                      ST_SetSRID(ST_MakePoint(118.8 + g * 1e-4, 32.05), 4326)
               FROM generate_series(%s::int, %s::int) g""",
            (first, first + n - 1),
        )
        if batch:  # what an ETL load commits with its rows
            conn.execute(
                "INSERT INTO riskatlas.load_batch (layer, file_name, sha256, status) "
                "VALUES ('risk_source', 'test', 'x', 'committed')"
            )
        conn.commit()


def test_number_matched_follows_loads_while_pages_reuse_the_count(fresh_db: DatabaseSettings) -> None:
    app = create_app(fresh_db, APISettings())
    with TestClient(app) as c:
        _insert_sites(fresh_db, 1, 150, batch=True)
        assert c.get("/collections/risk_source/items?limit=100").json()["numberMatched"] == 150
        assert c.get("/collections/risk_source/items?limit=100&offset=100").json()["numberMatched"] == 150
        assert len(app.state.ogc_counts._entries) == 1  # the second page reused the first page's count
        _insert_sites(fresh_db, 151, 10, batch=True)  # a load: seen at once
        assert c.get("/collections/risk_source/items?limit=100").json()["numberMatched"] == 160
        _insert_sites(fresh_db, 161, 5, batch=False)  # a direct edit: seen once the statistics are flushed
        deadline = time.monotonic() + 15
        while c.get("/collections/risk_source/items?limit=100").json()["numberMatched"] != 165:
            assert time.monotonic() < deadline, "the direct edit was never counted"
            time.sleep(0.2)
        hits = c.get("/collections/risk_source/items?resultType=hits&category=chemical").json()
        assert hits["numberMatched"] == 165 and hits["features"] == []


#: The standards' OpenAPI parameter fragments (schema, style, explode), as published in
#: opengeospatial/ogcapi-features: core/openapi/parameters/{bbox,datetime,limit}.yaml,
#: extensions/crs/openapi/parameters/{crs,bbox-crs}.yaml, Part 3 (filter, filter-lang, filter-crs),
#: property selection (properties) and sorting (sortby). limit's maximum and default are the server's.
STANDARD_FRAGMENTS = """
bbox: {schema: {type: array, minItems: 4, maxItems: 6, items: {type: number}}, style: form, explode: false}
bbox-crs: {schema: {type: string, format: uri}, style: form, explode: false}
crs: {schema: {type: string, format: uri}, style: form, explode: false}
datetime: {schema: {type: string}, style: form, explode: false}
limit: {schema: {type: integer, minimum: 1, maximum: MAX, default: DEFAULT}, style: form, explode: false}
filter: {schema: {type: string}, style: form, explode: false}
filter-lang: {schema: {type: string, enum: [cql2-text, cql2-json], default: cql2-text}, style: form, explode: false}
filter-crs: {schema: {type: string, format: uri}, style: form, explode: false}
properties: {schema: {type: array, items: {type: string}}, style: form, explode: false}
sortby: {schema: {type: array, minItems: 1, items: {type: string, pattern: '[+|-]?[A-Za-z_].*'}}, style: form, explode: false}
"""


def test_every_standard_parameter_matches_the_standards_fragment(client: TestClient) -> None:
    import yaml

    from services.web.settings import APISettings

    settings = APISettings()
    fragments = yaml.safe_load(STANDARD_FRAGMENTS.replace("MAX", str(settings.max_limit))
                               .replace("DEFAULT", str(settings.default_limit)))
    doc = client.get("/api").json()
    seen: set[str] = set()
    for path, item in doc["paths"].items():
        if not path.startswith("/collections"):
            continue
        for op in item.values():
            for p in op.get("parameters", []):
                if p["in"] == "query" and p["name"] in fragments:
                    seen.add(p["name"])
                    got = {k: p.get(k) for k in ("schema", "style", "explode")}
                    if p["name"] == "filter-lang":  # the standard's values first, then the drafts' GDAL 3.6 asks for
                        standard = fragments[p["name"]]["schema"]["enum"]
                        assert got["schema"]["enum"] == standard + ["cql-text", "cql-json"]
                        got["schema"]["enum"] = standard
                    assert got == fragments[p["name"]], f"{path} {p['name']}"
    assert seen == set(fragments), f"not declared anywhere: {set(fragments) - seen}"
    bbox = client.get("/collections/risk_source/items", params={"bbox": "118.5,31.8,119.0,32.2", "limit": 1})
    assert bbox.status_code == 200, "a bbox sent as the fragment says (form, not exploded) is read"


def test_datetime_selects_features_by_their_last_change(client: TestClient, demo_db: DatabaseSettings) -> None:
    url = "/collections/risk_source/items"
    total = _sql(demo_db, "SELECT count(*) AS n FROM riskatlas.risk_source")[0]["n"]
    newest = _sql(demo_db, "SELECT max(updated_at) AS t FROM riskatlas.risk_source")[0]["t"]

    def matched(value: str) -> int:
        r = client.get(url, params={"datetime": value, "limit": 1})
        assert r.status_code == 200, r.text
        return int(r.json()["numberMatched"])

    assert matched("2000-01-01T00:00:00Z/..") == total
    assert matched("../2000-01-01T00:00:00Z") == 0
    assert matched("2000-01-01/2000-12-31") == 0
    assert matched(newest.isoformat()) >= 1, "an instant selects the features changed at that instant"
    assert matched("../..") == total
    for bad, words in (("yesterday", "RFC 3339"), ("2026-12-01T00:00:00Z/2026-11-01T00:00:00Z", "ends before"),
                       ("a/b/c", "more than one")):
        r = client.get(url, params={"datetime": bad})
        assert r.status_code == 400 and "`datetime`" in r.json()["description"] and words in r.json()["description"]


def test_items_as_csv_and_geopackage(client: TestClient, tmp_path: Path) -> None:
    import csv
    import io

    import pyogrio

    params = {"limit": 50, "filter": "city_code = '320100'"}
    geo = client.get("/collections/risk_source/items", params=params).json()
    assert any(lk["type"] == "text/csv" for lk in geo["links"]) and any(
        lk["type"] == "application/geopackage+sqlite3" for lk in geo["links"])
    r = client.get("/collections/risk_source/items", params={**params, "f": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode()) and r.headers["ogc-numberreturned"] == "50"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["id"] for row in rows] == [str(f["id"]) for f in geo["features"]]
    assert [row["name"] for row in rows] == [f["properties"]["name"] for f in geo["features"]]
    assert rows[0]["lon"] and "contact" not in rows[0], "restricted fields stay out of CSV too"
    polygons = client.get("/collections/admin_area/items", params={"limit": 2, "f": "csv"})
    assert "wkt" in polygons.content.decode("utf-8-sig").splitlines()[0].split(",")
    g = client.get("/collections/risk_source/items", params={**params, "f": "gpkg"})
    assert g.status_code == 200 and g.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "items.gpkg"
    path.write_bytes(g.content)
    frame = pyogrio.read_dataframe(path, layer="risk_source")
    assert list(frame["name"]) == [f["properties"]["name"] for f in geo["features"]] and frame.crs.to_epsg() == 4326
    assert client.get("/collections/risk_source/items", params={"f": "xlsx"}).status_code == 400


def test_html_views_speak_chinese_first_with_value_labels_and_a_small_map(client: TestClient) -> None:
    r = client.get("/collections/risk_source/items", params={"f": "html", "limit": 20})
    assert r.status_code == 200 and '<html lang="zh-CN">' in r.text
    assert "风险源" in r.text and "状态<br><small>Status</small>" in r.text, "field titles in Chinese, then English"
    assert re.search(r"(在产|关停|在建) <small class=\"muted\">(active|closed|under-construction)</small>", r.text)
    assert r.text.count("<circle data-id=") == 20, "a small map with every feature of the page"
    one = client.get("/collections/admin_area/items", params={"f": "html", "limit": 2})
    assert "<path data-id=" in one.text and "vertices" in one.text
    feature = client.get("/collections/risk_source/items", params={"limit": 1}).json()["features"][0]
    page = client.get(f"/collections/risk_source/items/{feature['id']}", params={"f": "html"})
    assert page.status_code == 200 and "<circle data-id=" in page.text and "风险等级" in page.text
    projected = client.get("/collections/risk_source/items",
                           params={"f": "html", "limit": 2, "crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert "<svg" not in projected.text, "drawn only from CRS84 (lon, lat) coordinates"
