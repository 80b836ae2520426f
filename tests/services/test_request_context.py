"""Who acts is established by the database, not by the application role.

With the application role's password in hand and no valid key, nothing of any city can be changed and
no restricted field can be read; a steward's key changes its own city's rows only; a revoked or
expired key stops at once; the role cannot widen its own limits.  Every case here failed before the
request context was signed and verified by the database (migration 0005).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from etl.load import Actor, load_file
from layers import cluster, db
from services import accounts
from services.errors import InvalidParameter
from services.web.app import create_app
from services.web.settings import APISettings

NANJING, CHUZHOU = "320100", "341100"
SOURCES = [  # key, name, lon, lat: two in Nanjing, two in Chuzhou
    ("NJ-1", "浦口化工", 118.63, 32.06), ("NJ-2", "六合化工", 118.83, 32.36),
    ("CZ-1", "滁州化工", 118.31, 32.30), ("CZ-2", "来安化工", 118.45, 32.45),
]


@pytest.fixture
def world(fresh_db, tmp_path):
    """Four sources with substances and contacts, a Nanjing steward, an analyst and an admin key."""
    lines = ["key,name,category,lon,lat,contact,substances"]
    for key, name, lon, lat in SOURCES:
        subst = json.dumps([{"name": "benzene", "cas": "71-43-2", "quantity_t": 12.5}]).replace('"', '""')
        lines.append(f'{key},{name},chemical,{lon},{lat},王工 139{key[-1]}0000000,"{subst}"')
    path = tmp_path / "sources.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load_file(fresh_db, path, "risk_source")
    assert report.rows_inserted == 4, report.to_dict()
    keys = {}
    with db.connect(fresh_db) as conn:
        for name, role, city in (("nj", "steward", NANJING), ("ana", "analyst", None), ("boss", "admin", None)):
            accounts.create_account(conn, name, role, city)
            keys[name] = accounts.create_key(conn, name)
    return fresh_db, keys


def _context(settings, secret: str) -> str:
    with db.connect(settings, "app") as conn:
        row = conn.execute("SELECT context FROM riskatlas.authenticate(%s)", (secret,)).fetchone()
    assert row is not None
    return row["context"]


def _counts(settings) -> dict:
    with db.connect(settings) as conn:
        return conn.execute("""SELECT count(*) AS n, count(*) FILTER (WHERE m_score = 99) AS touched,
                                      (SELECT count(*) FROM riskatlas.row_history) AS history
                               FROM riskatlas.risk_source""").fetchone()


def test_the_app_password_alone_changes_no_city(world):
    settings, _ = world
    before = _counts(settings)
    with db.connect(settings, "app") as conn:
        # the settings 0002's policies trusted, set by the application role itself
        conn.execute("SELECT set_config('riskatlas.role', 'admin', true), set_config('riskatlas.city', %s, true),"
                     " set_config('riskatlas.user', 'mallory', true)", (NANJING,))
        assert conn.execute("UPDATE riskatlas.risk_source SET m_score = 99").rowcount == 0
        assert conn.execute("DELETE FROM riskatlas.risk_source").rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, owner_city, geom)
                            VALUES ('X', 'x', 'other', %s, ST_SetSRID(ST_MakePoint(118.63, 32.06), 4326))""",
                         (NANJING,))
    assert _counts(settings) == before


def test_a_forged_or_replayed_context_is_refused(world):
    settings, keys = world
    good = _context(settings, keys["nj"].secret)
    parts = good.split(":")
    forged = [":".join(parts[:4] + ["admin", ""] + parts[6:]),           # role raised, old signature
              ":".join(parts[:6] + ["0" * 64]),                          # signature made up
              ":".join(parts[:2] + ["9999999999"] + parts[3:]),          # expiry pushed out
              "v1:0:9999999999:mallory:admin::" + "ab" * 32, "nonsense"]
    for ctx in forged:
        with db.connect(settings, "app") as conn:
            db.act_as(conn, ctx)
            with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification):
                conn.execute("UPDATE riskatlas.risk_source SET m_score = 99")
    assert _counts(settings)["touched"] == 0


