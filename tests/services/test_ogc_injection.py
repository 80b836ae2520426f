"""An injection corpus through every parameter a client controls: 400, or the literal (correct) answer.

Every value reaches SQL as a bound parameter and every name is looked up in the catalogue, so a payload is
either rejected with a 400 that says why, or taken literally (a name that is not there, a string nobody
has). Afterwards every table is still there with the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from layers import db
from layers.catalogue import LAYERS
from layers.settings import DatabaseSettings
from services.errors import InvalidParameter
from services.query.cql import parse
from services.web.app import create_app
from services.web.settings import APISettings

PAYLOADS = [
    "'; DROP TABLE riskatlas.risk_source; --",
    "1=1",
    "' OR 1=1 --",
    '" OR ""="',
    "x' UNION SELECT contact FROM riskatlas.risk_source --",
    "); DELETE FROM riskatlas.admin_area; --",
    "name) OR (1=1",
    "%s%s%s%n",
    "$1",
    "\\x00",
    "南京'); DROP TABLE x;--",
    "𝕏̸̛̞ ﷽ \u202e",
    "99999999999999999999999999999999999999",
    "-1e309",
    "NaN",
    "((((((((((((((((((((((((((((((((((((((((",
    "))))))))))",
    "pg_sleep(10)",
    "1; SELECT pg_sleep(10)",
    "/*",
    "' || (SELECT string_agg(contact, ',') FROM riskatlas.risk_source) || '",
]


@pytest.fixture(scope="module")
def counts_before(demo_db: DatabaseSettings) -> dict[str, int]:
    """The layers' counts before the first attack of this module (the client needs them first)."""
    return _counts(demo_db)


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings, counts_before: dict[str, int]) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db, APISettings())) as c:
        yield c


def _counts(settings: DatabaseSettings) -> dict[str, int]:
    with db.connect(settings) as conn:
        return {
            name: conn.execute(f"SELECT count(*) n FROM riskatlas.{name}").fetchone()["n"] for name in LAYERS
        }


def _ok_or_400(r, where: str) -> None:
    assert r.status_code in (200, 400, 404), (where, r.status_code, r.text[:300])
    if r.status_code != 200:
        body = r.json()
        assert body["code"] and body["description"]
        # the description may quote the payload it rejects, but never the server's SQL or a traceback
        for leak in (
            "Traceback",
            "psycopg",
            "json_build_object",
            "ST_AsGeoJSON",
            "ORDER BY",
            "LINE 1",
            "ERROR:",
        ):
            assert leak not in body["description"], (where, body)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_filter_string_literals_are_taken_literally(client: TestClient, payload: str) -> None:
    literal = payload.replace("'", "''")
    r = client.get("/collections/risk_source/items", params={"filter": f"name = '{literal}'"})
    _ok_or_400(r, "filter literal")
    if r.status_code == 200:
        assert r.json()["numberMatched"] == 0
    doc = json.dumps({"op": "=", "args": [{"property": "name"}, payload]})
    r = client.get("/collections/risk_source/items", params={"filter": doc, "filter-lang": "cql2-json"})
    assert r.status_code == 200 and r.json()["numberMatched"] == 0


@pytest.mark.parametrize("payload", PAYLOADS)
def test_filter_text_is_parsed_not_pasted(client: TestClient, payload: str) -> None:
    for text in (payload, f"name = 'a' OR {payload}", f'"{payload}" = 1', f"name = {payload}"):
        r = client.get("/collections/risk_source/items", params={"filter": text})
        _ok_or_400(r, text)
        if r.status_code == 200:
            assert r.json()["numberMatched"] == 0, text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_item_ids_are_looked_up_literally(client: TestClient, payload: str) -> None:
    r = client.get(f"/collections/risk_source/items/{quote(payload, safe='')}")
    assert r.status_code in (404, 400), r.text
    assert r.json()["code"]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize(
    "param",
    [
        "sortby",
        "properties",
        "bbox",
        "crs",
        "bbox-crs",
        "filter-crs",
        "filter-lang",
        "limit",
        "offset",
        "f",
        "category",
        "m_score",
        "synthetic",
        "resultType",
    ],
)
def test_every_items_parameter(client: TestClient, param: str, payload: str) -> None:
    params = {param: payload}
    if param == "bbox-crs":
        params["bbox"] = "118,31,119,32"
    if param in ("filter-crs", "filter-lang"):
        params["filter"] = "name = 'x'"
    r = client.get("/collections/risk_source/items", params=params)
    _ok_or_400(r, param)
    if r.status_code == 200:
        assert r.json()["numberMatched"] == 0 or param in ("filter-lang",), (param, payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_collection_and_tile_paths(client: TestClient, payload: str) -> None:
    p = quote(payload, safe="")
    for path in (
        f"/collections/{p}",
        f"/collections/{p}/items",
        f"/collections/{p}/queryables",
        f"/collections/risk_source/tiles/{p}/3/0/0",
        f"/tiles/WebMercatorQuad/3/0/0?collections={p}",
        f"/collections/risk_source/tiles/WebMercatorQuad/3/0/{p}",
        f"/collections/risk_source/tiles/WebMercatorQuad/8/100/200?filter={quote(payload)}",
        f"/nearby?x=118.8&y=32&category={p}",
        f"/nearby?x={p}&y=32",
        f"/nearby?x=118.8&y=32&crs={p}",
    ):
        r = client.get(path)
        assert r.status_code in (400, 404), (path, r.status_code, r.text[:200])


def test_deeply_nested_json_filter_is_refused(client: TestClient) -> None:
    doc = '{"op":"not","args":[' * 600 + '{"op":"=","args":[{"property":"name"},"a"]}' + "]}" * 600
    r = client.get("/collections/risk_source/items", params={"filter": doc, "filter-lang": "cql2-json"})
    assert r.status_code == 400 and "nested" in r.json()["description"]
    r = client.get("/collections/risk_source/items", params={"filter": "NOT " * 3000 + "name = 'a'"})
    assert r.status_code == 400 and "deep" in r.json()["description"]
    r = client.get("/collections/risk_source/items", params={"filter": "name = '" + "a" * 15_000 + "'"})
    assert r.status_code == 200 and r.json()["numberMatched"] == 0
    with pytest.raises(InvalidParameter, match="characters"):
        parse("name = '" + "a" * 200_000 + "'", None, 20)


def test_the_tables_are_all_still_there(
    client: TestClient, demo_db: DatabaseSettings, counts_before: dict[str, int]
) -> None:
    for payload in PAYLOADS:
        client.get(
            "/collections/admin_area/items", params={"filter": f"name = '{payload.replace(chr(39), '')}'"}
        )
    assert _counts(demo_db) == counts_before
    assert all(n > 0 for n in counts_before.values())
