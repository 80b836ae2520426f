"""Exceedances at cross-border sections go out through the incident machinery: the demo's February NH3-N
exceedance at the Chu River section is an incident with a CAP notice to the downstream city; a pushed
exceedance is sent by the app's own worker (in the app, by e-mail and by signed webhook), later samples as
CAP Updates; one acknowledgement counts for notice and events; corrections withdrawing every sample
all-clear it (CAP Cancel); a city not involved sees none of it."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from layers import db
from services import accounts
from services.incidents import cap
from services.incidents.settings import DeliverySettings
from services.web.app import create_app
from services.web.settings import APISettings
from tests.incidents.conftest import NANJING, WEBHOOK_SECRET
from tests.incidents.test_scenario import wait_for

CHUZHOU, YANGZHOU = "341100", "321000"
HIGH = [f"2026-03-{d:02d} 10:00" for d in range(5, 9)]  # four days of NH3-N at 1.9 mg/L (class V, target III)


def _chu(conn: psycopg.Connection) -> str:
    return conn.execute("""SELECT key FROM riskatlas.monitoring_station WHERE kind = 'cross-border-section'
                           AND name LIKE '%%滁河%%' ORDER BY key LIMIT 1""").fetchone()["key"]


def _incidents(conn: psycopg.Connection, key: str) -> list[dict]:
    return conn.execute(
        """SELECT i.id, i.status, i.severity, i.involved, i.opened_city, i.substance,
                  array_agg(n.msg_type ORDER BY n.id) AS types, array_agg(n.city ORDER BY n.id) AS cities,
                  array_agg(n.cap_xml ORDER BY n.id) AS xml
           FROM riskatlas.incident i JOIN riskatlas.notice n ON n.incident_id = i.id
           WHERE i.kind = 'exceedance' AND i.analysis -> 'incident' ->> 'station_key' = %s
           GROUP BY i.id ORDER BY i.id""", (key,)).fetchall()


def test_the_demos_february_exceedance_was_sent_to_the_downstream_city(demo_db):
    with db.connect(demo_db) as conn:
        key = _chu(conn)
        found = _incidents(conn, key)
        events = conn.execute(
            """SELECT count(*) AS n, count(notice_id) AS sent FROM riskatlas.observation_event
               WHERE station_key = %s AND parameter = 'nh3n' AND status = 'open'
                 AND observed_at >= '2025-02-01' AND observed_at < '2025-03-01'""", (key,)).fetchone()
    assert events["n"] > 0 and events["sent"] == events["n"]  # every February sample went out
    nh3n = [i for i in found if i["substance"] == "nh3n"]
    assert len(nh3n) == 1 and nh3n[0]["types"] == ["Alert"] and nh3n[0]["cities"] == [NANJING]
    assert {NANJING, CHUZHOU} <= set(nh3n[0]["involved"])
    xml = nh3n[0]["xml"][0]
    assert cap.validate(xml) == []
    doc = etree.fromstring(xml.encode())
    ns = {"c": cap.CAP_NS}
    assert doc.findtext("c:info/c:certainty", namespaces=ns) == "Observed"
    assert "氨氮" in doc.findtext("c:info[c:language='zh-CN']/c:event", namespaces=ns)
    assert "超过目标III类" in doc.findtext("c:info[c:language='zh-CN']/c:description", namespaces=ns)


@pytest.fixture
def duty(demo_copy):
    """Keys of the Chu River section's cities and of one not involved, and the section's key."""
    keys = {}
    with db.connect(demo_copy) as conn:
        for name, role, city in (("nj-duty", "duty", NANJING), ("nj", "steward", NANJING),
                                 ("cz-duty", "duty", CHUZHOU), ("yz-duty", "duty", YANGZHOU)):
            accounts.create_account(conn, name, role, city)
            keys[name] = accounts.create_key(conn, name).secret
        key = _chu(conn)
        # the demo's February incident closed (as a duty officer would): March starts a new one
        conn.execute("UPDATE riskatlas.incident SET status = 'closed' WHERE kind = 'exceedance'")
        conn.commit()
    return demo_copy, keys, key


def test_a_pushed_exceedance_goes_out_is_acknowledged_and_all_cleared(duty, smtp, webhook):
    settings, keys, key = duty
    box, smtp_port = smtp
    hooks, hook_port = webhook
    with db.connect(settings) as conn:
        conn.execute("""UPDATE riskatlas.agency SET duty_email = 'duty@' || jurisdiction || '.test',
                            webhook_url = %s || jurisdiction, webhook_secret = %s""",
                     (f"http://127.0.0.1:{hook_port}/hook/", WEBHOOK_SECRET))
        conn.commit()
    delivery = DeliverySettings(smtp_host="127.0.0.1", smtp_port=smtp_port, poll_s=0.2)

    def h(who: str) -> dict[str, str]:
        return {"X-API-Key": keys[who]}

    def push(times: list[str], value: float) -> dict:
        items = [{"station": key, "parameter": "nh3n", "time": t, "value": value, "unit": "mg/L"} for t in times]
        r = c.post("/observations", json={"items": items}, headers=h("nj"))
        assert r.status_code == 200, r.text
        return r.json()

    with TestClient(create_app(settings, APISettings(pool_min=1, pool_max=3), delivery)) as c:
        assert push(HIGH, 1.9)["rows_inserted"] == len(HIGH)
        with db.connect(settings) as conn:
            wait_for(lambda: len([i for i in _incidents(conn, key) if i["status"] == "open"]) == 1,
                     "the worker opening an exceedance incident")
            inc = [i for i in _incidents(conn, key) if i["status"] == "open"][0]
        assert inc["types"] == ["Alert"] and inc["cities"] == [NANJING] and inc["severity"] == "Moderate"
        iid = inc["id"]
        wait_for(lambda: any(m["To"] == f"duty@{NANJING}.test" and f"跨界断面超标 Section exceedance #{iid}" in m["Subject"]
                             and "氨氮" in m.get_body(preferencelist=("plain",)).get_content() for m in box.messages),
                 "the e-mail to Nanjing's duty office")
        wait_for(lambda: any(p == f"/hook/{NANJING}" and f"riskatlas-{iid}-".encode() in b for p, _, b in hooks.calls),
                 "the webhook of Nanjing's duty office")
        # the involved cities see it; a city not involved does not
        assert c.get(f"/incidents/{iid}", headers=h("cz-duty")).status_code == 200
        assert c.get(f"/incidents/{iid}", headers=h("yz-duty")).status_code == 404
        assert c.get(f"/incidents/{iid}/record.html", headers=h("nj-duty")).status_code == 200

        # a later sample while the incident is open: a CAP Update referring to the Alert
        push(["2026-03-12 10:00"], 2.4)
        with db.connect(settings) as conn:
            wait_for(lambda: _incidents(conn, key)[-1]["types"] == ["Alert", "Update"], "the Update notice")
            xml = _incidents(conn, key)[-1]["xml"]
        update = etree.fromstring(xml[1].encode())
        alert_id = etree.fromstring(xml[0].encode()).findtext(f"{{{cap.CAP_NS}}}identifier")
        assert alert_id in update.findtext(f"{{{cap.CAP_NS}}}references")
        assert cap.validate(xml[1]) == []

        # the upstream city cannot acknowledge for Nanjing; Nanjing acknowledging one event acknowledges the
        # notice it went out with, and the notice's other events
        events = c.get("/observations/events", params={"status": "open", "city": NANJING}, headers=h("nj")).json()
        march = sorted((e for e in events["events"] if e["station_key"] == key and e["observed_at"] >= "2026-03"),
                       key=lambda e: e["observed_at"])
        assert len(march) == len(HIGH) + 1 and all(e["notice_id"] for e in march)
        assert c.post(f"/incidents/{iid}/acknowledge", json={}, headers=h("cz-duty")).status_code == 403
        assert c.post(f"/observations/events/{march[0]['id']}/acknowledge", headers=h("nj")).status_code == 200
        with db.connect(settings) as conn:
            notices = conn.execute("SELECT id, msg_type, acknowledged_by FROM riskatlas.notice WHERE incident_id = %s "
                                   "ORDER BY id", (iid,)).fetchall()
            acked = conn.execute("SELECT count(*) AS n FROM riskatlas.observation_event WHERE notice_id = %s "
                                 "AND status = 'acknowledged'", (notices[0]["id"],)).fetchone()["n"]
        assert notices[0]["acknowledged_by"] == "nj" and acked == len(HIGH)
        assert notices[1]["acknowledged_by"] is None  # the Update is acknowledged on its own
        assert c.post(f"/incidents/{iid}/acknowledge", json={"notice_id": notices[1]["id"]},
                      headers=h("nj-duty")).status_code == 200
        with db.connect(settings) as conn:
            last = conn.execute("SELECT status, acknowledged_by FROM riskatlas.observation_event WHERE station_key = %s "
                                "AND observed_at = '2026-03-12 10:00+08'", (key,)).fetchone()
        assert last == {"status": "acknowledged", "acknowledged_by": "nj-duty"}

        # corrections bring every sample back within target: the incident is all-cleared and closed
        push([*HIGH, "2026-03-12 10:00"], 0.6)
        with db.connect(settings) as conn:
            wait_for(lambda: _incidents(conn, key)[-1]["status"] == "closed", "the all-clear")
            done = _incidents(conn, key)[-1]
        assert done["types"] == ["Alert", "Update", "Cancel"] and cap.validate(done["xml"][2]) == []
        assert "AllClear" in done["xml"][2]


def test_clients_cannot_point_an_event_at_a_notice(duty):
    """Only the notifier says which notice an event went out with (the measuring city's own key cannot)."""
    settings, _keys, key = duty
    with db.connect(settings) as conn:
        event = conn.execute("SELECT id FROM riskatlas.observation_event WHERE station_key = %s "
                             "AND notice_id IS NOT NULL LIMIT 1", (key,)).fetchone()
        context = db.set_actor(conn, user="nj", role="steward", city=NANJING)
    assert event is not None
    with db.connect(settings, role="app") as conn:
        db.act_as(conn, context)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="set by the notifier"):
            conn.execute("UPDATE riskatlas.observation_event SET notice_id = NULL WHERE id = %s", (event["id"],))
