"""Simplified geometry of lines and areas on the items endpoints: ``simplify`` (metres) and ``zoom``.

Against the demo region's real boundaries: the bytes drop, every area stays a valid MultiPolygon, the
rings stay within the tolerance in metres of the stored ones (measured in a transverse Mercator of each
feature, independent of the frame the server simplifies in), bad values are 400s naming the parameter,
point layers ignore both, and the OpenAPI document and the collection pages declare them.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from gis.simplify import half_pixel_m
from layers import db
from layers.settings import DatabaseSettings
from services.query.clauses import GEOM
from services.query.simplify import Simplification, simplified_sql
from services.web.app import create_app
from services.web.settings import APISettings

ITEMS = "/collections/admin_area/items?limit=1000"


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db, APISettings())) as c:
        yield c


@pytest.fixture(scope="module")
def stored(client: TestClient) -> dict:
    r = client.get(ITEMS)
    assert r.status_code == 200
    return {"bytes": len(r.content), "features": {f["id"]: f for f in r.json()["features"]}}


def _sql(settings: DatabaseSettings, query: str, params: tuple = ()) -> list[dict]:
    with db.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def _vertices(geometry: dict) -> int:
    return orjson.dumps(geometry["coordinates"]).count(b"],[") + 1


def _validity(settings: DatabaseSettings, features: list[dict]) -> list[dict]:
    """Per feature: the returned geometry's validity, type and emptiness, as PostGIS reads the GeoJSON."""
    docs = [orjson.dumps(f["geometry"]).decode() for f in features]
    return _sql(
        settings,
        "SELECT ST_IsValid(g) AS valid, GeometryType(g) AS kind, ST_IsEmpty(g) AS empty "
        "FROM (SELECT ST_GeomFromGeoJSON(d) AS g FROM unnest(%s::text[]) AS d) s",
        (docs,),
    )


HALF_PIXEL = "half a pixel at each feature's latitude"


@pytest.mark.parametrize(("query", "said"), [
    ("&zoom=5", {"zoom": 5, "tolerance": HALF_PIXEL}),  # some areas need the fallbacks there
    ("&zoom=8", {"zoom": 8, "tolerance": HALF_PIXEL}),
    ("&zoom=12", {"zoom": 12, "tolerance": HALF_PIXEL}),
    ("&simplify=100", {"simplify": 100.0, "unit": "m"}),
])
def test_areas_come_smaller_valid_and_whole(
    client: TestClient, stored: dict, demo_db: DatabaseSettings, query: str, said: dict
) -> None:
    r = client.get(ITEMS + query)
    assert r.status_code == 200
    doc = r.json()
    assert len(r.content) < 0.35 * stored["bytes"], f"{query}: {len(r.content)} of {stored['bytes']} bytes"
    assert doc["simplification"] == said
    feats = {f["id"]: f for f in doc["features"]}
    assert feats.keys() == stored["features"].keys(), "every area, none dropped"
    for fid, f in feats.items():
        full = stored["features"][fid]
        assert f["properties"] == full["properties"]
        assert _vertices(f["geometry"]) <= _vertices(full["geometry"])
    checks = _validity(demo_db, doc["features"])
    assert all(c["valid"] and c["kind"] == "MULTIPOLYGON" and not c["empty"] for c in checks)


#: A shell whose bottom edge has a shallow notch (40 m deep) holding an island: Douglas-Peucker at 200 m
#: cuts the notch off and the island ends inside the shell (nested shells). Units of about 10 m near 32° N.
NOTCHED = """
SELECT ST_Multi(ST_Scale(ST_Translate(ST_GeomFromText(
  'MULTIPOLYGON(((0 0,30 0,30 4,40 4,40 0,70 0,70 50,0 50,0 0)),((32 1,38 1,38 3,32 3,32 1)))'),
  118.5 * 9450, 32 * 11090), 1 / 9450.0, 1 / 11090.0)) AS geom
"""


