"""The project's own PostgreSQL cluster: create, start twice, recover from a crash, stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings
from tests.ports import free_port


@pytest.fixture
def own_cluster(tmp_path_factory: pytest.TempPathFactory):
    base = Path("/var/tmp") / f"riskatlas-cluster-test-{os.getpid()}"
    s = DatabaseSettings(database_url=None, state_dir=base, pg_port=free_port(), db_name="lifecycle")
    yield s
    cluster.remove(s)
    import shutil

    shutil.rmtree(base, ignore_errors=True)


def test_lifecycle_start_is_idempotent_and_survives_a_crash(own_cluster):
    s = own_cluster
    first = cluster.start(s)
    assert first["action"] == "created and started" and first["running"]
    assert cluster.start(s)["action"] == "already running"
    with db.connect(s) as conn:
        assert migrate.upgrade(conn, s) == [m.version for m in migrate.available()]
        assert conn.execute("SELECT postgis_lib_version() AS v").fetchone()["v"].startswith("3.")
    # the application role is neither superuser nor owner of any table
    with db.connect(s, "app") as conn:
        role = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
        assert role == {"rolsuper": False, "rolbypassrls": False}
        owned = conn.execute("SELECT count(*) AS n FROM pg_tables WHERE tableowner = current_user").fetchone()
        assert owned["n"] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE riskatlas.risk_source")

    # a crash: kill the postmaster hard, leaving its pid file behind
    pid = int((cluster.paths(s).data / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (cluster.paths(s).data / "postmaster.pid").exists()
    assert cluster.status(s)["running"] is False
    assert cluster.start(s)["action"] == "started"
    with db.connect(s) as conn:
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.schema_migration").fetchone()["n"] >= 2
    assert cluster.stop(s)["action"] == "stopped"
    assert cluster.stop(s)["action"] == "not running"
