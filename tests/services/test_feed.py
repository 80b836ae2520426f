"""The change feed for neighbours: Chuzhou's new major source within 5 km of Nanjing's border appears in
Nanjing's feed (JSON, Atom, JSON Feed) and as an alert for Nanjing's subscription; restricted fields never
show to the public, not even as an update that changed only them; subscriptions and alerts are the city's.
Over the region's real boundaries in a fresh database; sources written here as Chuzhou's steward."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from layers import cluster, db
from layers.settings import DatabaseSettings
from services import accounts
from services.feed import match
from services.hazards.borders import ensure_borders
from services.web.app import create_app
from services.web.settings import APISettings
from tests.conftest import _clone
from tests.services.test_cli import run

NANJING, CHUZHOU = "320100", "341100"
ATOM = "{http://www.w3.org/2005/Atom}"
RESTRICTED = ("substances", "contact", "q_value")


def _points(conn: Any) -> dict[str, tuple[float, float]]:
    """A point of Chuzhou 1-3 km from its border with Nanjing, one 20-40 km from it, one of Nanjing's own
    near the border: chosen from the real boundaries with geodesic distances."""
    near = conn.execute("""
        WITH cand AS (
            SELECT ST_Project(ST_PointN(b.geom, 1)::geography, 2000, ST_Azimuth(ST_PointN(b.geom, 1),
                   ST_Centroid(a.geom)))::geometry AS g
            FROM riskatlas.admin_border_piece b JOIN riskatlas.admin_area a ON a.code = b.code
            WHERE b.level = 'city' AND b.code = %(cz)s AND b.other_code = %(nj)s)
        SELECT ST_X(g) AS x, ST_Y(g) AS y FROM cand
        WHERE riskatlas.city_at(g) = %(cz)s
          AND (SELECT min(ST_Distance(p.geom::geography, g::geography)) FROM riskatlas.admin_border_piece p
               WHERE p.level = 'city' AND p.code = %(nj)s) BETWEEN 1000 AND 3000
        LIMIT 1""", {"cz": CHUZHOU, "nj": NANJING}).fetchone()
    far = conn.execute("""
        SELECT ST_X(g) AS x, ST_Y(g) AS y FROM (
            SELECT (ST_Dump(ST_GeneratePoints(a.geom, 400, 7))).geom AS g
            FROM riskatlas.admin_area a WHERE a.code = %(cz)s) c
        WHERE (SELECT min(ST_Distance(p.geom::geography, c.g::geography)) FROM riskatlas.admin_border_piece p
               WHERE p.level = 'city' AND p.code = %(nj)s) BETWEEN 20000 AND 40000
          AND riskatlas.city_at(c.g) = %(cz)s
        LIMIT 1""", {"cz": CHUZHOU, "nj": NANJING}).fetchone()
    own = conn.execute("""
        SELECT ST_X(g) AS x, ST_Y(g) AS y FROM (
            SELECT (ST_Dump(ST_GeneratePoints(a.geom, 2000, 11))).geom AS g
            FROM riskatlas.admin_area a WHERE a.code = %(nj)s) c
        WHERE (SELECT min(ST_Distance(p.geom::geography, c.g::geography)) FROM riskatlas.admin_border_piece p
               WHERE p.level = 'city' AND p.code = %(nj)s) < 4000
          AND riskatlas.city_at(c.g) = %(nj)s
        LIMIT 1""", {"nj": NANJING}).fetchone()
    assert near and far and own, (near, far, own)
    return {"near": (near["x"], near["y"]), "far": (far["x"], far["y"]), "own": (own["x"], own["y"])}


def _insert(conn: Any, key: str, name: str, level: str, city: str, xy: tuple[float, float]) -> None:
    conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, risk_level, substances, contact, q_value,
                        city_code, owner_city, synthetic, geom)
                    VALUES (%s, %s, 'chemical', %s, '[{"name": "苯", "cas": "71-43-2", "quantity_t": 120}]',
                            '王工 13800000000', 12.0, %s, %s, true, ST_SetSRID(ST_MakePoint(%s, %s), 4326))""",
                 (key, name, level, city, city, *xy))