def test_an_area_that_simplification_would_break_comes_out_valid(demo_db: DatabaseSettings) -> None:
    expr = simplified_sql(GEOM, Simplification(metres=200), "MultiPolygon")
    with db.connect(demo_db) as conn:
        row = conn.execute(
            "SELECT ST_IsValid(geom) AS stored_valid, "
            "ST_IsValid(ST_Simplify(ST_Scale(geom, 94500, 110900), 200, true)) AS plain_valid, "
            f"ST_IsValid(s) AS valid, GeometryType(s) AS kind, ST_Area(s::geography) AS area, "
            "ST_Area(geom::geography) AS stored_area "
            f"FROM ({NOTCHED}) n, LATERAL (SELECT {expr.text.as_string(conn)} AS s) x",
            expr.params,
        ).fetchone()
    assert row["stored_valid"] and not row["plain_valid"], "the case needs the fallback"
    assert row["valid"] and row["kind"] == "MULTIPOLYGON"
    assert row["area"] == pytest.approx(row["stored_area"], rel=0.01)


def test_a_coarser_zoom_gives_fewer_bytes(client: TestClient, stored: dict) -> None:
    sizes = [len(client.get(f"{ITEMS}&zoom={z}").content) for z in (6, 8, 10, 12, 14)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert sizes[-1] < stored["bytes"]
    assert len(client.get(ITEMS + "&simplify=0").content) == pytest.approx(stored["bytes"], abs=200), "0: as stored"


#: A ring's distance (m) from the stored one: both in a transverse Mercator of the feature's own meridian;
#: the returned lines are densified in lon/lat first, since GeoJSON draws them straight in lon/lat.
HAUSDORFF = """
WITH f AS (SELECT a.geom AS stored, ST_GeomFromGeoJSON(%(returned)s) AS returned,
                  '+proj=tmerc +lat_0=0 +lon_0=' || ST_X(ST_Centroid(a.geom)) || ' +k=1 +ellps=WGS84 +units=m' AS tm
           FROM riskatlas.admin_area a WHERE a.code = %(code)s)
SELECT ST_HausdorffDistance(ST_Transform(stored, tm), ST_Transform(ST_Segmentize(returned, 0.0002), tm)) AS metres,
       ST_YMin(stored) AS y0, ST_YMax(stored) AS y1
FROM f
"""


@pytest.mark.parametrize("query", ["simplify=100", "simplify=30", "zoom=10"])
def test_rings_stay_within_the_tolerance_in_metres(
    client: TestClient, demo_db: DatabaseSettings, query: str
) -> None:
    codes = [r["code"] for r in _sql(
        demo_db,
        "SELECT code FROM riskatlas.admin_area WHERE level = 'county' AND ST_NPoints(geom) BETWEEN 600 AND 2500 "
        "ORDER BY code LIMIT 6",
    )]
    assert len(codes) == 6
    for code in codes:
        returned = client.get(f"/collections/admin_area/items/{code}?{query}").json()["geometry"]
        row = _sql(demo_db, HAUSDORFF, {"returned": orjson.dumps(returned).decode(), "code": code})[0]
        name, value = query.split("=")
        tolerance = float(value) if name == "simplify" else half_pixel_m(int(value), (row["y0"] + row["y1"]) / 2)
        # within the tolerance (1 % for the projection and the 7 decimals), and simplified at all
        assert tolerance / 3 < row["metres"] <= tolerance * 1.01 + 0.05, (code, query, row["metres"], tolerance)


def test_one_item_is_simplified_and_its_links_keep_the_parameter(client: TestClient, stored: dict,
                                                                 demo_db: DatabaseSettings) -> None:
    r = client.get("/collections/admin_area/items/320100?zoom=6")
    assert r.status_code == 200
    full = orjson.dumps(stored["features"]["320100"])
    assert len(r.content) < len(full) / 10
    assert _validity(demo_db, [r.json()])[0]["valid"]
    self_link = next(lk for lk in r.json()["links"] if lk["rel"] == "self")
    assert "zoom=6" in self_link["href"]
    html = client.get("/collections/admin_area/items/320100?zoom=6&f=html")
    assert html.status_code == 200 and "320100" in html.text


def test_pages_carry_the_parameter_to_the_next_page(client: TestClient) -> None:
    doc = client.get("/collections/admin_area/items?limit=10&zoom=9").json()
    nxt = next(lk for lk in doc["links"] if lk["rel"] == "next")
    assert "zoom=9" in nxt["href"]
    assert client.get("/collections/admin_area/items?limit=10&zoom=9&f=html").status_code == 200


def test_other_crs_are_simplified_too(client: TestClient) -> None:
    for crs in ("urn:riskatlas:crs:gcj02", "http://www.opengis.net/def/crs/EPSG/0/4326"):
        full = client.get(f"{ITEMS}&crs={crs}")
        small = client.get(f"{ITEMS}&crs={crs}&zoom=8")
        assert small.status_code == 200 and len(small.content) < 0.15 * len(full.content), crs
        assert small.headers["content-crs"] == full.headers["content-crs"]


def test_downloads_are_simplified_too(client: TestClient) -> None:
    for fmt in ("csv", "gpkg"):
        full = client.get(f"{ITEMS}&f={fmt}")
        small = client.get(f"{ITEMS}&f={fmt}&zoom=8")
        assert small.status_code == 200 and len(small.content) < 0.2 * len(full.content), fmt
        assert small.headers["ogc-numberreturned"] == full.headers["ogc-numberreturned"] == "71"


def test_river_lines_keep_their_ends(client: TestClient, demo_db: DatabaseSettings) -> None:
    full = {f["id"]: f for f in client.get("/collections/river/items?limit=1000").json()["features"]}
    doc = client.get("/collections/river/items?limit=1000&simplify=200").json()
    assert sum(_vertices(f["geometry"]) for f in doc["features"]) < sum(_vertices(f["geometry"]) for f in full.values())
    for f in doc["features"]:
        ends = full[f["id"]]["geometry"]["coordinates"]
        assert f["geometry"]["coordinates"][0] == ends[0] and f["geometry"]["coordinates"][-1] == ends[-1], (
            "the network's nodes stay where they are")
    assert all(c["valid"] and c["kind"] == "LINESTRING" for c in _validity(demo_db, doc["features"]))


def test_point_layers_ignore_the_parameters(client: TestClient) -> None:
    plain = client.get("/collections/risk_source/items?limit=50").json()
    for query in ("zoom=3", "simplify=5000"):
        doc = client.get(f"/collections/risk_source/items?limit=50&{query}").json()
        assert doc["features"] == plain["features"] and "simplification" not in doc
    assert client.get("/collections/risk_source/items?limit=5&zoom=99").status_code == 400, "still checked"


BAD = [
    ("simplify=-1", "simplify"),
    ("simplify=abc", "simplify"),
    ("simplify=nan", "simplify"),
    ("simplify=inf", "simplify"),
    ("simplify=1e9", "simplify"),
    ("zoom=-1", "zoom"),
    ("zoom=23", "zoom"),
    ("zoom=8.5", "zoom"),
    ("zoom=x", "zoom"),
    ("zoom=8&simplify=10", "simplify"),
]


@pytest.mark.parametrize("path", ["/collections/admin_area/items", "/collections/admin_area/items/320100"])
@pytest.mark.parametrize(("query", "name"), BAD)
def test_bad_values_are_400_naming_the_parameter(client: TestClient, path: str, query: str, name: str) -> None:
    r = client.get(f"{path}?{query}")
    assert r.status_code == 400, (query, r.text)
    assert name in r.json()["description"]


def test_openapi_declares_simplify_and_zoom(client: TestClient) -> None:
    doc = client.get("/api").json()
    for path in ("/collections/{collectionId}/items", "/collections/{collectionId}/items/{featureId}",
                 "/collections/admin_area/items", "/collections/river/items"):
        params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}
        simplify, zoom = params["simplify"], params["zoom"]
        assert simplify["in"] == "query" and simplify["schema"]["type"] == "number"
        assert simplify["schema"]["minimum"] == 0 and "metres" in simplify["description"]
        assert zoom["schema"] == {**zoom["schema"], "type": "integer", "minimum": 0, "maximum": 22}
    points = {p["name"] for p in doc["paths"]["/collections/risk_source/items"]["get"]["parameters"]}
    assert "bbox" in points and not {"simplify", "zoom"} & points, "a point layer's path leaves them out"


def test_collections_describe_the_parameters(client: TestClient) -> None:
    doc = client.get("/collections/admin_area").json()
    assert set(doc["simplification"]["parameters"]) == {"simplify", "zoom"}
    example = doc["simplification"]["example"]
    assert "zoom=8" in example and client.get(example.replace("http://testserver", "")).status_code == 200
    assert "simplification" not in client.get("/collections/risk_source").json()
    html = client.get("/collections/admin_area?f=html").text
    assert "简化几何" in html and "<code>simplify</code>" in html and "<code>zoom</code>" in html
    assert "简化几何" not in client.get("/collections/risk_source?f=html").text
