"""The read replica: reads go there, each writer reads their own writes, the primary takes over reads when
the replica stops or lags, and a promoted replica serves as the primary.

The proof that a read came from the replica: replay is paused on the replica (``pg_wal_replay_pause``)
and a row written on the primary after that is invisible to reads the API sends to the replica.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from layers import db, replica
from services.web.app import create_app
from services.web.settings import APISettings
from tests.clusters import own_cluster, sources_csv

KEYS = {"nanjing-key": {"user": "nanjing-steward", "role": "steward", "city": "320100"}}
ITEMS = "/collections/risk_source/items?limit=1000"


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds (no fixed sleeps: the test moves on as soon as it does)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def primary(region_boundaries_file, tmp_path_factory):
    with own_cluster("replica", region_boundaries_file, tmp_path_factory.mktemp("replica")) as s:
        started = replica.start(s)
        assert started["in_recovery"] and started["running"]
        yield s


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    path.write_text(json.dumps(KEYS), encoding="utf-8")
    return path


def names(response) -> set[str]:
    assert response.status_code == 200, response.text
    return {f["properties"]["name"] for f in response.json()["features"]}


def replica_sql(s, query: str) -> str:
    return replica._replica_sql(s, query)[0]


def insert_on_primary(s, key: str, name: str) -> None:
    """A row written straight on the primary, by the owner (no API: nobody's read-your-writes)."""
    with db.connect(s) as conn:
        db.set_actor(conn, user="drill", role="admin")
        conn.execute("INSERT INTO riskatlas.risk_source (key, name, category, geom, owner_city) VALUES "
                     "(%s, %s, 'chemical', ST_SetSRID(ST_Point(118.75, 32.03), 4326), '320100')", (key, name))
        conn.commit()


def test_reads_go_to_the_replica_and_writers_read_their_own_writes(primary, keys, tmp_path):
    s = primary
    api = APISettings(api_keys_file=keys, replica_check_interval_s=0.1, replica_max_lag_s=120)
    with TestClient(create_app(s, api)) as c:
        wait_for("the replica in rotation", lambda: c.get("/health").json()["replica"]["in_rotation"])
        health = c.get("/health").json()
        assert health["primary"]["state"] == "ok" and health["replica"]["state"] == "serving reads"
        first = c.get(ITEMS)
        assert first.headers.get("x-read-from") == "replica" and len(names(first)) == 20
        for path in ("/nearby?x=118.75&y=32.03&radius=5000", "/collections/risk_source/tiles/WebMercatorQuad/12/3350/1702"):
            r = c.get(path)
            assert r.status_code in (200, 204) and r.headers.get("x-read-from") == "replica", (path, r.text[:200])

        # pause replay: what the primary writes now is not on the replica
        assert replica_sql(s, "SELECT pg_wal_replay_pause()") == ""
        try:
            insert_on_primary(s, "P-1", "主库新写")
            anonymous = c.get(ITEMS)
            assert anonymous.headers.get("x-read-from") == "replica" and "主库新写" not in names(anonymous)

            # the steward uploads; their reads go to the primary until the replica has replayed the upload
            upload = c.post("/uploads", headers={"X-API-Key": "nanjing-key"},
                            files={"file": ("mine.csv", sources_csv(tmp_path / "mine.csv", range(20, 20), "x")
                                            .read_bytes() + "S-900,我的上传,chemical,30,118.76,32.04\n".encode(),
                                            "text/csv")},
                            data={"layer": "risk_source"})
            assert upload.status_code == 200 and upload.json()["rows_inserted"] == 1, upload.text
            mine = c.get(ITEMS, headers={"X-API-Key": "nanjing-key"})
            assert mine.headers.get("x-read-from") is None and {"我的上传", "主库新写"} <= names(mine)
            assert "我的上传" not in names(c.get(ITEMS))  # others still read the paused replica
        finally:
            replica_sql(s, "SELECT pg_wal_replay_resume()")
        wait_for("the replica to replay the upload", lambda: "我的上传" in names(c.get(ITEMS)))
        wait_for("the steward back on the replica",
                 lambda: c.get(ITEMS, headers={"X-API-Key": "nanjing-key"}).headers.get("x-read-from") == "replica")


def test_a_lagging_replica_leaves_rotation(primary, keys):
    s = primary
    api = APISettings(api_keys_file=keys, replica_check_interval_s=0.1, replica_max_lag_s=0.3)
    with TestClient(create_app(s, api)) as c:
        wait_for("the replica in rotation", lambda: c.get("/health").json()["replica"]["in_rotation"])
        replica_sql(s, "SELECT pg_wal_replay_pause()")
        try:
            insert_on_primary(s, "P-2", "延迟期间")
            wait_for("the lagging replica out of rotation",
                     lambda: c.get("/health").json()["replica"]["state"] == "lagging")
            r = c.get(ITEMS)
            assert r.headers.get("x-read-from") is None and "延迟期间" in names(r)
        finally:
            replica_sql(s, "SELECT pg_wal_replay_resume()")
        wait_for("the replica back in rotation", lambda: c.get("/health").json()["replica"]["in_rotation"])


def test_reads_fall_back_to_the_primary_when_the_replica_stops(primary, keys):
    s = primary
    api = APISettings(api_keys_file=keys, replica_check_interval_s=60)  # no check helps: the read itself falls back
    with TestClient(create_app(s, api)) as c:
        assert c.get(ITEMS).headers.get("x-read-from") == "replica"
        replica.stop(s)
        try:
            for _ in range(5):
                r = c.get(ITEMS)
                assert r.status_code == 200 and r.headers.get("x-read-from") is None and len(names(r)) >= 20
            wait_for("/health to report the replica down", lambda: c.get("/health").json()["replica"]["state"] == "down")
            assert c.get("/health").json()["status"] == "ok"
        finally:
            replica.start(s)


def test_primary_down_is_a_503_that_says_so_and_the_api_recovers_by_itself(primary, keys):
    from layers import cluster

    s = primary
    with TestClient(create_app(s, APISettings(api_keys_file=keys, read_replica=False, pool_timeout_s=1))) as c:
        assert c.get(ITEMS).status_code == 200
        cluster.stop(s)
        try:
            for path in (ITEMS, ITEMS, "/nearby?x=118.75&y=32.03", "/collections/risk_source/items/1"):
                t0 = time.monotonic()
                r = c.get(path)
                assert time.monotonic() - t0 < 1 + 2.5  # the pool's wait, then a quick probe: no long hang
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert r.json()["description"].startswith("the database is not reachable")
                assert r.headers["Retry-After"]
            health = c.get("/health")
            assert health.status_code == 503 and health.json()["primary"]["state"] == "down"
        finally:
            cluster.start(s)
        wait_for("the API to recover by itself", lambda: c.get(ITEMS).status_code == 200, timeout=20)
        assert c.get("/health").status_code == 200
        answers = [c.get(ITEMS).status_code for _ in range(5)]
        assert answers == [200] * 5


def test_promote_the_replica_and_serve_from_it(primary, keys, tmp_path):
    s = primary
    insert_on_primary(s, "P-3", "提升之前")
    wait_for("the replica to catch up", lambda: replica.status(s).get("lag_bytes") == 0)
    done = replica.promote(s)
    assert done["promoted"] and done["old_primary_stopped"] and "RISKATLAS_PG_PORT" in done["next"]
    assert replica_sql(s, "SELECT pg_is_in_recovery()") == "f"
    # the documented repoint: the API on the promoted server's port, no replica
    repointed = s.model_copy(update={"pg_port": s.replica_pg_port})
    with TestClient(create_app(repointed, APISettings(api_keys_file=keys, read_replica=False))) as c:
        assert c.get("/health").json()["primary"] == {"state": "ok", "in_recovery": False,
                                                      "wal_lsn": c.get("/health").json()["primary"]["wal_lsn"]}
        assert "提升之前" in names(c.get(ITEMS))
        upload = c.post("/uploads", headers={"X-API-Key": "nanjing-key"},
                        files={"file": ("after.csv", "key,name,category,lon,lat\nS-901,提升之后,chemical,118.77,32.05\n"
                                        .encode(), "text/csv")}, data={"layer": "risk_source"})
        assert upload.status_code == 200 and upload.json()["rows_inserted"] == 1, upload.text
        assert "提升之后" in names(c.get(ITEMS))