def test_the_app_role_cannot_mint_sign_or_read_the_machinery(world):
    settings, _ = world
    refused = ["SELECT riskatlas.issue_context('mallory', 'admin', NULL)",
               "SELECT riskatlas.context_signature('v1:0:1:a:admin:')",
               "SELECT * FROM riskatlas.auth_secret", "SELECT * FROM riskatlas.api_key",
               "SELECT * FROM riskatlas.account", "SELECT * FROM riskatlas.row_history",
               "SELECT substances FROM riskatlas.risk_source", "SELECT contact FROM riskatlas.risk_source",
               "SELECT * FROM riskatlas.risk_source", "SELECT record FROM riskatlas.load_reject",
               "SELECT substances FROM riskatlas.risk_grade"]
    for statement in refused:
        with db.connect(settings, "app") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_restricted_fields_need_a_verified_reader(world):
    settings, keys = world
    query = "SELECT key, substances, contact FROM riskatlas.risk_source_visible ORDER BY key"
    with db.connect(settings, "app") as conn:
        conn.execute("SELECT set_config('riskatlas.role', 'analyst', true)")
        rows = conn.execute(query).fetchall()
    assert len(rows) == 4 and all(r["substances"] is None and r["contact"] is None for r in rows)
    with db.connect(settings, "app") as conn:
        db.act_as(conn, _context(settings, keys["ana"].secret))
        rows = conn.execute(query).fetchall()
    assert all(r["substances"][0]["quantity_t"] == 12.5 and r["contact"].startswith("王工") for r in rows)


@pytest.mark.parametrize("verb", ["update", "delete"])
def test_a_steward_changes_only_their_own_city(world, verb):
    settings, keys = world
    statement = {"update": "UPDATE riskatlas.risk_source SET m_score = 99 WHERE key = ANY(%s)",
                 "delete": "DELETE FROM riskatlas.risk_source WHERE key = ANY(%s)"}[verb]
    with db.connect(settings, "app") as conn:
        db.act_as(conn, _context(settings, keys["nj"].secret))
        assert conn.execute(statement, (["CZ-1", "CZ-2"],)).rowcount == 0
        assert conn.execute(statement, (["NJ-1"],)).rowcount == 1
        conn.commit()
    with db.connect(settings) as conn:
        hist = conn.execute("SELECT op, key, changed_by, acting_role, acting_city, old_row, new_row "
                            "FROM riskatlas.row_history WHERE op = %s", (verb,)).fetchall()
    assert [(h["key"], h["changed_by"], h["acting_role"], h["acting_city"]) for h in hist] == [
        ("NJ-1", "nj", "steward", NANJING)]
    assert hist[0]["old_row"]["key"] == "NJ-1"
    assert (hist[0]["new_row"] is None) == (verb == "delete")
    if verb == "update":
        assert hist[0]["new_row"]["m_score"] == 99 and hist[0]["old_row"]["m_score"] is None


