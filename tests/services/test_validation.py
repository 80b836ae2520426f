"""Input checked at the edge: a NUL byte, a lone surrogate, bytes that are not UTF-8 or an integer past
int64 in any parameter of any documented route, in a JSON body or in an upload is a 400 that names the
parameter; none of them reaches the database driver (it answered 500 and reset the connection)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers import db
from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.settings import APISettings

BAD_TEXT = {"nul": "a%00b", "surrogate": "a%ED%A0%80b", "not-utf8": "a%FFb"}
HUGE = ("9223372036854775808", "-9223372036854775809", "1" + "0" * 40)
CHEM_PARK = ("118.79", "32.27")

#: A value for each required query parameter, so that the one under test is what the route judges.
BASELINE = {"lon": CHEM_PARK[0], "lat": CHEM_PARK[1], "x": CHEM_PARK[0], "y": CHEM_PARK[1], "medium": "air",
            "substance": "benzene", "mass_t": "1", "release_rate_kg_s": "1", "wind_from_deg": "90",
            "wind_speed_m_s": "3", "city": "320100"}
PATH_VALUES = {"collectionId": "risk_source", "featureId": "RS-320100-0006", "tileMatrixSetId": "WebMercatorQuad",
               "tileMatrix": "3", "tileRow": "3", "tileCol": "6", "z": "3", "y": "3", "x": "6",
               "key": "RS-320100-0006", "incident_id": "1", "notice_id": "1", "entry_id": "1",
               "token": "t" * 24}
#: Requests that must not be rate limited: this sweep is about input, not rate.
UNLIMITED = APISettings(rate_per_address=1e6, rate_burst_per_address=1e6)


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, parameter) of every query and path parameter in the OpenAPI document."""
    spec = create_app(DatabaseSettings(), UNLIMITED).openapi()
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                if param["in"] in ("query", "path"):
                    out.append((method.upper(), path, param))
    return out


OPERATIONS = _operations()


def _id(op: tuple[str, str, dict[str, Any]]) -> str:
    return f"{op[0]} {op[1]} {op[2]['name']}"


def _is_integer(param: dict[str, Any]) -> bool:
    schema = param.get("schema", {})
    return schema.get("type") == "integer" or any(s.get("type") == "integer" for s in schema.get("anyOf", []))


def _names(description: str, name: str) -> bool:
    """True if ``description`` names ``name`` as a word (``y`` is not named by "does not exist")."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", description) is not None


def _url(path: str, param: dict[str, Any], raw: str) -> str:
    """The path with ``raw`` (already percent-encoded) as ``param`` and baseline values for the rest."""
    segments = []
    for segment in path.split("/"):
        if segment.startswith("{"):
            name, _, rest = segment[1:].partition("}")  # a segment may go on after its parameter: {id}.cap
            segment = (raw if param["in"] == "path" and name == param["name"] else PATH_VALUES[name]) + rest
        segments.append(segment)
    query = {k: quote(v) for k, v in BASELINE.items()}
    if param["in"] == "query":
        query[param["name"]] = raw
    return "/".join(segments) + "?" + "&".join(f"{quote(k)}={v}" for k, v in query.items())


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db, UNLIMITED), raise_server_exceptions=False) as c:
        yield c


def _send(client: TestClient, method: str, url: str) -> Any:
    return client.request(method, url, json={} if method == "POST" else None)


@pytest.mark.parametrize("op", OPERATIONS, ids=_id)
@pytest.mark.parametrize("kind", sorted(BAD_TEXT))
def test_bad_text_in_any_parameter_is_a_400_naming_it(client: TestClient, op: tuple, kind: str) -> None:
    method, path, param = op
    r = _send(client, method, _url(path, param, BAD_TEXT[kind]))
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.json()["code"] == "InvalidParameterValue"
    assert r.json()["description"].startswith(f"parameter {param['name']}: "), r.json()


@pytest.mark.parametrize("op", OPERATIONS, ids=_id)
@pytest.mark.parametrize("value", HUGE)
def test_huge_integers_in_any_parameter_are_never_a_5xx(client: TestClient, op: tuple, value: str) -> None:
    method, path, param = op
    r = _send(client, method, _url(path, param, value))
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if _is_integer(param):
        assert r.status_code == 400 and _names(r.json()["description"], param["name"]), r.text[:300]


def test_the_reported_cases(client: TestClient) -> None:
    r = client.get("/analysis/border-hazards?city=%00")
    assert r.status_code == 400
    assert r.json() == {"code": "InvalidParameterValue", "description": "parameter city: NUL bytes are not allowed"}
    for url, name in (("/analysis/grade/x%00", "key"), ("/maps/overview.html?city=%00", "city"),
                      ("/analysis/border-hazards?city=%ED%A0%80", "city"),
                      ("/analysis/border-hazards?offset=9223372036854775808", "offset"),
                      ("/analysis/coverage?medium=air&offset=9223372036854775808", "offset"),
                      ("/collections/risk_source/items?limit=9223372036854775808", "limit"),
                      ("/collections/risk_source/items?name=%00", "name"),
                      ("/collections/risk_source/items/%00", "featureId"),
                      ("/analysis/border-hazards?%00=1", "\\x00")):
        r = client.get(url)
        assert r.status_code == 400 and name in r.json()["description"], (url, r.text)
    # the connection the requests used is still good
    assert client.get("/health").json()["status"] == "ok"


OVERLAY = {"left": "risk_source", "predicate": "intersects", "right": "admin_area"}


@pytest.mark.parametrize("body, member, words", [
    ('{"left_filter": "name = \'\\u0000\'"}', "left_filter", "NUL bytes"),
    ('{"left_filter": "name = \'\\ud800\'"}', "left_filter", "lone surrogates"),
    ('{"left_filter": {"op": "=", "args": [{"property": "name"}, "\\udfff"]}}', "left_filter.args[1]", "surrogates"),
    ('{"right_filter": {"na\\u0000me": "x"}}', "right_filter.na\\x00me", "NUL bytes"),
    ('{"offset": 9223372036854775808}', "offset", "out of range"),
    ('{"limit": -9223372036854775809}', "limit", "out of range"),
    ('{"distance_m": NaN}', "body", "NaN is not a JSON number"),
    ('{"distance_m": 1e400}', "distance_m", "too large"),
])
def test_json_bodies_are_checked_before_the_handler(client: TestClient, body: str, member: str, words: str) -> None:
    doc = json.dumps(OVERLAY)[:-1] + ", " + body[1:]
    r = client.post("/analysis/overlay", content=doc, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert member in r.json()["description"] and words in r.json()["description"], r.json()


def test_json_checks_cover_every_json_route_and_content_type(client: TestClient) -> None:
    bad = '{"x": 118.79, "y": 32.27, "substance": "benz\\u0000ene", "mass_t": 1}'
    for path in ("/analysis/spill", "/analysis/plume", "/analysis/bulletin"):
        for ctype in ("application/json", "application/geo+json; charset=utf-8", None):
            headers = {"content-type": ctype} if ctype else {}
            r = client.post(path, content=bad, headers=headers)
            assert r.status_code == 400 and "body member substance: NUL" in r.json()["description"], (path, r.text)
    deep = "[" * 5000 + "]" * 5000
    r = client.post("/analysis/overlay", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested" in r.json()["description"]
    r = client.post("/analysis/overlay", content=b'{"left": "\xff"}', headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["code"]


def test_the_database_errors_are_400s_as_a_last_line(demo_db: DatabaseSettings) -> None:
    """Whatever passes the edge and is refused by the driver or the server is still the request's 400."""
    app = create_app(demo_db, UNLIMITED)
    values = {"range": ("SELECT %s::bigint", 2**63), "nul": ("SELECT %s::text", "a\x00"),
              "surrogate": ("SELECT %s::text", "\ud800"), "syntax": ("SELECT %s::int", "abc")}

    async def run(what: str) -> dict[str, str]:
        sql, value = values[what]
        async with app.state.pool.connection() as conn:
            await conn.execute(sql, (value,))
        return {}

    app.add_api_route("/probe/{what}", run)
    with TestClient(app, raise_server_exceptions=False) as c:
        for what in values:
            r = c.get(f"/probe/{what}")
            assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue", (what, r.text)
            assert "psycopg" not in r.text and "SELECT" not in r.text
        with db.connect(demo_db, "app") as conn, pytest.raises(psycopg.errors.NumericValueOutOfRange):
            conn.execute("SELECT %s::bigint", (2**63,))  # what the first probe met: a real server error