@pytest.fixture(scope="module")
def feed_db(cluster_settings: DatabaseSettings, fresh_template: str) -> Iterator[tuple[DatabaseSettings, dict[str, str]]]:
    """The region's boundaries with city borders derived; stewards of Nanjing and Chuzhou, an analyst and an
    administrator (keys by name); Nanjing subscribed (as owner here) to major sources within 5 km."""
    s = _clone(cluster_settings, fresh_template, "feed")
    keys: dict[str, str] = {}
    with db.connect(s) as conn:
        ensure_borders(conn, 5.0, levels=("city",))
        for name, role, city in (("nj", "steward", NANJING), ("cz", "steward", CHUZHOU), ("ana", "analyst", None),
                                 ("boss", "admin", None), ("nj.duty", "duty", NANJING)):
            accounts.create_account(conn, name, role, city)
            keys[name] = accounts.create_key(conn, name).secret
        conn.commit()
        pts = _points(conn)
        with conn.transaction():
            db.set_actor(conn, user="cz", role="steward", city=CHUZHOU)
            _insert(conn, "CZ-NEAR", "滁州临界化工（合成）", "major", CHUZHOU, pts["near"])
            _insert(conn, "CZ-FAR", "滁州远端化工（合成）", "major", CHUZHOU, pts["far"])
            _insert(conn, "CZ-NEAR-GEN", "滁州临界小厂（合成）", "general", CHUZHOU, pts["near"])
        with conn.transaction():
            db.set_actor(conn, user="nj", role="steward", city=NANJING)
            _insert(conn, "NJ-OWN", "南京边界化工（合成）", "major", NANJING, pts["own"])
        with conn.transaction():  # an update of restricted fields only
            db.set_actor(conn, user="cz", role="steward", city=CHUZHOU)
            conn.execute("UPDATE riskatlas.risk_source SET q_value = 99, contact = '李工' WHERE key = 'CZ-NEAR'")
    yield s, keys
    cluster.drop_database(cluster_settings, s.db_name)


@pytest.fixture(scope="module")
def client(feed_db: tuple[DatabaseSettings, dict[str, str]]) -> Iterator[TestClient]:
    with TestClient(create_app(feed_db[0], APISettings(pool_min=1, pool_max=2))) as c:
        yield c


def _h(keys: dict[str, str], name: str) -> dict[str, str]:
    return {"X-API-Key": keys[name]}


