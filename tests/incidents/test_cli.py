"""``riskatlas incidents`` as a real process: open from a spill request, list, ack, close, deliver, the
directory, with ``--json`` and exit codes; ``--as-user`` acts under row-level security."""

from __future__ import annotations

import json

from tests.incidents.conftest import NANJING, add_users, write_directory
from tests.services.test_cli import run


def _json(settings, *args: str) -> tuple[int, object]:
    p = run(settings, "incidents", *args, "--json")
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else p.stderr


def test_incidents_cli(demo_copy, tmp_path):
    add_users(demo_copy)
    request = tmp_path / "spill.json"
    request.write_text(json.dumps({"x": 118.45, "y": 31.753, "substance": "苯", "mass_t": 10,
                                   "release_time": "2026-03-01T08:00"}), encoding="utf-8")
    code, doc = _json(demo_copy, "open", str(request), "--kind", "spill", "--id", "cli-1", "--as-user", "nj-steward")
    assert code == 2 and "duty" in doc["error"], doc  # a steward opens nothing (row-level security)
    code, doc = _json(demo_copy, "open", str(request), "--kind", "spill", "--id", "cli-1", "--as-user", "mas-duty")
    assert code == 0 and doc["created"] and doc["notices"] >= 3, doc
    iid = doc["id"]
    assert _json(demo_copy, "open", str(request), "--kind", "spill", "--id", "cli-1", "--as-user", "mas-duty")[1] == {
        **doc, "created": False}
    code, listed = _json(demo_copy, "list", "--as-user", "cz-duty")
    assert code == 0 and iid not in [i["id"] for i in listed]
    assert _json(demo_copy, "show", str(iid), "--as-user", "cz-duty")[0] == 2
    code, acked = _json(demo_copy, "ack", str(iid), "--as-user", "nj-duty")
    assert code == 0 and {a["city"] for a in acked} == {NANJING}
    code, shown = _json(demo_copy, "show", str(iid), "--as-user", "nj-duty")
    assert {s["city"]: s["state"] for s in shown["summary"]}[NANJING] == "acknowledged"
    code, delivered = _json(demo_copy, "deliver")
    assert code == 0 and delivered["failed"] == delivered["taken"] > 0  # no SMTP server configured: still queued
    assert "no SMTP server configured" in delivered["errors"][0]
    code, closed = _json(demo_copy, "close", str(iid), "--as-user", "mas-duty")
    assert code == 0 and closed["status"] == "closed" and closed["notices"] == doc["notices"]
    bad = write_directory(tmp_path / "dir.csv", None)
    bad.write_text(bad.read_text(encoding="gb18030").replace("340200", "12345x"), encoding="gb18030")
    code, report = _json(demo_copy, "agencies", str(bad), "--as-user", "nj-steward")
    assert code == 1 and report["status"] == "rejected" and report["rejects"][0]["field"] == "jurisdiction"
    good = write_directory(tmp_path / "dir2.csv", None)
    code, report = _json(demo_copy, "agencies", str(good), "--as-user", "nj-steward")
    assert code == 2 and "row-level security" in report["error"]  # Nanjing's steward may not write Ma'anshan's
