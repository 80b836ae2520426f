"""Uploads through the API: roles, the steward's city enforced, clear 4xx for bad files."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest
from fastapi.testclient import TestClient

from layers import db
from services.web.app import create_app
from services.web.settings import APISettings

KEYS = {"nanjing-key": {"user": "nanjing-steward", "role": "steward", "city": "320100"},
        "admin-key": {"user": "root", "role": "admin"},
        "viewer-key": {"user": "viewer", "role": "analyst"}}
CSV = "name,category,lon,lat\n浦口化工,chemical,118.63,32.06\n滁州化工,chemical,118.31,32.30\n"


@pytest.fixture
def client(fresh_db, tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(KEYS), encoding="utf-8")
    app = create_app(fresh_db, APISettings(api_keys_file=keys, max_upload_bytes=4096))
    with TestClient(app) as c:
        yield c


def post(client, key, content, name="sources.csv", layer="risk_source", **form):
    headers = {"X-API-Key": key} if key else {}
    return client.post("/uploads", headers=headers, files={"file": (name, content.encode(), "text/csv")},
                       data={"layer": layer, **form})


def test_steward_upload_loads_only_their_city(client, fresh_db):
    r = post(client, "nanjing-key", CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rows_inserted"] == 1 and body["rows_rejected"] == 1
    assert "a steward of 320100 may only load" in body["rejects"][0]["reason"]
    with db.connect(fresh_db) as conn:
        rows = conn.execute("SELECT name, owner_city, updated_by FROM riskatlas.risk_source").fetchall()
    assert rows == [{"name": "浦口化工", "owner_city": "320100", "updated_by": "nanjing-steward"}]
    # the audit names the person and the city, not the database role
    with db.connect(fresh_db) as conn:
        batch = conn.execute("SELECT loaded_by, as_city FROM riskatlas.load_batch WHERE layer = 'risk_source'"
                             ).fetchone()
        hist = conn.execute("SELECT op, changed_by, acting_role, acting_city, new_row->>'name' AS name "
                            "FROM riskatlas.row_history").fetchall()
    assert batch == {"loaded_by": "nanjing-steward", "as_city": "320100"}
    assert hist == [{"op": "insert", "changed_by": "nanjing-steward", "acting_role": "steward",
                     "acting_city": "320100", "name": "浦口化工"}]


def test_admin_loads_everything(client):
    r = post(client, "admin-key", CSV)
    assert r.status_code == 200 and r.json()["rows_inserted"] == 2


def test_roles_and_bad_input_get_clear_4xx(client):
    assert post(client, None, CSV).status_code == 403
    assert post(client, "viewer-key", CSV).status_code == 403
    assert post(client, "wrong-key", CSV).status_code == 401
    r = post(client, "admin-key", CSV, layer="admin_area")
    assert r.status_code == 400 and "expected to be one of" in r.json()["description"]
    r = post(client, "admin-key", CSV, name="evil.vrt")
    assert r.status_code == 400 and ".vrt" in r.json()["description"]
    r = post(client, "admin-key", "x" * 5000)
    assert r.status_code == 413
    r = post(client, "admin-key", "name,category,lon,lat\n,chemical,118.63,32.06\n")
    assert r.status_code == 422 and r.json()["exit_code"] == 2
    r = post(client, "admin-key", CSV, mapping="../../etc/passwd")
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")


def test_layers_then_health_on_the_same_pooled_connection(fresh_db):
    from services.web.settings import APISettings as S

    with TestClient(create_app(fresh_db, S(pool_min=1, pool_max=1))) as c:
        assert c.get("/layers").status_code == 200
        r = c.get("/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"


def _vrt(source: str) -> str:
    return (f'<OGRVRTDataSource><OGRVRTLayer name="leak"><SrcDataSource>{source}</SrcDataSource>'
            "<SrcLayer>canary</SrcLayer></OGRVRTLayer></OGRVRTDataSource>\n")


def _zipped(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_hostile_uploads_are_400s_that_name_the_file_and_leak_nothing(client, tmp_path):
    token = f"CANARY-{uuid.uuid4().hex}"
    canary = tmp_path / "canary.csv"
    canary.write_text(f"name,secret\nx,{token}\n", encoding="utf-8")
    payload = _vrt(str(canary))
    uploads = {"x.json": payload.encode(), "x.geojson": _vrt(f"CSV:{canary}").encode(), "x.kml": payload.encode(),
               "x.gpkg": payload.encode(), "x.csv": payload.encode(),
               "x.zip": _zipped({"leak.geojson": payload}), "x.kmz": _zipped({"doc.kml": payload})}
    for name, content in uploads.items():
        for key in ("admin-key", "nanjing-key"):
            r = client.post("/uploads", headers={"X-API-Key": key},
                            files={"file": (name, content, "application/octet-stream")},
                            data={"layer": "risk_source", "dry_run": "true"})
            assert r.status_code == 400, (name, r.status_code, r.text)
            description = r.json()["description"]
            assert description.startswith(f"file {name}:"), description
            assert token not in r.text and "riskatlas-upload-" not in r.text and "/tmp" not in r.text, r.text
            assert "OGRVRTDataSource" not in r.text
