"""A throw-away cluster of one's own (state folder, free port), for tests that stop, restore or replicate it.

The session's shared cluster must never be restored or stopped under other tests; these tests build a
small one instead: migrated, the region's boundaries and a few risk sources of Nanjing loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from psycopg import sql

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "services.cli"]
# a 5 x 4 grid of points in the middle of Nanjing (320100), well inside its boundary
NANJING_GRID = [(118.70 + 0.03 * i, 32.00 + 0.02 * j) for i in range(5) for j in range(4)]


def sources_csv(path: Path, keys: range, tag: str, category: str = "chemical") -> Path:
    """A CSV of risk sources ``S-<k>`` at the Nanjing grid points, named with ``tag``."""
    lines = ["key,name,category,m_score,lon,lat"]
    for k in keys:
        lon, lat = NANJING_GRID[k]
        lines.append(f"S-{k:03d},{tag}企业{k},{category},{20 + k},{lon:.5f},{lat:.5f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextmanager
def own_cluster(label: str, boundaries: Path, tmp: Path) -> Iterator[DatabaseSettings]:
    """A started cluster of its own with the schema, the boundaries and 20 Nanjing sources; removed after."""
    from etl.load import load_file

    state = Path("/var/tmp") / f"riskatlas-{label}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    s = DatabaseSettings(database_url=None, state_dir=state, pg_port=free_port(), replica_port=free_port(),
                         db_name="riskatlas", backup_reserve_mb=16)
    try:
        cluster.start(s)
        with db.connect(s) as conn:
            migrate.upgrade(conn, s)
        load_file(s, boundaries, "admin_area", sandbox=False)
        load_file(s, sources_csv(tmp / "sources.csv", range(20), "原始"), "risk_source", sandbox=False)
        yield s
    finally:
        from layers import replica

        replica.remove(s)
        cluster.remove(s)
        shutil.rmtree(state, ignore_errors=True)


def run_cli(settings: DatabaseSettings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``riskatlas ARGS`` as a real process against ``settings``' cluster."""
    full = {**os.environ, "RISKATLAS_DB_NAME": settings.db_name, "RISKATLAS_PG_PORT": str(settings.pg_port),
            "RISKATLAS_STATE_DIR": str(settings.state_dir), "RISKATLAS_REPLICA_PORT": str(settings.replica_pg_port),
            "RISKATLAS_BACKUP_RESERVE_MB": str(settings.backup_reserve_mb), **env}
    full.pop("DATABASE_URL", None)
    return subprocess.run([*CLI, *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=600)


def run_json(settings: DatabaseSettings, *args: str, **env: str) -> dict:
    """``riskatlas ARGS --json``, which must succeed; its document."""
    done = run_cli(settings, *args, "--json", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def table_checksums(settings: DatabaseSettings) -> dict[str, str]:
    """An md5 of every table of the riskatlas schema, over its rows as text in a fixed order."""
    with db.connect(settings) as conn:
        tables = [r["tablename"] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'riskatlas' ORDER BY tablename").fetchall()]
        return {t: conn.execute(sql.SQL("SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h "
                                        "FROM {} x").format(sql.Identifier("riskatlas", t))).fetchone()["h"]
                for t in tables}