def test_the_neighbours_new_major_source_is_in_nanjings_feed_and_alerts(feed_db, client):
    s, keys = feed_db
    # the subscription, through the API, as Nanjing's steward
    r = client.post("/changes/subscriptions", json={"min_level": "major", "within_m": 5000}, headers=_h(keys, "nj"))
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["city"] == NANJING and "重大及以上" in sub["description"]["zh"]

    doc = client.get("/changes", params={"near_city": NANJING, "within_m": 5000, "layer": "risk_source"}).json()
    keys_ops = [(c["key"], c["op"]) for c in doc["changes"]]
    assert ("CZ-NEAR", "insert") in keys_ops and ("CZ-NEAR-GEN", "insert") in keys_ops
    assert ("NJ-OWN", "insert") in keys_ops
    assert all(k != "CZ-FAR" for k, _ in keys_ops), "a source 20-40 km from the border is not near it"
    near = next(c for c in doc["changes"] if c["key"] == "CZ-NEAR")
    assert near["changed_by"] == "cz" and near["acting_city"] == CHUZHOU and near["new"]["risk_level"] == "major"
    assert near["title"]["text"].startswith("新增环境风险源：滁州临界化工") and " / " in near["title"]["text"]

    with db.connect(s) as conn, conn.transaction():
        report = match(conn)
    # CZ-NEAR's insert and its update: the far one, the general one and Nanjing's own are not
    assert report["alerts"] == {NANJING: 2}, report
    with db.connect(s) as conn, conn.transaction():
        assert match(conn)["written"] == 0  # nothing twice

    r = client.get("/changes/alerts", headers=_h(keys, "nj"))
    assert r.status_code == 200, r.text
    alerts = r.json()["alerts"]  # newest first
    assert [(a["change"]["key"], a["change"]["op"]) for a in alerts] == [("CZ-NEAR", "update"), ("CZ-NEAR", "insert")]
    assert 1000 <= alerts[0]["border_distance_m"] <= 3000
    assert alerts[0]["change"]["new"]["substances"], "a steward sees the quantities"
    assert alerts[0]["change"]["changed"] == ["contact", "q_value"]
    # Chuzhou sees none of Nanjing's alerts and cannot mark them; the public has none
    assert client.get("/changes/alerts", headers=_h(keys, "cz")).json()["alerts"] == []
    assert client.post(f"/changes/alerts/{alerts[0]['id']}/seen", headers=_h(keys, "cz")).status_code == 404
    assert client.get("/changes/alerts").status_code == 403
    assert client.get("/changes/subscriptions", headers=_h(keys, "cz")).json()["subscriptions"] == []
    assert client.delete(f"/changes/subscriptions/{sub['id']}", headers=_h(keys, "cz")).status_code == 404

    text = run(s, "feed", "digest", "--city", NANJING)
    assert text.returncode == 0, text.stderr
    assert "滁州临界化工" in text.stdout and "重大" in text.stdout and "2 unseen alert" in text.stdout

    for a in alerts:
        seen = client.post(f"/changes/alerts/{a['id']}/seen", headers=_h(keys, "nj"))
        assert seen.status_code == 200 and seen.json()["seen_by"] == "nj"
    assert client.get("/changes/alerts", params={"unseen": True}, headers=_h(keys, "nj")).json()["alerts"] == []
    # Nanjing's duty officer reads the city's alerts too; an analyst acts for no city
    duty = client.get("/changes/alerts", headers=_h(keys, "nj.duty"))
    assert duty.status_code == 200 and len(duty.json()["alerts"]) == 2
    assert client.get("/changes/alerts", headers=_h(keys, "ana")).status_code == 403


def test_restricted_fields_never_show_to_the_public(feed_db, client):
    _s, keys = feed_db
    public = client.get("/changes", params={"layer": "risk_source"}).json()["changes"]
    assert public and all(not (set(RESTRICTED) & set(c["new"] or {})) for c in public)
    # the update of CZ-NEAR changed only q_value and contact: the public is not told it happened
    assert not [c for c in public if c["key"] == "CZ-NEAR" and c["op"] == "update"]
    analyst = client.get("/changes", params={"layer": "risk_source"}, headers=_h(keys, "ana")).json()["changes"]
    update = [c for c in analyst if c["key"] == "CZ-NEAR" and c["op"] == "update"]
    assert len(update) == 1 and set(update[0]["changed"]) == {"contact", "q_value"}
    assert update[0]["old"]["q_value"] == 12.0 and update[0]["new"]["q_value"] == 99
    atom = client.get("/changes", params={"f": "atom"}).content
    assert b"13800000000" not in atom and "王工".encode() not in atom


def test_atom_and_json_feed_are_valid_and_page(feed_db, client):
    r = client.get("/changes", params={"f": "atom", "near_city": NANJING, "within_m": 5000, "limit": 2})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = etree.fromstring(r.content)
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert feed.find(f"{ATOM}{required}") is not None and feed.find(f"{ATOM}{required}").text
    assert "南京" in feed.find(f"{ATOM}title").text
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 2
    for e in entries:
        for required in ("id", "title", "updated"):
            assert e.find(f"{ATOM}{required}").text
        assert e.find(f"{ATOM}author/{ATOM}name").text
    nxt = feed.find(f"{ATOM}link[@rel='next']").get("href")
    page2 = etree.fromstring(client.get(nxt).content)
    ids1 = {e.find(f"{ATOM}id").text for e in entries}
    ids2 = {e.find(f"{ATOM}id").text for e in page2.findall(f"{ATOM}entry")}
    assert ids2 and not ids1 & ids2

    jf = client.get("/changes", params={"f": "jsonfeed", "near_city": NANJING, "within_m": 5000, "limit": 2})
    assert jf.headers["content-type"].startswith("application/feed+json")
    doc = jf.json()
    assert doc["version"] == "https://jsonfeed.org/version/1.1" and doc["title"] and doc["next_url"]
    assert all(i["id"] and i["content_text"] and i["date_published"] for i in doc["items"])


