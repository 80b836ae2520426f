"""A load killed at the command line stops on the server too, and leaves nothing behind.

Before: a killed ``riskatlas load`` left its backend running the upsert to the end (and holding its
locks), with nobody to commit or see the result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from layers import db

ROOT = Path(__file__).resolve().parents[2]
ROWS = 300_000


def _big_csv(path: Path) -> Path:
    rng = np.random.default_rng(7)
    lon = rng.uniform(118.4, 119.1, ROWS)
    lat = rng.uniform(31.8, 32.4, ROWS)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("key,name,category,lon,lat\n")
        for i in range(ROWS):
            fh.write(f"K{i},企业{i},chemical,{lon[i]:.6f},{lat[i]:.6f}\n")
    return path


def _backends(settings) -> list[dict]:
    with db.connect(settings) as conn:
        conn.autocommit = True
        return conn.execute("""SELECT pid, state, query FROM pg_stat_activity
                               WHERE datname = %s AND pid <> pg_backend_pid()
                                 AND backend_type = 'client backend'""", (settings.db_name,)).fetchall()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting until {what}")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_load_cancels_its_backend(fresh_db, tmp_path, sig):
    path = _big_csv(tmp_path / "big.csv")
    env = {**os.environ, "RISKATLAS_DB_NAME": fresh_db.db_name, "RISKATLAS_PG_PORT": str(fresh_db.pg_port),
           "RISKATLAS_STATE_DIR": str(fresh_db.state_dir)}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "load", str(path), "--layer", "risk_source",
                             "--no-derive", "--json"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # the load is at work on the server: staging or upserting
        _wait(lambda: any(b["state"] == "active" and ("stage" in b["query"] or "upsert" in b["query"]
                                                       or "juris" in b["query"]) for b in _backends(fresh_db)),
              120, "the load runs on the server")
        proc.send_signal(sig)
        proc.wait(timeout=60)
        _wait(lambda: not _backends(fresh_db), 30, "the killed load's backend is gone")
    finally:
        if proc.poll() is None:
            proc.kill()
    with db.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.row_history").fetchone()["n"] == 0
