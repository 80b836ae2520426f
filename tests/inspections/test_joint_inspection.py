"""The issue's "done when": a joint Nanjing–Chuzhou task along their border, two inspectors' records
synced, a finding opens a case in Chuzhou that Nanjing reads, the follow-up closes it, and the monthly
pair report counts it."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone

from layers import db
from tests.inspections import images
from tests.inspections.conftest import CHUZHOU, MAANSHAN, NANJING

CST = timezone(timedelta(hours=8))


def _h(keys, who):
    return {"X-API-Key": keys[who]}


def record(site, *, task=None, lon=118.312, lat=32.301, answers=None, findings=(), photos=(), version=2,
           template="chemical", cid=None):
    return {"client_id": cid or str(uuid.uuid4()), "task_id": task, "site_key": site, "template": template,
            "template_version": version,
            "answers": {"emergency-plan": False, "drill-count": 1} if answers is None else answers,
            "position": {"lon": lon, "lat": lat}, "accuracy_m": 8.5,
            "device_time": datetime.now(CST).replace(microsecond=0).isoformat(), "findings": list(findings),
            "photos": list(photos), "synthetic": True}


def sync(c, keys, who, recs, files=()):
    return c.post("/inspections/sync", headers=_h(keys, who), data={"records": json.dumps(recs)},
                  files=[("photos", (name, data, "application/octet-stream")) for name, data in files])


def test_a_joint_task_from_plan_to_closed_case_and_the_pair_report(client):
    c, settings, keys = client
    task = c.post("/inspections/tasks", headers=_h(keys, "nj"), json={
        "title": "宁滁边界联合执法检查（合成）", "title_en": "Nanjing–Chuzhou border joint inspection (synthetic)",
        "cities": [NANJING, CHUZHOU],
        "teams": [{"city": NANJING, "name": "南京一队", "members": ["nj.insp"]},
                  {"city": CHUZHOU, "name": "滁州一队", "members": ["cz.insp"]}],
        "site_keys": ["NJ-CHEM", "CZ-CHEM"], "starts_on": str(datetime.now(CST).date()),
        "ends_on": str(datetime.now(CST).date() + timedelta(days=7)), "template": "chemical",
        "inspectors": ["nj.insp", "cz.insp"], "synthetic": True})
    assert task.status_code == 201, task.text
    t = task.json()
    assert t["joint"] and t["template_version"] == 2 and t["lead_city"] == NANJING
    # both cities and the assigned inspectors see it; a third city does not
    for who in ("cz", "nj.insp", "cz.insp"):
        assert t["id"] in [x["id"] for x in c.get("/inspections/tasks", headers=_h(keys, who)).json()["tasks"]], who
    assert c.get(f"/inspections/tasks/{t['id']}", headers=_h(keys, "mas")).status_code == 404

    # the Nanjing inspector records at the Chuzhou site (assigned by the joint task), with a finding and a photo;
    # the Chuzhou inspector records the same site; the batch is sent twice (a retried sync)
    photo = images.jpeg(118.31, 32.30)
    a = record("CZ-CHEM", task=t["id"], findings=[{"kind": "emergency-plan", "severity": "high", "item": "emergency-plan",
                                                    "note": "应急预案未备案"}], photos=["a-1.jpg"])
    far = record("CZ-CHEM", task=t["id"], lon=118.40, lat=32.30)   # about 8.5 km away: flagged, not refused
    for _ in range(2):
        r = sync(c, keys, "nj.insp", [a, far], [("a-1.jpg", photo)])
        assert r.status_code == 200, r.text
    assert r.json()["already-synced"] == 2
    b = record("CZ-CHEM", task=t["id"], answers={"emergency-plan": True})
    assert sync(c, keys, "cz.insp", [b]).json()["saved"] == 1
    with db.connect(settings) as conn:
        rows = conn.execute("""SELECT key, inspector, inspector_city, site_city, far, distance_m FROM riskatlas.inspection_record
                               ORDER BY received_at""").fetchall()
        hist = conn.execute("""SELECT changed_by, acting_city, new_row->>'site_key' AS site FROM riskatlas.row_history
                               WHERE layer = 'inspection_record' ORDER BY id""").fetchall()
    assert [(x["key"], x["inspector"], x["far"]) for x in rows] == [
        (a["client_id"], "nj.insp", False), (far["client_id"], "nj.insp", True), (b["client_id"], "cz.insp", False)]
    assert rows[0]["distance_m"] < 500 and 7000 < rows[1]["distance_m"] < 10000
    assert {x["site_city"] for x in rows} == {CHUZHOU}
    assert hist[0] == {"changed_by": "nj.insp", "acting_city": NANJING, "site": "CZ-CHEM"} and len(hist) == 3

    # the finding opens a case in Chuzhou: Chuzhou's steward opens it, Nanjing's may not but reads it
    hist = c.get("/sites/CZ-CHEM/history", headers=_h(keys, "nj")).json()["events"]
    finding = next(e for e in hist if e["kind"] == "finding")
    deadline = str(datetime.now(CST).date() + timedelta(days=30))
    body = {"finding_id": finding["detail"]["finding_id"], "deadline": deadline, "measures": "30日内完成预案备案"}
    assert c.post("/inspections/cases", headers=_h(keys, "nj"), json=body).status_code == 403
    opened = c.post("/inspections/cases", headers=_h(keys, "cz"), json=body)
    assert opened.status_code == 201, opened.text
    case = opened.json()
    assert (case["owner_city"], case["status"], case["overdue"], case["cities"]) == (CHUZHOU, "open", False,
                                                                                    [NANJING, CHUZHOU])
    assert c.get(f"/inspections/cases/{case['id']}", headers=_h(keys, "nj")).status_code == 200
    assert c.get(f"/inspections/cases/{case['id']}", headers=_h(keys, "mas")).status_code == 404
    assert c.post(f"/inspections/cases/{case['id']}/close", headers=_h(keys, "cz"), json={}).status_code == 409

    # the follow-up (复查): a new record by the Chuzhou inspector, found rectified; then 结案
    fu = record("CZ-CHEM", task=t["id"], answers={"emergency-plan": True})
    assert sync(c, keys, "cz.insp", [fu]).json()["saved"] == 1
    assert c.post(f"/inspections/cases/{case['id']}/follow-up", headers=_h(keys, "nj"),
                  json={"rectified": True, "record": fu["client_id"]}).status_code == 403
    f = c.post(f"/inspections/cases/{case['id']}/follow-up", headers=_h(keys, "cz"),
               json={"rectified": True, "record": fu["client_id"], "note": "已备案"})
    assert f.status_code == 200, f.text
    closed = c.post(f"/inspections/cases/{case['id']}/close", headers=_h(keys, "cz"), json={"note": "结案"}).json()
    assert closed["status"] == "closed" and closed["closed_by"] == "cz"

    # Nanjing reads the whole history, in time order; the photo, re-encoded, is served to it but not to the public
    events = c.get("/sites/CZ-CHEM/history", headers=_h(keys, "nj")).json()["events"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("inspection") == 4 and kinds[0] == "inspection" and kinds.count("finding") == 1
    assert "case-opened" in kinds and kinds[-2:] == ["case-follow-up", "case-closed"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    with db.connect(settings) as conn:
        pid = conn.execute("SELECT id FROM riskatlas.inspection_photo").fetchone()["id"]
    got = c.get(f"/inspections/photos/{pid}", headers=_h(keys, "nj"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg" and b"TestCam" not in got.content
    assert c.get(f"/inspections/photos/{pid}").status_code == 403
    assert c.get(f"/inspections/photos/{pid}", headers=_h(keys, "mas")).status_code == 404

    # the month's pair report counts the task, the records, the finding and the case
    month = datetime.now(CST).strftime("%Y-%m")
    rep = c.get("/inspections/reports", headers=_h(keys, "nj"), params={"month": month, "other": CHUZHOU}).json()
    assert (rep["inspections"], rep["findings"], rep["findings_by_type"]["emergency-plan"], rep["cases_opened"],
            rep["cases_closed"], rep["cases_overdue"], rep["joint_tasks"]) == (4, 1, 1, 1, 1, 0, 1)
    text = c.get("/inspections/reports", headers=_h(keys, "cz"),
                 params={"month": month, "city": CHUZHOU, "other": NANJING, "format": "csv"}).text
    row = next(csv.DictReader(io.StringIO(text)))
    assert (row["inspections"], row["cases_opened"], row["cases_closed"], row["joint_tasks"]) == ("4", "1", "1", "1")
    page = c.get("/inspections/reports", headers=_h(keys, "cz"), params={"month": month, "format": "html"})
    assert "结案" in page.text and "cases closed" in page.text
    assert c.get("/inspections/reports", headers=_h(keys, "mas"),
                 params={"month": month, "city": MAANSHAN}).json()["inspections"] == 0
