"""The state folder does not depend on where a command runs, and a missing database is named clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from layers import cluster, db, settings
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "services.cli"]


def run_elsewhere(cwd: Path, port: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI from ``cwd`` with no state folder, home or server given unless in ``env``."""
    unset = ("RISKATLAS_STATE_DIR", "RISKATLAS_HOME", "DATABASE_URL", "RISKATLAS_APP_DATABASE_URL",
             "RISKATLAS_DB_NAME")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run([*CLI, *args], cwd=cwd, env={**base, "RISKATLAS_PG_PORT": str(port), **env},
                          capture_output=True, text=True, timeout=300)


def test_default_state_dir_order(monkeypatch, tmp_path):
    for name in ("RISKATLAS_HOME", "RISKATLAS_STATE_DIR", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert settings.checkout_dir() == ROOT
    assert DatabaseSettings().state_dir == ROOT / ".riskatlas"
    monkeypatch.chdir(tmp_path)
    assert DatabaseSettings().state_dir == ROOT / ".riskatlas"  # not the current directory

    monkeypatch.setenv("RISKATLAS_HOME", str(tmp_path / "home"))
    assert DatabaseSettings().state_dir == tmp_path / "home"
    monkeypatch.setenv("RISKATLAS_STATE_DIR", str(tmp_path / "state"))
    assert DatabaseSettings().state_dir == tmp_path / "state"
    monkeypatch.setenv("RISKATLAS_STATE_DIR", "relative")  # taken as of now, absolute
    assert DatabaseSettings().state_dir == tmp_path / "relative"

    # installed (not a checkout): the user's state folder
    monkeypatch.delenv("RISKATLAS_HOME")
    monkeypatch.delenv("RISKATLAS_STATE_DIR")
    monkeypatch.setattr(settings, "checkout_dir", lambda: None)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert DatabaseSettings().state_dir == tmp_path / "xdg" / "riskatlas"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert DatabaseSettings().state_dir == tmp_path / "user" / ".local" / "state" / "riskatlas"
    assert list(tmp_path.iterdir()) == []


def test_reading_a_url_never_creates_secrets(tmp_path):
    s = DatabaseSettings(database_url=None, state_dir=tmp_path / "never-started")
    for url in (cluster.owner_url, cluster.app_url):
        with pytest.raises(cluster.DatabaseNotRunning, match="never-started.*riskatlas db start"):
            url(s)
    with pytest.raises(cluster.DatabaseNotRunning):  # also an OperationalError for outage handlers
        db.connect(s)
    assert not (tmp_path / "never-started").exists()
    # DATABASE_URL: the state folder is not consulted at all
    given = DatabaseSettings(database_url="postgresql://u:p@127.0.0.1:1/x", state_dir=tmp_path / "unused")
    assert cluster.owner_url(given) == cluster.app_url(given) == "postgresql://u:p@127.0.0.1:1/x"
    assert not (tmp_path / "unused").exists()


def test_cli_from_another_folder_finds_the_checkouts_database(fresh_db, tmp_path):
    assert fresh_db.state_dir == ROOT / ".riskatlas"  # the fixture's cluster is the checkout's
    name = {"RISKATLAS_DB_NAME": fresh_db.db_name}
    done = run_elsewhere(tmp_path, fresh_db.pg_port, "db", "status", "--json", **name)
    assert done.returncode == 0, done.stdout + done.stderr
    state = json.loads(done.stdout)
    assert state["reachable"] is True and state["state_dir"] == str(ROOT / ".riskatlas")
    done = run_elsewhere(tmp_path, fresh_db.pg_port, "layers", "--json", **name)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = {r["name"]: r["count"] for r in json.loads(done.stdout)}
    assert counts["admin_area"] > 0
    assert list(tmp_path.iterdir()) == []  # nothing created where the command ran


def test_cli_says_which_database_is_missing_and_why(fresh_db, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    bogus = tmp_path / "bogus-home"
    done = run_elsewhere(work, fresh_db.pg_port, "layers", "--json", RISKATLAS_HOME=str(bogus),
                         RISKATLAS_DB_NAME=fresh_db.db_name)
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert str(bogus) in error and "riskatlas db start" in error
    done = run_elsewhere(work, fresh_db.pg_port, "db", "status", "--json", RISKATLAS_HOME=str(bogus))
    assert done.returncode == 1
    status = json.loads(done.stdout)
    assert status["reachable"] is False and str(bogus) in status["error"] and "db start" in status["error"]
    assert not bogus.exists() and list(work.iterdir()) == []

    # the old failure: a state folder with secrets of its own while another cluster serves the port
    other = tmp_path / "other-home"
    other.mkdir()
    wrong_passwords = {fresh_db.owner_role: "x" * 24, fresh_db.app_role: "y" * 24}
    (other / "secrets.json").write_text(json.dumps(wrong_passwords))
    done = run_elsewhere(work, fresh_db.pg_port, "layers", "--json", RISKATLAS_HOME=str(other),
                         RISKATLAS_DB_NAME=fresh_db.db_name)
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert str(other) in error and "riskatlas db start" in error and "password" not in error

    # the checkout's cluster, asked for on another port
    wrong = fresh_db.pg_port + 1
    done = run_elsewhere(work, wrong, "layers", "--json", RISKATLAS_DB_NAME=fresh_db.db_name)
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert f"RISKATLAS_PG_PORT={fresh_db.pg_port}" in error and str(ROOT / ".riskatlas") in error

    # with DATABASE_URL the state folder plays no part
    done = run_elsewhere(work, fresh_db.pg_port, "layers", "--json",
                         DATABASE_URL=cluster.owner_url(fresh_db), RISKATLAS_HOME=str(bogus))
    assert done.returncode == 0, done.stdout + done.stderr
    assert {r["name"] for r in json.loads(done.stdout)} >= {"admin_area", "risk_source"}
    assert not bogus.exists() and list(work.iterdir()) == []
