"""docker-compose.yml: a primary, a streaming replica and the API, wired as the README says.

`docker compose config` validates the file where Docker is installed; this test checks, everywhere,
that the topology is the one documented: the API writes to the primary and reads from the replica,
the replica is a pg_basebackup -R standby of the primary with the archive as fall-back, the primary
archives WAL into the backups volume and creates the replication role on first start.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_runs_primary_replica_and_api() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = doc["services"]
    assert set(services) == {"primary", "replica", "app"}
    primary, standby, app = services["primary"], services["replica"], services["app"]

    settings = " ".join(primary["command"])
    assert "wal_level=replica" in settings and "archive_mode=on" in settings and "/backups/wal/%f" in settings
    init = next(v for v in primary["volumes"] if "docker-entrypoint-initdb.d" in v)
    script = ROOT / init.split(":")[0]
    assert os.access(script, os.X_OK) and "REPLICATION" in script.read_text()

    entry = "\n".join(standby["entrypoint"])
    assert "pg_basebackup -h primary -U riskatlas_replicator" in entry and " -R " in entry
    assert "restore_command=cp /backups/wal/%f %p" in entry and "backups:/backups:ro" in standby["volumes"]
    assert standby["depends_on"]["primary"]["condition"] == "service_healthy"

    env = app["environment"]
    assert "@primary:5432/" in env["DATABASE_URL"] and "@replica:5432/" in env["RISKATLAS_REPLICA_URL"]
    assert app["depends_on"]["primary"]["condition"] == "service_healthy"
    assert set(doc["volumes"]) >= {"pgdata", "replicadata", "backups"}