@pytest.mark.parametrize("params, needle", [
    ({"near_city": NANJING}, "`near_city` and `within_m` go together"),
    ({"near_city": "320100", "within_m": -1}, "`within_m`"),
    ({"layer": "account"}, "`layer`"),
    ({"since": "yesterday"}, "`since`"),
    ({"limit": 0}, "`limit`"),
    ({"f": "rss"}, "`f`"),
])
def test_bad_parameters_are_400s_naming_them(client, params, needle):
    r = client.get("/changes", params=params)
    assert r.status_code == 400 and needle in r.text, r.text


def test_unknown_city_is_404_and_cli_lists_changes(feed_db, client):
    assert client.get("/changes", params={"near_city": "999999", "within_m": 10}).status_code == 404
    s, _ = feed_db
    out = run(s, "feed", "changes", "--near-city", NANJING, "--within-m", "5000", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {c["key"] for c in doc["changes"]} >= {"CZ-NEAR", "NJ-OWN"}
    assert all(not (set(RESTRICTED) & set(c["new"] or {})) for c in doc["changes"])


def test_a_load_raises_alerts_through_the_after_load_hook(cluster_settings, fresh_template, tmp_path):
    """A subscription made on the command line, then a file loaded by Chuzhou's steward: the load's own
    hook matches it (no separate job)."""
    s = _clone(cluster_settings, fresh_template, "feedload")
    try:
        with db.connect(s) as conn:
            ensure_borders(conn, 5.0, levels=("city",))
            conn.commit()
            near = _points(conn)["near"]
        sub = run(s, "feed", "subscribe", "--city", NANJING, "--within-km", "5", "--json")
        assert sub.returncode == 0, sub.stderr
        path = tmp_path / "sources.csv"
        path.write_text("key,name,category,risk_level,lon,lat\n"
                        f"CZ-L1,滁州新建化工（合成）,chemical,major,{near[0]},{near[1]}\n", encoding="utf-8")
        load = run(s, "load", str(path), "--layer", "risk_source", "--as-city", CHUZHOU, "--json")
        assert load.returncode in (0, 1), load.stdout + load.stderr
        alerts = run(s, "feed", "alerts", "--city", NANJING, "--json")
        assert [a["change"]["key"] for a in json.loads(alerts.stdout)["alerts"]] == ["CZ-L1"], alerts.stdout
    finally:
        cluster.drop_database(cluster_settings, s.db_name)


def test_history_carries_location_and_changed_fields(feed_db):
    s, _ = feed_db
    with db.connect(s) as conn:
        rows = conn.execute("SELECT op, changed, geom IS NOT NULL AS located FROM riskatlas.row_history "
                            "WHERE key = 'CZ-NEAR' ORDER BY id").fetchall()
    assert [r["op"] for r in rows] == ["insert", "update"] and all(r["located"] for r in rows)
    assert rows[1]["changed"] == ["contact", "q_value"]


def test_history_written_before_the_feed_is_located_by_the_migration(empty_db):
    """Rows changed under migration 0011 get their location and changed fields from 0013's backfill."""
    from layers import migrate

    with db.connect(empty_db) as conn:
        migrate.upgrade(conn, empty_db, target=11)
        conn.execute("""INSERT INTO riskatlas.admin_area (code, name, level, geom) VALUES ('320100', '南京市', 'city',
                        ST_Multi(ST_MakeEnvelope(118.3, 31.2, 119.3, 32.6, 4326)))""")
        conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, city_code, owner_city, geom)
                        VALUES ('OLD-1', '旧厂', 'chemical', '320100', '320100',
                                ST_SetSRID(ST_MakePoint(118.7, 32.0), 4326))""")
        conn.execute("UPDATE riskatlas.risk_source SET name = '旧厂（改）', geom = ST_SetSRID(ST_MakePoint(118.8, 32.0), "
                     "4326) WHERE key = 'OLD-1'")
        conn.commit()
        migrate.upgrade(conn, empty_db)
        rows = conn.execute("""SELECT op, changed, ST_NumGeometries(geom) AS n, ST_SRID(geom_m) AS srid,
                                      ST_X(ST_GeometryN(geom_m, 1)) AS x
                               FROM riskatlas.row_history WHERE key = 'OLD-1' ORDER BY id""").fetchall()
    assert [r["op"] for r in rows] == ["insert", "update"]
    assert rows[0]["changed"] is None and rows[1]["changed"] == ["geom", "name"]
    assert rows[1]["n"] == 2 and all(r["srid"] == 4549 for r in rows)  # moved: old and new location
    assert 370_000 < rows[0]["x"] < 385_000  # 118.7 E, 32 N: about 123 km west of 120 E (false easting 500 km)


def test_within_is_geodesic_far_from_120e(empty_db):
    """Urumqi (87.6 E) lies 32 degrees from the CM 120E of EPSG:4549, where its scale factor is 1.08: a
    change 4.8 km (geodesic) from the border must match a 5 km subscription and the feed's ``within_m``,
    one 5.2 km away must not, and the alert gives the geodesic distance (migration 0021)."""
    from layers import migrate
    from services.feed import subscribe
    from services.feed.alerts import list_alerts_sync
    from services.feed.changes import ChangeQuery, near_border

    with db.connect(empty_db) as conn:
        migrate.upgrade(conn, empty_db)
        for code, name, x0, x1 in (("650100", "乌鲁木齐市", 87.0, 87.6), ("650400", "吐鲁番市", 87.6, 88.2)):
            conn.execute("""INSERT INTO riskatlas.admin_area (code, name, level, geom) VALUES (%s, %s, 'city',
                            ST_Multi(ST_MakeEnvelope(%s, 43.5, %s, 44.1, 4326)))""", (code, name, x0, x1))
        conn.execute("""INSERT INTO riskatlas.admin_border (level, code, other_code, length_m, tolerance_m, geom)
                        VALUES ('city', '650100', '650400', 66700, 5, ST_Multi(ST_SetSRID(
                                ST_MakeLine(ST_MakePoint(87.6, 43.5), ST_MakePoint(87.6, 44.1)), 4326)))""")
        for key, metres in (("TLF-IN", 4800), ("TLF-OUT", 5200)):  # due east of the border, in Turpan
            conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, risk_level, city_code, owner_city,
                                synthetic, geom)
                            VALUES (%s, '吐鲁番边界化工（合成）', 'chemical', 'major', '650400', '650400', true,
                                    ST_Project(ST_SetSRID(ST_MakePoint(87.6, 43.8), 4326)::geography, %s,
                                               radians(90))::geometry)""", (key, metres))
        subscribe(conn, "650100", min_level="major", within_m=5000)
        conn.commit()
        page = near_border(ChangeQuery(near_city="650100", within_m=5000))
        ids = [r["id"] for r in conn.execute(page.text, page.params).fetchall()]
        keys = [r["key"] for r in conn.execute("SELECT key FROM riskatlas.row_history WHERE id = ANY(%s)",
                                               (ids,)).fetchall()]
        assert keys == ["TLF-IN"]
        assert match(conn)["written"] == 1
        alerts = list_alerts_sync(conn, "650100")
        assert [a["change"]["key"] for a in alerts] == ["TLF-IN"]
        assert abs(alerts[0]["border_distance_m"] - 4800) < 1
