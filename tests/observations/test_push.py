"""``POST /observations``: batches from automatic stations, with the key of the station's owner city."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from layers import db
from services.web.app import create_app
from services.web.settings import APISettings
from tests.observations.conftest import NANJING


@pytest.fixture
def client(stations):
    settings, keys = stations
    with TestClient(create_app(settings, APISettings(pool_min=1, pool_max=2))) as c:
        yield c, settings, keys


def _count(settings) -> int:
    with db.connect(settings) as conn:
        return conn.execute("SELECT count(*) AS n FROM riskatlas.observation").fetchone()["n"]


ITEMS = [
    {"station": "NJ-A", "parameter": "pm25", "time": "2026-01-05T08:00+08:00", "value": 75, "unit": "μg/m3"},
    {"station": "NJ-A", "parameter": "CO", "time": "2026-01-05 08:00", "value": 1500, "unit": "μg/m³"},
    {"station": "CZ-A", "parameter": "pm25", "time": "2026-01-05 08:00", "value": 60},
    {"station": "NJ-A", "parameter": "so2", "time": "2026-01-05 08:00", "value": -2},
    {"station": "NJ-A", "parameter": "pm25", "time": "2026-01-05T00:00Z", "value": 75},
]


def test_a_push_loads_the_good_items_and_names_each_rejected_one(client):
    c, settings, keys = client
    r = c.post("/observations", json={"items": ITEMS}, headers={"X-API-Key": keys["nj"]})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["rows_in"], doc["rows_inserted"], doc["rows_rejected"], doc["status"]) == (5, 2, 3, "partial")
    got = {x["item"]: (x["field"], x["reason"]) for x in doc["rejects"]}
    assert set(got) == {2, 3, 4}
    assert "belongs to city 341100" in got[2][1] and "cannot be negative" in got[3][1]
    assert "duplicate" in got[4][1] and "row 0" in got[4][1]
    assert any("China Standard Time" in n for n in doc["notes"])
    # the same batch again: nothing changes; a changed value is a correction
    again = c.post("/observations", json={"items": ITEMS[:2]}, headers={"X-API-Key": keys["nj"]}).json()
    assert (again["rows_inserted"], again["rows_updated"], again["rows_unchanged"]) == (0, 0, 2)
    fixed = [dict(ITEMS[0], value=80)]
    corr = c.post("/observations", json=fixed, headers={"X-API-Key": keys["nj"]}).json()
    assert (corr["rows_inserted"], corr["rows_updated"]) == (0, 1)
    with db.connect(settings) as conn:
        h = conn.execute("SELECT old_value, new_value, changed_by FROM riskatlas.observation_history").fetchall()
        co = conn.execute("SELECT value FROM riskatlas.observation WHERE parameter = 'co'").fetchone()["value"]
    assert h == [{"old_value": 75, "new_value": 80, "changed_by": "nj"}]
    assert co == pytest.approx(1.5)


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"items": [ITEMS[0], {"station": "NJ-A", "parameter": "pm25", "time": "2026-01-05 09:00"}]}, 400,
     "items[1]: member 'value' is missing"),
    ({"items": [ITEMS[0], {**ITEMS[0], "value": "high"}]}, 400, "items[1].value: expected a number"),
    ({"items": [ITEMS[0], "NJ-A,pm25"]}, 400, "items[1]: expected an object"),
    ({"items": [{**ITEMS[0], "colour": "red"}]}, 400, "items[0]: unknown member 'colour'"),
    ({"items": []}, 400, "the batch is empty"),
    ({"rows": []}, 400, "expected {\"items\""),
    ({"items": [ITEMS[0], {**ITEMS[0], "station": "NJ-A\u0000"}]}, 400, "items[1].station: NUL bytes"),
    ({"items": [ITEMS[0], {**ITEMS[0], "unit": "\ud800"}]}, 400, "items[1].unit: lone surrogates"),
    (b'{"items": [{"station": "NJ-A", "parameter": "pm25", "time": "2026-01-05 08:00", "value": NaN}]}', 400,
     "NaN is not JSON"),
])
def test_a_malformed_batch_is_refused_whole(client, body, status, words):
    c, settings, keys = client
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = c.post("/observations", content=content, headers={"X-API-Key": keys["nj"], "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert words in r.json()["description"]
    assert _count(settings) == 0


def test_all_or_nothing_and_keys(client):
    c, settings, keys = client
    r = c.post("/observations", json={"items": ITEMS, "all_or_nothing": True}, headers={"X-API-Key": keys["nj"]})
    assert r.status_code == 422 and r.json()["rows_rejected"] == 5 and r.json()["rows_inserted"] == 0
    assert [x["item"] for x in r.json()["rejects"]] == [2, 3, 4]
    assert _count(settings) == 0
    # no key, or another city's key for Nanjing's station: nothing written
    assert c.post("/observations", json={"items": ITEMS[:1]}).status_code == 403
    other = c.post("/observations", json={"items": ITEMS[:1]}, headers={"X-API-Key": keys["cz"]})
    assert other.status_code == 422 and "belongs to city 320100" in other.json()["rejects"][0]["reason"]
    assert _count(settings) == 0
    assert c.post("/observations", content=b"{not json", headers={"X-API-Key": keys["nj"],
                                                                  "Content-Type": "application/json"}).status_code == 400
    ok = c.post("/observations", json={"items": ITEMS[:1]}, headers={"X-API-Key": keys["boss"]})
    assert ok.status_code == 200 and ok.json()["rows_inserted"] == 1
    with db.connect(settings) as conn:
        assert conn.execute("SELECT owner_city FROM riskatlas.observation").fetchone()["owner_city"] == NANJING
