"""Every command example of the README runs as written, from the checkout, and succeeds.

The examples are the indented lines that start with ``riskatlas``. The `db` block starts, inspects,
migrates and stops a cluster of its own (state folder and port of this test), so the cluster the other
tests use is never stopped; the other blocks run, in the README's order, on a copy of the demo region.
A line of the README that cannot run fails here, naming the line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from layers import cluster
from layers.settings import DatabaseSettings
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI = [sys.executable, "-m", "services.cli"]

pytestmark = pytest.mark.slow


def examples() -> list[str]:
    """The README's command examples, comments removed, in order."""
    out = []
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("    riskatlas "):
            command = re.split(r"\s{2,}#", line.strip(), maxsplit=1)[0].strip()
            out.append(command)
    return out


def _env(settings: DatabaseSettings) -> dict[str, str]:
    env = {**os.environ, "RISKATLAS_DB_NAME": settings.db_name, "RISKATLAS_PG_PORT": str(settings.pg_port),
           "RISKATLAS_STATE_DIR": str(settings.state_dir)}
    env.pop("DATABASE_URL", None)
    return env


def _run(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    args = shlex.split(command)
    assert args[0] == "riskatlas"
    return subprocess.run([*CLI, *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_readme_has_examples_of_every_command() -> None:
    commands = {shlex.split(c)[1] for c in examples()}
    assert {"db", "users", "layers", "check", "load", "flags", "overlay", "grade", "coverage", "ledger", "spill",
            "plume", "map"} <= commands


def test_the_db_examples_on_a_cluster_of_their_own(tmp_path_factory: pytest.TempPathFactory) -> None:
    state = tmp_path_factory.mktemp("readme_state")
    own = DatabaseSettings(database_url=None, state_dir=state, pg_port=free_port())
    env = _env(own)
    db_lines = [c for c in examples() if c.startswith("riskatlas db ")]
    assert [shlex.split(c)[2] for c in db_lines] == ["start", "status", "init", "stop"]
    try:
        for command in db_lines:
            done = _run(command, env, tmp_path_factory.mktemp("cwd"))
            assert done.returncode == 0, f"README line `{command}` failed:\n{done.stdout}\n{done.stderr}"
        status = _run("riskatlas db status --json", env, state)  # stopped: says so, naming how to start it
        assert status.returncode == 1 and "riskatlas db start" in json.loads(status.stdout)["error"]
    finally:
        cluster.remove(own)


def test_every_other_example_on_a_copy_of_the_demo(demo_copy: DatabaseSettings, tmp_path: Path) -> None:
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    (cwd / "etl").symlink_to(ROOT / "etl")  # the README's paths are relative to the checkout
    env = _env(demo_copy)
    ran = []
    for command in examples():
        if command.startswith("riskatlas db "):
            continue
        done = _run(command, env, cwd)
        allowed = (0, 1) if shlex.split(command)[1] in ("check", "load") else (0,)  # 1: some rows rejected
        assert done.returncode in allowed, f"README line `{command}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        ran.append(command)
    assert len(ran) >= 15
    for written in ("spill.txt", "nanjing.html", "nanjing.png"):
        assert (cwd / written).stat().st_size > 0, written
    assert (cwd / "nanjing.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