UNCLOSED = {"type": "Polygon", "coordinates": [[[118.7, 32.0], [118.8, 32.0], [118.8, 32.1]]]}


@pytest.fixture
def upload_client(demo_db: DatabaseSettings, tmp_path) -> Iterator[TestClient]:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"admin-key": {"user": "root", "role": "admin"}}), encoding="utf-8")
    with TestClient(create_app(demo_db, UNLIMITED.model_copy(update={"api_keys_file": keys})),
                    raise_server_exceptions=False) as c:
        yield c


def test_an_unclosed_ring_in_an_upload_is_closed_and_reported_by_row(upload_client: TestClient) -> None:
    """An open ring used to crash the reader (500). It is now closed and listed as a repair of its row;
    nothing else of the file is lost, and no message shows a server path."""
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "ok", "level": "1", "reserve_key": "R1"},
         "geometry": {**UNCLOSED, "coordinates": [UNCLOSED["coordinates"][0] + [UNCLOSED["coordinates"][0][0]]]}},
        {"type": "Feature", "properties": {"name": "z", "level": "2", "reserve_key": "R1"}, "geometry": UNCLOSED}]}
    r = upload_client.post("/uploads", headers={"X-API-Key": "admin-key"},
                           files={"file": ("zones.geojson", json.dumps(fc).encode(), "application/geo+json")},
                           data={"layer": "protection_zone", "dry_run": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rows_rejected"] == 0 and body["rows_inserted"] == 2, body
    assert [(x["row_no"], x["what"]) for x in body["repairs"]] == [(2, "ring closed")], body["repairs"]
    assert "/tmp" not in r.text and "riskatlas-upload" not in r.text


@pytest.mark.parametrize("field", ["layer", "mapping", "crs"])
def test_upload_form_fields_are_checked(upload_client: TestClient, field: str) -> None:
    form = {"layer": "risk_source", "dry_run": "true", field: "x\x00y"}
    r = upload_client.post("/uploads", headers={"X-API-Key": "admin-key"},
                           files={"file": ("s.csv", b"name,category,lon,lat\n", "text/csv")}, data=form)
    assert r.status_code == 400 and r.json()["description"] == f"parameter {field}: NUL bytes are not allowed"


def test_urlencoded_bodies_are_checked_like_query_strings(client: TestClient) -> None:
    r = client.post("/analysis/overlay", content=b"left=%00",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["description"] == "form field left: NUL bytes are not allowed"
