"""Bad input to the sync: each a clear 4xx naming the file, the record or the question; a batch with one bad
record keeps the good ones."""

from __future__ import annotations

import pytest

from layers import db
from services.inspections import photos
from tests.inspections import images
from tests.inspections.test_joint_inspection import _h, record, sync


@pytest.mark.parametrize("name, data, words", [
    ("notes.jpg", b"<svg onload=alert(1)></svg>", "not a JPEG or PNG"),
    ("bomb.png", images.png_bomb(), "decompression bomb"),
    ("huge.jpg", b"\xff\xd8\xff" + bytes(photos.MAX_BYTES), "limited to"),
    ("cut.jpg", images.jpeg()[:300], "damaged or truncated"),
])
def test_a_bad_photo_rejects_its_record_naming_the_file(client, name, data, words):
    """The record naming a bad photo is rejected with the file's name and why; the other record is saved."""
    c, settings, keys = client
    recs = [record("CZ-CHEM", version=1, answers={}, photos=[name]), record("CZ-CHEM", version=1, answers={})]
    r = sync(c, keys, "cz.insp", recs, [(name, data)])
    assert r.status_code == 200, r.text
    first, second = r.json()["records"]
    assert first["status"] == "rejected" and name in first["reason"] and words in first["reason"]
    assert second["status"] == "saved"
    only = sync(c, keys, "cz.insp", recs[:1], [(name, data)])
    assert only.status_code == 422 and name in only.json()["records"][0]["reason"]


def test_a_batch_keeps_its_good_records_and_names_each_bad_one(client):
    c, settings, keys = client
    good = record("CZ-CHEM", version=1, answers={"emergency-plan": True}, photos=["p.png", "j.jpg"])
    bad = [
        record("NJ-CHEM", version=1, answers={}, lon=118.63, lat=32.06),        # outside a Chuzhou inspector's scope
        record("CZ-CHEM", version=1, answers={}, lon=116.0, lat=40.0),          # Beijing: outside the region
        record("CZ-CHEM", version=1, answers={"drill-count": 2}),               # a question of version 2 only
        record("CZ-CHEM", version=7, answers={}),                               # no such version
        record("NOPE", version=1, answers={}),                                  # not a site
        record("CZ-CHEM", version=1, answers={}, findings=[{"kind": "arson", "severity": "high"}]),
    ]
    r = sync(c, keys, "cz.insp", [good, *bad], [("p.png", images.png()), ("j.jpg", images.jpeg())])
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["saved"], doc["rejected"]) == (1, 6)
    reasons = {x["index"]: x.get("reason", "") for x in doc["records"]}
    assert "outside your scope" in reasons[1] and "outside the region" in reasons[2]
    assert "'drill-count' is not in checklist 'chemical' version 1" in reasons[3]
    assert "no version 7" in reasons[4] and "not a known risk source" in reasons[5] and "'arson'" in reasons[6]
    with db.connect(settings) as conn:
        got = conn.execute("""SELECT p.media_type, p.exif_lon, p.exif_lat, length(b.bytes) AS n
                              FROM riskatlas.inspection_photo p JOIN riskatlas.inspection_photo_blob b ON b.photo_id = p.id
                              JOIN riskatlas.inspection_record r ON r.id = p.record_id WHERE r.key = %s
                              ORDER BY p.media_type""", (good["client_id"],)).fetchall()
    assert [(g["media_type"], g["exif_lon"], g["exif_lat"]) for g in got] == [
        ("image/jpeg", pytest.approx(118.31), pytest.approx(32.30)), ("image/png", None, None)]
    # a batch of nothing but bad records: 422; the public and analysts may not sync at all
    assert sync(c, keys, "cz.insp", bad[:1]).status_code == 422
    assert c.post("/inspections/sync", data={"records": "[]"}).status_code in (401, 403)
    assert sync(c, keys, "ana", [good]).status_code == 403
    assert c.get("/inspections/reports", headers=_h(keys, "cz"), params={"month": "2026-13"}).status_code == 400
