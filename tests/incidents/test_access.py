"""Who sees and does what with an incident: a role x action x city matrix over the API, every rule
enforced by row-level security (a city not involved gets 404, never 403), and the append-only log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers import db
from services.identity import Identity
from services.incidents import store
from services.incidents.settings import DeliverySettings
from services.web.app import create_app
from services.web.routers.incidents import run_as
from services.web.settings import APISettings
from tests.conftest import _clone
from tests.incidents.conftest import (
    CHUZHOU,
    MAANSHAN,
    NANJING,
    ZHENJIANG,
    add_users,
    load_directory,
    synthetic_spill,
    write_directory,
)


def identity_of(settings: Any, key: str) -> Identity:
    """The identity the database verifies for ``key``."""
    with db.connect(settings, "app") as conn:
        row = conn.execute("SELECT * FROM riskatlas.authenticate(%s)", (key,)).fetchone()
    return Identity(user=row["account"], role=row["role"], city=row["city"], key_id=row["key_id"],
                    context=row["context"])


@pytest.fixture(scope="module")
def world(cluster_settings, fresh_template, tmp_path_factory) -> Iterator[tuple[Any, dict[str, str], TestClient, int]]:
    """A database with the users and directory, one incident opened by Ma'anshan's duty officer naming
    Nanjing and Zhenjiang (not Chuzhou), and a client of the API (no delivery worker)."""
    from layers import cluster

    s = _clone(cluster_settings, fresh_template, "incidents")
    keys = add_users(s)
    report = load_directory(s, write_directory(tmp_path_factory.mktemp("dir") / "agencies.csv", None))
    assert report["status"] == "loaded", report
    opened = run_as(s, identity_of(s, keys["mas-duty"]), lambda conn: store.open_incident(
        conn, "spill", synthetic_spill(), client_request_id="mas-0001", actor_city=MAANSHAN))
    with TestClient(create_app(s, APISettings(pool_min=1, pool_max=2), DeliverySettings(worker=False))) as c:
        yield s, keys, c, opened["id"]
    cluster.drop_database(cluster_settings, s.db_name)


def h(keys: dict[str, str], who: str) -> dict[str, str]:
    return {"X-API-Key": keys[who]} if who != "anonymous" else {}


VIEW = {"mas-duty": 200, "nj-duty": 200, "zj-duty": 200, "nj-steward": 200, "nj-analyst": 200, "nj-inspector": 200,
        "boss": 200, "cz-duty": 404, "anonymous": 401}


@pytest.mark.parametrize("who", sorted(VIEW))
def test_view_incident_notice_cap_and_record(world, who):
    s, keys, c, iid = world
    r = c.get(f"/incidents/{iid}", headers=h(keys, who))
    assert r.status_code == VIEW[who], (who, r.text)
    nid = 1 if r.status_code != 200 else r.json()["notices"][0]["id"]
    cap = c.get(f"/incidents/{iid}/notices/{nid}.cap", headers=h(keys, who))
    assert cap.status_code == VIEW[who], (who, cap.text)
    rec = c.get(f"/incidents/{iid}/record.html", headers=h(keys, who))
    assert rec.status_code == VIEW[who]
    listed = c.get("/incidents", headers=h(keys, who))
    if who == "anonymous":
        assert listed.status_code == 401
    else:
        assert (iid in [i["id"] for i in listed.json()["incidents"]]) == (VIEW[who] == 200), who
    # an id that does not exist reads exactly like one of another city
    assert c.get("/incidents/999999", headers=h(keys, who)).status_code == (401 if who == "anonymous" else 404)


def test_contacts_are_restricted_by_role(world):
    s, keys, c, _ = world
    for who, shown in (("nj-duty", True), ("nj-analyst", True), ("nj-inspector", False), ("anonymous", False)):
        rows = c.get("/agencies", headers=h(keys, who)).json()["agencies"]
        nj = next(a for a in rows if a["jurisdiction"] == NANJING)
        assert (nj["duty_email"] is not None) == shown and (nj["duty_phone"] is not None) == shown, who
        assert "webhook_secret" not in nj
    with db.connect(s, "app") as conn:  # the signing secret: not in the view, not readable in the table
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT webhook_secret FROM riskatlas.agency_visible")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT webhook_secret FROM riskatlas.agency")


def test_only_the_addressed_city_acknowledges(world):
    s, keys, c, iid = world
    notices = c.get(f"/incidents/{iid}", headers=h(keys, "nj-duty")).json()["notices"]
    nj = next(n for n in notices if n["jurisdiction"] == NANJING)
    for who, status in (("zj-duty", 403), ("mas-duty", 403), ("nj-analyst", 403), ("nj-inspector", 403),
                        ("cz-duty", 404), ("anonymous", 401)):
        r = c.post(f"/incidents/{iid}/acknowledge", json={"notice_id": nj["id"]}, headers=h(keys, who))
        assert r.status_code == status, (who, r.text)
    r = c.post(f"/incidents/{iid}/acknowledge", json={"notice_id": nj["id"]}, headers=h(keys, "nj-steward"))
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged"][0]["acknowledged_by"] == "nj-steward"
    again = c.post(f"/incidents/{iid}/acknowledge", json={"notice_id": nj["id"]}, headers=h(keys, "nj-duty"))
    assert again.status_code == 409
    summary = {x["city"]: x for x in c.get(f"/incidents/{iid}", headers=h(keys, "zj-duty")).json()["summary"]}
    assert summary[NANJING]["state"] == "acknowledged" and summary[ZHENJIANG]["acknowledged"] == 0


def test_the_log_is_read_and_written_by_involved_cities_and_never_changed(world):
    s, keys, c, iid = world
    for who, status in (("mas-duty", 201), ("nj-duty", 201), ("zj-duty", 201), ("nj-analyst", 201),
                        ("cz-duty", 404), ("anonymous", 401)):
        r = c.post(f"/incidents/{iid}/log", json={"body": f"来自 {who}"}, headers=h(keys, who))
        assert r.status_code == status, (who, r.text)
    log = c.get(f"/incidents/{iid}", headers=h(keys, "zj-duty")).json()["log"]
    signed = {(e["posted_by"], e["posted_city"]) for e in log}
    assert {("mas-duty", MAANSHAN), ("nj-duty", NANJING), ("zj-duty", ZHENJIANG)} <= signed
    first = log[0]["id"]
    fix = c.post(f"/incidents/{iid}/log", json={"kind": "decision", "body": "更正：关闭取水口", "corrects": first},
                 headers=h(keys, "nj-duty"))
    assert fix.status_code == 201 and fix.json()["corrects"] == first
    bad = c.post(f"/incidents/{iid}/log", json={"body": "x", "corrects": 999999}, headers=h(keys, "nj-duty"))
    assert bad.status_code == 400 and "corrects" in bad.json()["description"]
    # not even the schema owner changes or deletes an entry
    with db.connect(s) as conn:
        for statement in ("UPDATE riskatlas.consultation_entry SET body = 'x'", "DELETE FROM riskatlas.consultation_entry",
                          "TRUNCATE riskatlas.consultation_entry"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
            conn.rollback()


def test_files_in_the_log_are_type_and_size_limited(world):
    s, keys, c, iid = world
    pdf = b"%PDF-1.4\n%synthetic test file\n"
    r = c.post(f"/incidents/{iid}/log/file", files={"file": ("监测报告.pdf", pdf, "application/pdf")},
               data={"body": "监测报告"}, headers=h(keys, "zj-duty"))
    assert r.status_code == 201, r.text
    got = c.get(f"/incidents/{iid}/log/{r.json()['id']}/file", headers=h(keys, "mas-duty"))
    assert got.content == pdf and got.headers["content-type"] == "application/pdf"
    fake = c.post(f"/incidents/{iid}/log/file", files={"file": ("x.pdf", b"MZ\x90\x00", "application/pdf")},
                  headers=h(keys, "zj-duty"))
    assert fake.status_code == 400 and "x.pdf" in fake.json()["description"]
    exe = c.post(f"/incidents/{iid}/log/file", files={"file": ("x.exe", b"MZ", "application/octet-stream")},
                 headers=h(keys, "zj-duty"))
    assert exe.status_code == 400 and "not accepted" in exe.json()["description"]
    big = c.post(f"/incidents/{iid}/log/file", files={"file": ("big.txt", b"a" * (800 * 1024), "text/plain")},
                 headers=h(keys, "zj-duty"))
    assert big.status_code == 413


def test_status_moves_on_by_the_opening_or_territory_city_only(world):
    s, keys, c, iid = world
    assert c.post(f"/incidents/{iid}/status", json={"status": "monitoring"}, headers=h(keys, "nj-duty")).status_code == 403
    assert c.post(f"/incidents/{iid}/status", json={"status": "monitoring"}, headers=h(keys, "cz-duty")).status_code == 404
    r = c.post(f"/incidents/{iid}/status", json={"status": "monitoring", "note": "监测中"}, headers=h(keys, "mas-duty"))
    assert r.status_code == 200 and r.json()["notices"] == 4, r.text
    back = c.post(f"/incidents/{iid}/status", json={"status": "open"}, headers=h(keys, "mas-duty"))
    assert back.status_code == 400
    doc = c.get(f"/incidents/{iid}", headers=h(keys, "nj-duty")).json()
    assert [(x["status"], x["changed_by"]) for x in doc["status_history"]] == [("open", "mas-duty"),
                                                                              ("monitoring", "mas-duty")]
    updates = [n for n in doc["notices"] if n["msg_type"] == "Update"]
    assert {n["jurisdiction"] for n in updates} == {MAANSHAN, NANJING, ZHENJIANG, "340523"}
    assert all(len(n["cap_references"]) == 1 for n in updates)


def test_opening_is_for_duty_officers_and_idempotent(world):
    s, keys, c, iid = world
    for who in ("nj-steward", "nj-analyst"):
        with pytest.raises(Exception) as exc:
            from services.web.routers.incidents import open_from_analysis
            open_from_analysis(s, identity_of(s, keys[who]), "spill", synthetic_spill(), client_request_id="x")
        assert "duty officer" in str(exc.value)
    again = run_as(s, identity_of(s, keys["mas-duty"]), lambda conn: store.open_incident(
        conn, "spill", synthetic_spill(), client_request_id="mas-0001", actor_city=MAANSHAN))
    assert again == {"id": iid, "created": False, "notices": 4}
    # a duty officer cannot open in another city's name: the database takes the city from the key
    other = run_as(s, identity_of(s, keys["cz-duty"]), lambda conn: store.open_incident(
        conn, "spill", synthetic_spill((NANJING,)), client_request_id="cz-1", actor_city=NANJING))
    with db.connect(s) as conn:
        row = conn.execute("SELECT opened_city, involved FROM riskatlas.incident WHERE id = %s",
                           (other["id"],)).fetchone()
    assert row["opened_city"] == CHUZHOU and CHUZHOU in row["involved"]
