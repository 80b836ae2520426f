"""The whole story on the demo region: a benzene spill in Ma'anshan opens an incident; Nanjing, Zhenjiang
and the others named receive in-app, e-mail and webhook notices with valid CAP (the app's own delivery
worker sends them); Nanjing acknowledges; Zhenjiang goes overdue and is sent the notice again; every
involved city posts to the consultation log; the record exports; closing sends a CAP Cancel."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient
from lxml import etree

from layers import db
from services.incidents import cap
from services.incidents.settings import DeliverySettings
from services.web.app import create_app
from services.web.settings import APISettings
from tests.incidents.conftest import MAANSHAN, NANJING, WEBHOOK_SECRET, ZHENJIANG, add_users

SPILL = {"x": 118.45, "y": 31.753, "substance": "benzene", "mass_t": 10, "release_time": "2026-03-01T08:00"}


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Wait until ``condition()`` holds (the worker runs on its own), at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_benzene_spill_in_maanshan_end_to_end(demo_copy, smtp, webhook):
    box, smtp_port = smtp
    hooks, hook_port = webhook
    keys = add_users(demo_copy)
    with db.connect(demo_copy) as conn:
        demo = conn.execute("SELECT count(*) AS n, bool_and(synthetic) AS s FROM riskatlas.agency").fetchone()
        cities = conn.execute("SELECT count(*) AS n FROM riskatlas.admin_area WHERE level IN ('city', 'county')"
                              ).fetchone()["n"]
        assert demo["n"] == cities and demo["s"]  # the demo's directory: one synthetic entry per city and county
        conn.execute("""UPDATE riskatlas.agency SET duty_email = 'duty@' || jurisdiction || '.test',
                            webhook_url = %s || jurisdiction, webhook_secret = %s""",
                     (f"http://127.0.0.1:{hook_port}/hook/", WEBHOOK_SECRET))
        conn.commit()
    delivery = DeliverySettings(smtp_host="127.0.0.1", smtp_port=smtp_port, poll_s=0.2, public_url="http://ra.test")
    with TestClient(create_app(demo_copy, APISettings(pool_min=1, pool_max=3), delivery)) as c:
        def h(who: str) -> dict[str, str]:
            return {"X-API-Key": keys[who]}

        body = {**SPILL, "open_incident": True, "client_request_id": "mas-2026-03-01-01",
                "incident_description": "化工厂储罐泄漏，苯进入长江 (synthetic exercise)"}
        assert c.post("/analysis/spill", json=body, headers=h("nj-analyst")).status_code == 403
        r = c.post("/analysis/spill", json=body, headers=h("mas-duty"))
        assert r.status_code == 200, r.text
        inc = r.json()["incident"]
        assert inc["created"] and inc["substance"]["name"] == "benzene"
        iid = inc["id"]
        again = c.post("/analysis/spill", json=body, headers=h("mas-duty")).json()["incident"]
        assert again["id"] == iid and not again["created"]  # a duplicate submission: one incident

        doc = c.get(f"/incidents/{iid}", headers=h("nj-duty")).json()
        addressed = {n["city"] for n in doc["notices"]}
        assert {MAANSHAN, NANJING, ZHENJIANG} <= addressed
        n_notices = len(doc["notices"])
        wait_for(lambda: len(box.messages) >= n_notices and len(hooks.calls) >= n_notices, "e-mails and webhooks")
        schema = cap.schema()
        for _path, _headers, payload in hooks.calls:
            assert schema.validate(etree.fromstring(payload)), schema.error_log
        to = {m["To"] for m in box.messages}
        assert {f"duty@{NANJING}.test", f"duty@{ZHENJIANG}.test"} <= to

        def summary() -> dict[str, dict]:
            return {s["city"]: s for s in c.get(f"/incidents/{iid}", headers=h("nj-duty")).json()["summary"]}

        wait_for(lambda: all(s["undelivered"] == 0 for s in summary().values()), "deliveries marked delivered")
        s = summary()
        assert s[NANJING]["delivered_email"] == s[NANJING]["sent"] == s[NANJING]["delivered_webhook"]

        # Nanjing acknowledges; Zhenjiang lets its deadline pass and is sent the notice again
        assert c.post(f"/incidents/{iid}/acknowledge", json={}, headers=h("nj-duty")).status_code == 200
        before = sum(1 for m in box.messages if m["To"] == f"duty@{ZHENJIANG}.test")
        with db.connect(demo_copy) as conn:
            conn.execute("UPDATE riskatlas.notice SET ack_due_at = now() - interval '1 second' WHERE city = %s",
                         (ZHENJIANG,))
            conn.execute("SELECT pg_notify('riskatlas_delivery', '')")
            conn.commit()
        wait_for(lambda: sum(1 for m in box.messages if m["To"] == f"duty@{ZHENJIANG}.test") > before, "the resend")
        s = summary()
        assert s[NANJING]["state"] == "acknowledged"
        assert s[ZHENJIANG]["state"] == "overdue" and s[ZHENJIANG]["resent"] >= 1

        # every involved city posts to the log; a city not involved cannot
        for who in ("mas-duty", "nj-duty", "zj-duty"):
            r = c.post(f"/incidents/{iid}/log", json={"kind": "message", "body": f"{who}: 已启动应急监测"}, headers=h(who))
            assert r.status_code == 201, r.text
        assert c.post(f"/incidents/{iid}/log", json={"body": "x"}, headers=h("cz-duty")).status_code == 404
        m = c.post(f"/incidents/{iid}/log", json={"kind": "measurement", "body": "南京取水口苯浓度",
                                                  "measurement": {"parameter": "benzene", "value": 0.004,
                                                                  "unit": "mg/L"}}, headers=h("nj-duty"))
        assert m.status_code == 201

        # closing: a CAP Cancel to every addressee, referring to the earlier messages
        assert c.post(f"/incidents/{iid}/status", json={"status": "closed", "note": "解除"},
                      headers=h("mas-duty")).status_code == 200
        doc = c.get(f"/incidents/{iid}", headers=h("zj-duty")).json()
        cancel = next(n for n in doc["notices"] if n["msg_type"] == "Cancel" and n["city"] == ZHENJIANG)
        xml = c.get(f"/incidents/{iid}/notices/{cancel['id']}.cap", headers=h("zj-duty"))
        assert xml.headers["content-type"].startswith(cap.MEDIA_TYPE)
        tree = etree.fromstring(xml.content)
        assert schema.validate(tree), schema.error_log
        assert tree.findtext("c:msgType", namespaces={"c": cap.CAP_NS}) == "Cancel"
        assert tree.findtext("c:references", namespaces={"c": cap.CAP_NS})
        record = c.get(f"/incidents/{iid}/record.html", headers=h("nj-duty")).text
        for text in ("马鞍山", "南京", "镇江", "已启动应急监测", "Cancel", "@media print"):
            assert text in record
