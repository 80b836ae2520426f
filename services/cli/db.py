"""``riskatlas db start|init|stop|status``: the project's own PostGIS cluster, or the server of DATABASE_URL."""

from __future__ import annotations

from typing import Any

import typer

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, emit, fail

db_app = typer.Typer(help="The database: the project's own PostGIS cluster, or DATABASE_URL.",
                     no_args_is_help=True)


@db_app.command("start")
def db_start(as_json: bool = JsonOpt) -> None:
    """Start the local PostGIS cluster (install and create it if needed), then upgrade the schema."""
    from layers import cluster, migrate
    from layers.db import connect

    s = DatabaseSettings()
    try:
        state = cluster.start(s) if s.managed else {"managed": False, "action": "using DATABASE_URL"}
        with connect(s) as conn:
            state["migrations_applied"] = migrate.upgrade(conn, s)
    except Exception as exc:  # noqa: BLE001 - reported to the user, not swallowed
        fail(str(exc), as_json)
    emit(state, as_json, "database")


@db_app.command("init")
def db_init(as_json: bool = JsonOpt) -> None:
    """Create or upgrade the schema to the newest version; existing data is kept."""
    from layers import cluster, migrate
    from layers.db import connect

    s = DatabaseSettings()
    try:
        if s.managed:
            cluster.bootstrap(s)
        with connect(s) as conn:
            ran = migrate.upgrade(conn, s)
            version = conn.execute("SELECT max(version) AS v FROM riskatlas.schema_migration").fetchone()["v"]
    except Exception as exc:  # noqa: BLE001
        fail(str(exc), as_json)
    emit({"applied": ran, "schema_version": version}, as_json, "schema")


@db_app.command("stop")
def db_stop(as_json: bool = JsonOpt) -> None:
    """Stop the local cluster."""
    from layers import cluster

    s = DatabaseSettings()
    if not s.managed:
        fail("DATABASE_URL is set: riskatlas does not manage that server", as_json)
    emit(cluster.stop(s), as_json, "database")


@db_app.command("status")
def db_status(as_json: bool = JsonOpt) -> None:
    """Say whether the database runs, where, and at which schema version."""
    from layers import cluster
    from layers.db import connect

    s = DatabaseSettings()
    state: dict[str, Any] = cluster.status(s) if s.managed else {"managed": False}
    try:
        with connect(s, connect_timeout=3) as conn:
            row = conn.execute("SELECT postgis_lib_version() AS postgis, version() AS server").fetchone()
            state.update(row)
            v = conn.execute("SELECT max(version) AS v FROM riskatlas.schema_migration").fetchone()
            state["schema_version"] = v["v"]
            state["reachable"] = True
    except Exception as exc:  # noqa: BLE001
        state["reachable"] = False
        state["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    emit(state, as_json, "database")
    if not state.get("reachable"):
        raise typer.Exit(1)


@db_app.command("backup")
def db_backup(logical: bool = typer.Option(False, "--logical",
                                           help="A pg_dump -Fc of the database (for another PostgreSQL "
                                                "version) instead of a base backup."),
              as_json: bool = JsonOpt) -> None:
    """Take a base backup (pg_basebackup; the WAL archive continues it) into the backup folder.

    Exit status 1 when the backup folder is missing, not writable or full, or WAL archiving fails; the
    database keeps serving either way.
    """
    from layers import backup

    s = DatabaseSettings()
    try:
        made = backup.logical_dump(s) if logical else backup.base_backup(s)
    except backup.BackupError as exc:
        fail(str(exc), as_json, code=1)
    except Exception as exc:  # noqa: BLE001
        fail(str(exc), as_json)
    emit(made, as_json, "backup")


@db_app.command("backups")
def db_backups(as_json: bool = JsonOpt) -> None:
    """List the base backups, logical dumps and the WAL archive: when, how old, how big."""
    from rich.table import Table

    from layers import backup
    from services.cli.output import out, print_json

    s = DatabaseSettings()
    found = backup.inventory(s)
    if as_json:
        print_json(found)
        return
    table = Table(title=f"backups in {found['folder']}")
    for col in ("kind", "name", "finished", "age (h)", "size (MiB)", "ends at LSN"):
        table.add_column(col)
    for b in found["backups"]:
        table.add_row(b["kind"], b["name"], b["finished"], str(b["age_hours"]), f"{b['bytes'] / 1024**2:,.1f}",
                      b.get("end_lsn", ""))
    out.print(table)
    wal = found["wal_archive"]
    out.print(f"WAL archive {wal['path']}: {wal['files']} files, {wal['bytes'] / 1024**2:,.1f} MiB, "
              f"{wal['oldest']} .. {wal['newest']} (newest at {wal['newest_at']})")


@db_app.command("restore")
def db_restore(to: str | None = typer.Option(None, "--to", help="Restore to just before this time "
                                                                 "(ISO 8601; without a zone: +08:00)."),
               before_batch: int | None = typer.Option(None, "--before-batch",
                                                       help="Restore to just before this load batch began."),
               as_json: bool = JsonOpt) -> None:
    """Restore the cluster to a point in time in a new data folder, and switch to it (the old one is kept)."""
    from layers import backup

    if (to is None) == (before_batch is None):
        fail("give exactly one of --to TIME and --before-batch ID", as_json)
    s = DatabaseSettings()
    try:
        target = (backup.batch_target(s, before_batch) if before_batch is not None
                  else backup.Target(time=backup.parse_time(to or ""), why=f"before {to}"))
        done = backup.restore(s, target)
    except backup.BackupError as exc:
        fail(str(exc), as_json, code=1)
    except Exception as exc:  # noqa: BLE001
        fail(str(exc), as_json)
    emit(done, as_json, "restored")


replica_app = typer.Typer(help="The streaming read replica of the project's cluster.", no_args_is_help=True)
db_app.add_typer(replica_app, name="replica")


def _replica_call(action: str, as_json: bool) -> None:
    from layers import replica

    s = DatabaseSettings()
    try:
        state = getattr(replica, action)(s)
    except Exception as exc:  # noqa: BLE001
        fail(str(exc), as_json, code=1)
    emit(state, as_json, "replica")
    if action == "status" and not state.get("running"):
        raise typer.Exit(1)


@replica_app.command("start")
def replica_start(as_json: bool = JsonOpt) -> None:
    """Start the local hot standby (created with pg_basebackup -R from the primary the first time)."""
    _replica_call("start", as_json)


@replica_app.command("stop")
def replica_stop(as_json: bool = JsonOpt) -> None:
    """Stop the local replica; reads fall back to the primary."""
    _replica_call("stop", as_json)


@replica_app.command("status")
def replica_status(as_json: bool = JsonOpt) -> None:
    """Whether the replica runs, replays, and how far behind the primary it is (exit 1 when stopped)."""
    _replica_call("status", as_json)


@db_app.command("promote")
def db_promote(as_json: bool = JsonOpt) -> None:
    """Turn the replica into the primary (pg_promote), stopping the old primary first; says how to repoint."""
    _replica_call("promote", as_json)
