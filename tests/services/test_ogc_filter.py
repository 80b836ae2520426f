"""OGC API Features Part 3: CQL2 text and JSON filters, queryables, and the SQL they become."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from gis.crs import CRS84, GCJ02, from_wgs84
from layers import db
from layers.catalogue import RISK_SOURCE
from layers.settings import DatabaseSettings
from services.errors import InvalidParameter
from services.identity import Identity
from services.query.cql import parse, to_sql
from services.query.cql_text import parse as parse_text
from services.query.views import view
from services.web.app import create_app
from services.web.settings import APISettings

ANALYST = {"X-API-Key": "analyst-key"}
PUBLIC_VIEW = view(RISK_SOURCE, Identity())
ANALYST_VIEW = view(RISK_SOURCE, Identity(user="ana", role="analyst"))
ORIGIN = (118.78, 32.04)  # central Nanjing
NEAR_SITE_SQL = (
    "SELECT ST_X(geom) + 0.004 AS x, ST_Y(geom) - 0.003 AS y FROM riskatlas.risk_source ORDER BY key LIMIT 1"
)


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys: Path = tmp_path_factory.mktemp("keys") / "keys.json"
    keys.write_text(json.dumps({"analyst-key": {"user": "ana", "role": "analyst"}}))
    with TestClient(create_app(demo_db, APISettings(api_keys_file=keys))) as c:
        yield c


def _truth(settings: DatabaseSettings, table: str, where: str, params: tuple = ()) -> set[str]:
    with db.connect(settings) as conn:
        rows = conn.execute(f"SELECT key FROM riskatlas.{table} WHERE {where}", params or None).fetchall()
    return {r["key"] for r in rows}


def _ids(client: TestClient, collection: str, headers: dict | None = None, **params: str) -> set[str]:
    r = client.get(
        f"/collections/{collection}/items", params={"limit": 10000, **params}, headers=headers or {}
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["numberMatched"] == len(doc["features"])
    return {f["id"] for f in doc["features"]}


# -- the translation itself -----------------------------------------------------------------------


def _sql_text(clause) -> str:
    with db.connect(_SETTINGS[0]) as conn:
        return clause.text.as_string(conn)


_SETTINGS: list[DatabaseSettings] = []


@pytest.fixture(autouse=True, scope="module")
def _remember(demo_db: DatabaseSettings) -> None:
    _SETTINGS[:] = [demo_db]


def test_literals_are_bound_and_names_quoted_from_the_catalogue() -> None:
    clause = to_sql(
        parse("name = 'x''; DROP TABLE t; --' AND q_value > 3", "cql2-text", 20), ANALYST_VIEW, CRS84
    )
    text = _sql_text(clause)
    assert '"name" = %s::text' in text and '"q_value" > %s::double precision' in text
    assert "DROP" not in text
    assert clause.params == ("x'; DROP TABLE t; --", 3)


def test_and_binds_tighter_than_or_and_not_takes_a_group() -> None:
    node = parse_text("a = 1 OR b = 2 AND c = 3")
    assert type(node).__name__ == "Or" and type(node.rhs).__name__ == "And"
    node = parse_text("NOT (a = 1 OR b = 2)")
    assert type(node).__name__ == "Not" and type(node.sub_node).__name__ == "Or"
    assert parse_text("name = 'O''Brien'").rhs == "O'Brien"


def test_dwithin_binds_a_degree_box_and_the_geometry() -> None:
    clause = to_sql(
        parse("S_DWITHIN(geometry, POINT(118.78 32.04), 1500)", "cql2-text", 20), PUBLIC_VIEW, CRS84
    )
    text = _sql_text(clause)
    assert '"geom" && ST_GeomFromWKB(%s, 4326)' in text
    assert 'ST_DWithin("geom"::geography, ST_GeomFromWKB(%s, 4326)::geography, %s)' in text
    assert clause.params[-1] == 1500.0


# -- results against PostGIS ----------------------------------------------------------------------

CASES = [
    (
        "risk_source",
        "category = 'chemical'",
        {"op": "=", "args": [{"property": "category"}, "chemical"]},
        "category = 'chemical'",
    ),
    (
        "risk_source",
        "m_score >= 10 AND m_score < 50.5",
        {
            "op": "and",
            "args": [
                {"op": ">=", "args": [{"property": "m_score"}, 10]},
                {"op": "<", "args": [{"property": "m_score"}, 50.5]},
            ],
        },
        "m_score >= 10 AND m_score < 50.5",
    ),
    (
        "risk_source",
        "name LIKE '南京%'",
        {"op": "like", "args": [{"property": "name"}, "南京%"]},
        "name LIKE '南京%'",
    ),
    (
        "risk_source",
        "name NOT LIKE '%化工%'",
        {"op": "not", "args": [{"op": "like", "args": [{"property": "name"}, "%化工%"]}]},
        "name NOT LIKE '%化工%'",
    ),
    (
        "risk_source",
        "category IN ('tailings', 'metal-plating')",
        {"op": "in", "args": [{"property": "category"}, ["tailings", "metal-plating"]]},
        "category IN ('tailings', 'metal-plating')",
    ),
    (
        "risk_source",
        "m_score BETWEEN 20 AND 40",
        {"op": "between", "args": [{"property": "m_score"}, 20, 40]},
        "m_score BETWEEN 20 AND 40",
    ),
    (
        "risk_source",
        "risk_level IS NULL",
        {"op": "isNull", "args": [{"property": "risk_level"}]},
        "risk_level IS NULL",
    ),
    (
        "risk_source",
        "NOT (city_code = '320100' OR city_code = '321100')",
        {
            "op": "not",
            "args": [
                {
                    "op": "or",
                    "args": [
                        {"op": "=", "args": [{"property": "city_code"}, "320100"]},
                        {"op": "=", "args": [{"property": "city_code"}, "321100"]},
                    ],
                }
            ],
        },
        "NOT (city_code = '320100' OR city_code = '321100')",
    ),
    (
        "water_reserve",
        "CASEI(kind) = casei('RIVER')",
        {
            "op": "=",
            "args": [{"op": "casei", "args": [{"property": "kind"}]}, {"op": "casei", "args": ["RIVER"]}],
        },
        "lower(kind) = 'river'",
    ),
    (
        "admin_area",
        "level <> 'county' AND name_en IS NOT NULL",
        {
            "op": "and",
            "args": [
                {"op": "<>", "args": [{"property": "level"}, "county"]},
                {"op": "not", "args": [{"op": "isNull", "args": [{"property": "name_en"}]}]},
            ],
        },
        "level <> 'county' AND name_en IS NOT NULL",
    ),
    (
        "risk_source",
        "S_INTERSECTS(geometry, POLYGON((118.6 31.9, 118.95 31.9, 118.95 32.2, 118.6 32.2, 118.6 31.9)))",
        {
            "op": "s_intersects",
            "args": [
                {"property": "geometry"},
                {
                    "type": "Polygon",
                    "coordinates": [
                        [[118.6, 31.9], [118.95, 31.9], [118.95, 32.2], [118.6, 32.2], [118.6, 31.9]]
                    ],
                },
            ],
        },
        "ST_Intersects(geom, ST_MakeEnvelope(118.6, 31.9, 118.95, 32.2, 4326))",
    ),
    (
        "risk_source",
        "S_WITHIN(geom, BBOX(118.6, 31.9, 118.95, 32.2))",
        {"op": "s_within", "args": [{"property": "geom"}, {"bbox": [118.6, 31.9, 118.95, 32.2]}]},
        "ST_Within(geom, ST_MakeEnvelope(118.6, 31.9, 118.95, 32.2, 4326))",
    ),
    (
        "admin_area",
        "S_CONTAINS(geometry, POINT(118.78 32.04))",
        {
            "op": "s_contains",
            "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [118.78, 32.04]}],
        },
        "ST_Contains(geom, ST_SetSRID(ST_MakePoint(118.78, 32.04), 4326))",
    ),
    (
        "river",
        "S_INTERSECTS(geometry, LINESTRING(118.5 32.0, 119.0 32.1)) OR S_CROSSES(geometry, "
        "LINESTRING(118.4 31.5, 118.9 31.6))",
        {
            "op": "or",
            "args": [
                {
                    "op": "s_intersects",
                    "args": [
                        {"property": "geometry"},
                        {"type": "LineString", "coordinates": [[118.5, 32.0], [119.0, 32.1]]},
                    ],
                },
                {
                    "op": "s_crosses",
                    "args": [
                        {"property": "geometry"},
                        {"type": "LineString", "coordinates": [[118.4, 31.5], [118.9, 31.6]]},
                    ],
                },
            ],
        },
        "ST_Intersects(geom, 'SRID=4326;LINESTRING(118.5 32.0, 119.0 32.1)'::geometry) OR "
        "ST_Crosses(geom, 'SRID=4326;LINESTRING(118.4 31.5, 118.9 31.6)'::geometry)",
    ),
    (
        "risk_source",
        "S_DWITHIN(geometry, POINT(118.78 32.04), 12500)",
        {
            "op": "s_dwithin",
            "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [118.78, 32.04]}, 12500],
        },
        "ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(118.78, 32.04), 4326)::geography, 12500)",
    ),
    (
        "protected_area",
        "S_DWITHIN(geometry, POINT(118.78 32.04), 30000) AND kind = 'wetland'",
        {
            "op": "and",
            "args": [
                {
                    "op": "s_dwithin",
                    "args": [
                        {"property": "geometry"},
                        {"type": "Point", "coordinates": [118.78, 32.04]},
                        30000,
                    ],
                },
                {"op": "=", "args": [{"property": "kind"}, "wetland"]},
            ],
        },
        "ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(118.78, 32.04), 4326)::geography, 30000) "
        "AND kind = 'wetland'",
    ),
    (
        "monitoring_station",
        "medium = 'water' AND synthetic = TRUE",
        {
            "op": "and",
            "args": [
                {"op": "=", "args": [{"property": "medium"}, "water"]},
                {"op": "=", "args": [{"property": "synthetic"}, True]},
            ],
        },
        "medium = 'water' AND synthetic",
    ),
]


@pytest.mark.parametrize("collection, text, as_json, where", CASES, ids=[c[1][:40] for c in CASES])
def test_cql2_text_and_json_select_what_sql_selects(
    client: TestClient, demo_db: DatabaseSettings, collection: str, text: str, as_json: dict, where: str
) -> None:
    expected = _truth(demo_db, collection, where)
    assert _ids(client, collection, filter=text) == expected
    assert _ids(client, collection, filter=text, **{"filter-lang": "cql2-text"}) == expected
    assert _ids(client, collection, filter=json.dumps(as_json), **{"filter-lang": "cql2-json"}) == expected


def test_the_cases_are_not_trivial(demo_db: DatabaseSettings) -> None:
    sizes = [len(_truth(demo_db, c, w)) for c, _, _, w in CASES]
    assert sum(1 for n in sizes if n > 0) >= len(CASES) - 2


def test_filter_crs_moves_literals_to_wgs84(client: TestClient, demo_db: DatabaseSettings) -> None:
    with db.connect(demo_db) as conn:
        origin = tuple(conn.execute(NEAR_SITE_SQL).fetchone().values())
    expected = _truth(
        demo_db,
        "risk_source",
        "ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, 3000)",
        origin,
    )
    assert expected
    gx, gy = from_wgs84(*origin, GCJ02)
    got = _ids(
        client,
        "risk_source",
        filter=f"S_DWITHIN(geometry, POINT({gx} {gy}), 3000)",
        **{"filter-crs": "gcj02"},
    )
    assert got == expected
    got = _ids(
        client,
        "risk_source",
        filter=f"S_DWITHIN(geometry, POINT({origin[1]} {origin[0]}), 3000)",
        **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
    )
    assert got == expected
    # A 40 m box around a site, written in GCJ-02, finds it only when filter-crs says so (the offset is
    # hundreds of metres).
    with db.connect(demo_db) as conn:
        site = conn.execute(
            "SELECT key, ST_X(geom) x, ST_Y(geom) y FROM riskatlas.risk_source ORDER BY key LIMIT 1"
        ).fetchone()
    sx, sy = from_wgs84(site["x"], site["y"], GCJ02)
    box = f"S_INTERSECTS(geometry, BBOX({sx - 0.0002}, {sy - 0.0002}, {sx + 0.0002}, {sy + 0.0002}))"
    assert site["key"] in _ids(client, "risk_source", filter=box, **{"filter-crs": "gcj02"})
    assert site["key"] not in _ids(client, "risk_source", filter=box)


def test_dwithin_is_metres_on_the_spheroid(client: TestClient, demo_db: DatabaseSettings) -> None:
    with db.connect(demo_db) as conn:
        rows = conn.execute(
            "SELECT key, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
            "::geography) d FROM riskatlas.risk_source ORDER BY d LIMIT 30",
            ORIGIN,
        ).fetchall()
    radius = (rows[9]["d"] + rows[10]["d"]) / 2
    got = _ids(client, "risk_source", filter=f"S_DWITHIN(geometry, POINT({ORIGIN[0]} {ORIGIN[1]}), {radius})")
    assert got == {r["key"] for r in rows[:10]}


@pytest.mark.parametrize("table", ["risk_source", "protected_area", "river"])
def test_dwithin_uses_a_spatial_index(demo_db: DatabaseSettings, table: str) -> None:
    from layers.catalogue import LAYERS

    v = view(LAYERS[table], Identity(role="analyst"))
    clause = to_sql(parse("S_DWITHIN(geometry, POINT(118.78 32.04), 2000)", None, 20), v, CRS84)
    query = sql.SQL("EXPLAIN SELECT key FROM {} WHERE {}").format(v.table, clause.text)
    with db.connect(demo_db) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute(query, clause.params).fetchall())
    assert "Index" in plan and "Seq Scan" not in plan, plan


def test_filter_on_a_restricted_property_needs_the_role(
    client: TestClient, demo_db: DatabaseSettings
) -> None:
    r = client.get("/collections/risk_source/items", params={"filter": "contact IS NOT NULL"})
    assert r.status_code == 400 and "contact" in r.json()["description"]
    got = _ids(client, "risk_source", headers=ANALYST, filter="contact IS NOT NULL")
    assert got == _truth(demo_db, "risk_source", "contact IS NOT NULL")
    got = _ids(client, "risk_source", headers=ANALYST, filter="substances IS NULL")
    assert got == _truth(demo_db, "risk_source", "substances IS NULL")


def test_queryables_are_json_schema_from_the_catalogue(client: TestClient) -> None:
    r = client.get("/collections/risk_source/queryables")
    assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json"
    doc = r.json()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema" and doc["type"] == "object"
    props = doc["properties"]
    assert props["geometry"]["format"] == "geometry-point"
    assert props["category"]["enum"][0] == "chemical" and props["m_score"]["type"] == "integer"
    assert props["q_band"]["enum"] == ["Q0", "Q1", "Q2", "Q3"] and props["synthetic"]["type"] == "boolean"
    assert "contact" not in props and "substances" not in props and "q_value" not in props
    analyst = client.get("/collections/risk_source/queryables", headers=ANALYST).json()["properties"]
    assert "contact" in analyst and "substances" not in analyst  # JSON is not queryable
    assert analyst["q_value"]["type"] == "number"
    assert (
        client.get("/collections/admin_area/queryables").json()["properties"]["geometry"]["format"]
        == "geometry-multipolygon"
    )
    assert client.get("/collections/nope/queryables").status_code == 404


@pytest.mark.parametrize(
    "text, needle",
    [
        ("colour = 'red'", "colour"),
        ("\"name; DROP TABLE x\" = 'a'", "name; DROP TABLE x"),
        ("name = ", "not valid CQL2 text"),
        ("name = 'a' AND", "not valid CQL2 text"),
        ("q_value > 'big'", "number"),
        ("name > 3", "text"),
        ("synthetic = 'yes'", "boolean"),
        ("name LIKE 3", "string pattern"),
        ("q_value LIKE 'a%'", "text properties"),
        ("m_score = 99999999999999999999999", "out of range"),
        ("q_value > 1e999", "finite"),
        ("S_INTERSECTS(name, POINT(1 2))", "geometries"),
        ("S_DWITHIN(geometry, POINT(1 2), -5)", "between 0 and"),
        ("S_DWITHIN(geometry, POINT(1 2))", "not valid CQL2 text"),
        ("S_INTERSECTS(geometry, POINT(500 2))", "outside longitude"),
        ("q_value + 1 > 2", "arithmetic"),
        ("upper(name) = 'A'", "not supported"),
        ("RELATE(geometry, POINT(1 2), 'T*F**F***')", "does not support"),
        ("geometry = 'x'", "geometry"),
        ("name IN ()", "not valid"),
        ("(" * 200 + "name = 'a'" + ")" * 200, "nested"),
        ("q_value > 3", "q_value"),  # restricted: unknown to the public
    ],
)
def test_bad_filters_are_400_saying_what(client: TestClient, text: str, needle: str) -> None:
    # the type errors about Q are an analyst's (the public may not name Q at all: the last case)
    headers = ANALYST if "q_value" in text and text != "q_value > 3" else {}
    r = client.get("/collections/risk_source/items", params={"filter": text}, headers=headers)
    assert r.status_code == 400, (text, r.text)
    assert r.json()["code"] == "InvalidParameterValue"
    assert needle in r.json()["description"], (text, r.json()["description"])


@pytest.mark.parametrize(
    "doc, needle",
    [
        ("{not json", "not valid CQL2 JSON"),
        ('{"op": "=", "args": [{"property": "nope"}, 1]}', "nope"),
        ('{"op": "frobnicate", "args": []}', "not valid CQL2 JSON"),
        ('"just a string"', "condition"),
        ('{"op": "like", "args": [{"property": "name"}, {"property": "name"}]}', "string pattern"),
        ("[1, 2, 3]", "condition"),
    ],
)
def test_bad_cql2_json_is_400(client: TestClient, doc: str, needle: str) -> None:
    r = client.get("/collections/risk_source/items", params={"filter": doc, "filter-lang": "cql2-json"})
    assert r.status_code == 400, (doc, r.text)
    assert needle in r.json()["description"], r.json()["description"]


def test_depth_limit_comes_from_the_settings(demo_db: DatabaseSettings) -> None:
    deep = " AND ".join(f"m_score <> {i}" for i in range(8))
    with TestClient(create_app(demo_db, APISettings(max_filter_depth=4))) as c:
        r = c.get("/collections/risk_source/items", params={"filter": deep})
        assert r.status_code == 400 and "at most 4" in r.json()["description"]
        assert c.get("/collections/risk_source/items", params={"filter": "m_score <> 1"}).status_code == 200
    with pytest.raises(InvalidParameter):
        parse("NOT " * 30 + "name = 'a'", None, 20)


def test_filter_lang_must_be_known(client: TestClient) -> None:
    r = client.get("/collections/risk_source/items", params={"filter": "name = 'a'", "filter-lang": "sql"})
    assert r.status_code == 400 and "cql2-text" in r.json()["description"]
    r = client.get(
        "/collections/risk_source/items", params={"filter": "name = 'a'", "filter-lang": "cql-text"}
    )
    assert r.status_code == 200  # the pre-1.0 name GDAL 3.6 sends
    r = client.get("/collections/risk_source/items", params={"filter": "name = 'a'", "filter-crs": "EPSG:1"})
    assert r.status_code == 400 and "filter-crs" in r.json()["description"]


def test_mixed_numbers_in_in_and_casei_patterns(client: TestClient, demo_db: DatabaseSettings) -> None:
    assert _ids(client, "risk_source", filter="m_score IN (10, 20.5, 30)") == _truth(
        demo_db, "risk_source", "m_score IN (10, 30)"
    )
    got = _ids(client, "admin_area", filter="CASEI(name_en) LIKE CASEI('%JING%')")
    assert got == _truth(demo_db, "admin_area", "lower(name_en) LIKE '%%jing%%'") and got


@pytest.mark.parametrize("op", ["INTERSECTS", "CONTAINS", "WITHIN", "TOUCHES", "CROSSES", "OVERLAPS", "EQUALS"])
def test_geometry_collection_literals_never_fail_the_server(client: TestClient, op: str) -> None:
    gc = "GEOMETRYCOLLECTION(POINT(118.8 32.05), LINESTRING(118 32, 119 33))"
    r = client.get("/collections/admin_area/items", params={"filter": f"S_{op}(geometry, {gc})"})
    assert r.status_code in (200, 400), r.text
