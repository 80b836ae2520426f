"""Notices go out by e-mail to a real SMTP server and by signed webhook to a real HTTP receiver, each a
CAP 1.2 alert valid against the OASIS schema; an unreachable server never loses one; a notice not
acknowledged in time is marked overdue and sent again; the e-mail's one-time link acknowledges."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from layers import db
from services.incidents import cap, delivery, store
from services.incidents.settings import DeliverySettings
from services.web.app import create_app
from services.web.routers.incidents import run_as
from services.web.settings import APISettings
from tests.incidents.conftest import (
    MAANSHAN,
    NANJING,
    WEBHOOK_SECRET,
    add_users,
    load_directory,
    synthetic_spill,
    write_directory,
)
from tests.incidents.test_access import identity_of
from tests.ports import free_port


def _open(settings: Any, keys: dict[str, str], crid: str = "mas-1") -> int:
    return run_as(settings, identity_of(settings, keys["mas-duty"]), lambda conn: store.open_incident(
        conn, "spill", synthetic_spill(), client_request_id=crid, actor_city=MAANSHAN))["id"]


def _deliveries(settings: Any) -> list[dict[str, Any]]:
    with db.connect(settings) as conn:
        return conn.execute("""SELECT d.*, n.jurisdiction FROM riskatlas.delivery d
                               JOIN riskatlas.notice n ON n.id = d.notice_id ORDER BY d.id""").fetchall()


def _valid_cap(xml: bytes | str) -> etree._Element:
    schema = cap.schema()
    doc = etree.fromstring(xml if isinstance(xml, bytes) else xml.encode())
    assert schema.validate(doc), schema.error_log
    return doc


def test_mail_and_webhook_deliver_valid_signed_cap(fresh_db, smtp, webhook, tmp_path):
    box, smtp_port = smtp
    hooks, hook_port = webhook
    keys = add_users(fresh_db)
    assert load_directory(fresh_db, write_directory(tmp_path / "a.csv", hook_port))["status"] == "loaded"
    iid = _open(fresh_db, keys)
    queued = _deliveries(fresh_db)
    assert {(d["jurisdiction"], d["channel"]) for d in queued} == {
        (j, ch) for j in (MAANSHAN, NANJING, "321100", "340523") for ch in ("email", "webhook")}
    settings = DeliverySettings(smtp_host="127.0.0.1", smtp_port=smtp_port, public_url="http://riskatlas.test")
    r = delivery.run_once(fresh_db, settings)
    assert (r.delivered, r.failed) == (8, 0), r.to_dict()
    assert all(d["status"] == "delivered" for d in _deliveries(fresh_db))
    # e-mail: the bulletin, a one-time link, and the CAP alert attached
    assert len(box.messages) == 4
    nj = next(m for m in box.messages if m["To"] == f"duty@{NANJING}.test")
    body = nj.get_body(("plain",)).get_content()
    assert "南京市" in body and "Jurisdictions to notify" in body
    token = re.search(r"http://riskatlas.test/incidents/ack/(\S+)", body).group(1)
    attached = next(p for p in nj.iter_attachments() if p.get_content_type() == "application/cap+xml")
    doc = _valid_cap(attached.get_payload(decode=True))
    ns = {"c": cap.CAP_NS}
    assert doc.findtext("c:msgType", namespaces=ns) == "Alert"
    assert [i.findtext("c:language", namespaces=ns) for i in doc.findall("c:info", ns)] == ["zh-CN", "en"]
    assert doc.find("c:info/c:area/c:polygon", ns) is not None and doc.find("c:info/c:area/c:circle", ns) is not None
    # webhook: CAP as the body, HMAC-SHA256 of the body in the header
    assert len(hooks.calls) == 4
    for _path, headers, payload in hooks.calls:
        want = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), payload, hashlib.sha256).hexdigest()
        assert headers["X-Riskatlas-Signature"] == want and headers["Content-Type"] == cap.MEDIA_TYPE
        _valid_cap(payload)
    # the e-mail's link acknowledges once, as the agency's address
    with TestClient(create_app(fresh_db, APISettings(pool_min=1, pool_max=2), DeliverySettings(worker=False))) as c:
        assert "确认收到" in c.get(f"/incidents/ack/{token}").text  # opening the link changes nothing
        assert c.post(f"/incidents/ack/{token}").status_code == 200
        assert c.post(f"/incidents/ack/{token}").status_code == 404
        doc = c.get(f"/incidents/{iid}", headers={"X-API-Key": keys["nj-duty"]}).json()
    nj_notice = next(n for n in doc["notices"] if n["jurisdiction"] == NANJING)
    assert nj_notice["acknowledged_via"] == "link" and nj_notice["acknowledged_by"] == f"link:duty@{NANJING}.test"
    summary = {s["city"]: s for s in doc["summary"]}
    assert summary[NANJING]["delivered_email"] == 1 and summary[NANJING]["delivered_webhook"] == 1


def test_an_unreachable_server_keeps_the_notice_queued_until_it_answers(fresh_db, webhook, tmp_path):
    hooks, hook_port = webhook
    keys = add_users(fresh_db)
    load_directory(fresh_db, write_directory(tmp_path / "a.csv", hook_port))
    _open(fresh_db, keys)
    hooks.status = 503
    dead = DeliverySettings(smtp_host="127.0.0.1", smtp_port=free_port(), timeout_s=2)
    r = delivery.run_once(fresh_db, dead)
    assert (r.delivered, r.failed) == (0, 8)
    rows = _deliveries(fresh_db)
    assert all(d["status"] == "queued" and d["attempts"] == 1 and d["last_error"] for d in rows)
    assert any("unreachable" in d["last_error"] for d in rows if d["channel"] == "email")
    assert any("HTTP 503" in d["last_error"] for d in rows if d["channel"] == "webhook")
    # backing off: nothing is due yet, so a round right away sends nothing
    assert delivery.run_once(fresh_db, dead).taken == 0
    with db.connect(fresh_db) as conn:
        conn.execute("UPDATE riskatlas.delivery SET next_attempt_at = now() - interval '1 second'")
        conn.commit()
    hooks.status = 200
    r = delivery.run_once(fresh_db, dead)
    assert (r.delivered, r.failed) == (4, 4)  # the webhooks went through; e-mail is still down, still queued
    rows = _deliveries(fresh_db)
    assert {d["channel"] for d in rows if d["status"] == "queued"} == {"email"}
    assert all(d["attempts"] == 2 for d in rows)


def test_not_acknowledged_in_time_is_overdue_and_sent_again(fresh_db, smtp, tmp_path):
    box, smtp_port = smtp
    keys = add_users(fresh_db)
    load_directory(fresh_db, write_directory(tmp_path / "a.csv", None))
    iid = _open(fresh_db, keys)
    settings = DeliverySettings(smtp_host="127.0.0.1", smtp_port=smtp_port)
    assert delivery.run_once(fresh_db, settings).delivered == 4
    run_as(fresh_db, identity_of(fresh_db, keys["nj-duty"]), lambda conn: store.acknowledge(conn, iid))
    with db.connect(fresh_db) as conn:  # the deadline (30 min for Severe) has passed
        conn.execute("UPDATE riskatlas.notice SET ack_due_at = now() - interval '1 minute'")
        conn.commit()
    r = delivery.run_once(fresh_db, settings)
    assert r.overdue == 3 and r.delivered == 3  # every city but Nanjing, which acknowledged
    with db.connect(fresh_db) as conn:
        rows = {n["jurisdiction"]: n for n in conn.execute(
            "SELECT jurisdiction, overdue_at, resent, ack_due_at > now() AS later FROM riskatlas.notice").fetchall()}
    assert rows[NANJING]["overdue_at"] is None and rows[NANJING]["resent"] == 0
    assert rows["321100"]["overdue_at"] is not None and rows["321100"]["resent"] == 1 and rows["321100"]["later"]
    assert len(box.messages) == 7
    assert delivery.run_once(fresh_db, settings).overdue == 0  # a new deadline, not a resend every round


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
def test_the_directory_loads_whole_or_not_at_all(fresh_db, tmp_path, encoding):
    path = write_directory(tmp_path / "a.csv", 8080, encoding=encoding)
    assert load_directory(fresh_db, path)["rows_inserted"] == 6
    text = path.read_text(encoding=encoding)
    bad = text.replace("duty@320100.test", "not-an-address").replace("340200", "999999")
    path.write_text(bad, encoding=encoding)
    report = load_directory(fresh_db, path)
    assert report["status"] == "rejected" and report["rows_updated"] == 0
    assert {(r["row"], r["field"]) for r in report["rejects"]} == {(3, "duty_email"), (6, "jurisdiction")}
    with db.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.agency WHERE duty_email = 'not-an-address'"
                            ).fetchone()["n"] == 0
        history = conn.execute("SELECT count(*) AS n FROM riskatlas.agency_history").fetchone()["n"]
    assert history == 6