def test_a_steward_cannot_plant_a_row_in_a_neighbours_territory(world):
    settings, keys = world
    with db.connect(settings, "app") as conn:
        db.act_as(conn, _context(settings, keys["nj"].secret))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="lies in city 341100"):
            conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, owner_city, geom)
                            VALUES ('PLANT', 'x', 'other', %s, ST_SetSRID(ST_MakePoint(118.31, 32.30), 4326))""",
                         (NANJING,))
    with db.connect(settings, "app") as conn:
        db.act_as(conn, _context(settings, keys["nj"].secret))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="lies in city 341100"):
            conn.execute("UPDATE riskatlas.risk_source SET geom = ST_SetSRID(ST_MakePoint(118.31, 32.30), 4326) "
                         "WHERE key = 'NJ-1'")


def test_a_stewards_file_cannot_move_a_row_into_another_citys_care(world, tmp_path):
    settings, keys = world
    path = tmp_path / "plant.csv"
    path.write_text(f"key,name,category,lon,lat,owner_city\nPLANT,种植,other,118.31,32.30,{NANJING}\n"
                    f"OWN,自有,other,118.63,32.07,{NANJING}\n", encoding="utf-8")
    steward = Actor(user="nj", role="steward", city=NANJING, context=_context(settings, keys["nj"].secret))
    report = load_file(settings, path, "risk_source", actor=steward)
    assert (report.rows_inserted, report.rows_rejected) == (1, 1)
    assert "belongs to city 341100" in report.rejects[0].reason and report.rejects[0].row_no == 1
    assert report.disagreements == [{"row_no": 1, "field": "owner_city", "file_says": NANJING,
                                     "location_in": CHUZHOU}]
    with db.connect(settings) as conn:
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source WHERE key = 'PLANT'").fetchone()["n"] == 0


def test_revocation_and_expiry_take_effect_at_the_next_statement(world):
    settings, keys = world
    context = _context(settings, keys["nj"].secret)
    with db.connect(settings) as conn:
        accounts.revoke_key(conn, keys["nj"].id)
    with db.connect(settings, "app") as conn:
        db.act_as(conn, context)
        with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification, match="revoked"):
            conn.execute("UPDATE riskatlas.risk_source SET m_score = 99")
    with db.connect(settings, "app") as conn:
        assert conn.execute("SELECT * FROM riskatlas.authenticate(%s)", (keys["nj"].secret,)).fetchone() is None
    analyst = _context(settings, keys["ana"].secret)
    with db.connect(settings) as conn:
        accounts.expire_key(conn, keys["ana"].id, datetime.now(UTC) - timedelta(seconds=1))
    with db.connect(settings, "app") as conn:
        db.act_as(conn, analyst)
        with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification):
            conn.execute("SELECT substances FROM riskatlas.risk_source_visible").fetchall()


def test_a_steward_without_a_city_is_refused_when_created(world):
    settings, _ = world
    with db.connect(settings) as conn:
        with pytest.raises(InvalidParameter, match="needs the city"):
            accounts.create_account(conn, "nocity", "steward", None)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO riskatlas.account (name, role) VALUES ('raw', 'steward')")


def test_the_app_role_cannot_widen_its_own_limits(world, cluster_settings):
    settings, _ = world
    with db.connect(settings, "app") as conn:
        conn.execute("ALTER ROLE CURRENT_USER SET statement_timeout = 0")  # allowed to itself by PostgreSQL
        conn.commit()
    cluster.bootstrap(cluster_settings, settings.db_name)  # every `db start` undoes it
    with db.connect(settings) as conn:
        found = conn.execute("""SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
                                WHERE r.rolname = %s AND s.setdatabase = 0""", (settings.app_role,)).fetchall()
    assert found == []
    # and the service sets its own limit on every connection it opens, whatever the role's default
    with db.connect(settings, "app", options="-c statement_timeout=1234") as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()["statement_timeout"] == "1234ms"


def test_keys_through_http_revoked_keys_stop_at_once(world, tmp_path):
    settings, keys = world
    app = create_app(settings, APISettings())
    with TestClient(app) as client:
        url = "/collections/risk_source/items?properties=key,substances"
        anon = client.get("/collections/risk_source/items?limit=10").json()
        assert all("substances" not in f["properties"] for f in anon["features"])
        r = client.get(url, headers={"Authorization": f"Bearer {keys['ana'].secret}"})
        assert r.status_code == 200, r.text
        assert r.json()["features"][0]["properties"]["substances"][0]["quantity_t"] == 12.5
        assert client.get(url, headers={"X-API-Key": "ra_not-a-key-at-all"}).status_code == 401
        with db.connect(settings) as conn:
            accounts.set_disabled(conn, "ana", True)
        # the verified context is cached by the service, but the database checks the key behind it
        assert client.get(url, headers={"X-API-Key": keys["ana"].secret}).status_code == 401


def test_an_imported_key_file_is_hashed_and_a_steward_without_city_refused(world, tmp_path):
    settings, _ = world
    good = tmp_path / "keys.json"
    good.write_text(json.dumps({"imported-key-123": {"user": "imp", "role": "analyst"}}), encoding="utf-8")
    with db.connect(settings) as conn:
        assert accounts.import_key_file(conn, good) == {"accounts": 1, "keys": 1}
        assert accounts.import_key_file(conn, good) == {"accounts": 1, "keys": 0}
        stored = conn.execute("SELECT hash FROM riskatlas.api_key k WHERE account = 'imp'").fetchone()["hash"]
    assert stored.startswith("$2") and "imported-key-123" not in stored
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"steward-key-1": {"user": "s", "role": "steward"}}), encoding="utf-8")
    with db.connect(settings) as conn, pytest.raises(InvalidParameter, match="needs the city"):
        accounts.import_key_file(conn, bad)
