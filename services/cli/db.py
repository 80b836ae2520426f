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
