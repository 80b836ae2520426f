"""``riskatlas observations load|events|derive``: station measurements from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, fail, out, print_json

observations_app = typer.Typer(help="Station measurements: load files, list section exceedances, derive the "
                                    "monthly section records of the ledger.", no_args_is_help=True)


@observations_app.command("load")
def observations_load(
    file: Path = typer.Argument(..., help="CSV or Excel workbook (.xlsx, first sheet), long "
                                          "(station,parameter,time,value,unit[,flag]) or wide "
                                          "(station,time,<parameter>...); CSV in UTF-8 or GB18030"),
    as_city: str | None = typer.Option(None, "--as-city", help="Load as the steward of this city code"),
    encoding: str | None = typer.Option(None, "--encoding", help="Text encoding when it is not UTF-8 or GB18030"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and count, then roll back"),
    show: int = typer.Option(20, "--show", help="How many rejected observations to list"),
    as_json: bool = JsonOpt,
) -> None:
    """Load observations: checked one by one, the rest upserted by station + parameter + time in one
    transaction; a changed value is a correction kept in history; exceedances at cross-border sections
    raise events for the downstream city."""
    from etl.errors import InputError, LoadFailed
    from etl.load import Actor
    from etl.observations import load_observation_file
    from services.observations.events import after_ingest

    actor = Actor(user="cli", role="steward", city=as_city) if as_city else Actor(user="cli")
    try:
        report = load_observation_file(DatabaseSettings(), file, actor=actor, encoding=encoding, dry_run=dry_run,
                                       hook=after_ingest)
    except (InputError, LoadFailed) as exc:
        fail(str(exc), as_json)
    data = report.to_dict()
    if as_json:
        print_json(data)
        raise typer.Exit(data["exit_code"])
    t = Table(title=f"{file.name} → observation")
    for col in ("status", "observations", "new", "corrected", "same", "rejected", "batch"):
        t.add_column(col)
    t.add_row(data["status"], str(data["rows_in"]), str(data["rows_inserted"]), str(data["rows_updated"]),
              str(data["rows_unchanged"]), str(data["rows_rejected"]), str(data["batch_id"]))
    out.print(t)
    for note in data["notes"]:
        out.print(f"note: {note}")
    if data["derived"]:
        d = data["derived"]
        out.print(f"cross-border sections: {d['events_raised']} exceedance event(s) raised, {d['events_updated']} "
                  f"updated, {d['events_withdrawn']} withdrawn")
    _print_rejects(data["rejects"], show)
    raise typer.Exit(data["exit_code"])


def _print_rejects(rejects: list[dict[str, Any]], show: int) -> None:
    if not rejects:
        return
    r = Table(title=f"rejected (showing {min(show, len(rejects))} of {len(rejects)} reasons)")
    for col in ("row", "field", "reason"):
        r.add_column(col, overflow="fold")
    for item in rejects[:show]:
        r.add_row(str(item["row_no"]), item.get("field") or "", item["reason"])
    out.print(r)


@observations_app.command("events")
def observations_events(
    city: str | None = typer.Option(None, "--city", help="Only events addressed to this city (downstream)"),
    status: str | None = typer.Option(None, "--status", help="open, acknowledged or withdrawn"),
    limit: int = typer.Option(200, "--limit", help="At most this many, newest sample first"),
    as_json: bool = JsonOpt,
) -> None:
    """Exceedances at cross-border sections: which sample, its GB 3838 class against the target, the
    upstream and the downstream (addressed) city."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.observations.events import list_events

    try:
        with db.connect(DatabaseSettings()) as conn:
            events = list_events(conn, city=city, status=status, limit=limit)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if as_json:
        print_json({"events": events})
        return
    t = Table(title=f"section exceedance events ({len(events)})")
    for col in ("id", "time", "section", "parameter", "value", "class/target", "upstream", "to (downstream)",
                "status"):
        t.add_column(col, overflow="fold")
    for e in events:
        t.add_row(str(e["id"]), e["observed_at"].isoformat(), e["station_key"], e["parameter"],
                  f"{e['value']:g} {e['unit'] or ''}", f"{e['water_class']}/{e['target_class']}",
                  e["upstream_city"] or "(outside)", e["downstream_city"] or "(outside)", e["status"])
    out.print(t)


@observations_app.command("derive")
def observations_derive(
    month: str = typer.Option(..., "--month", help="YYYY-MM (China Standard Time)"),
    station: list[str] = typer.Option(None, "--station", help="Only this section (repeatable)"),
    replace_loaded: bool = typer.Option(False, "--replace-loaded",
                                        help="Replace records typed in for the month by the observations' means"),
    as_json: bool = JsonOpt,
) -> None:
    """Derive the month's section records of the ledger (mean flow, CODMn, COD, NH3-N, TP, TN) from the
    observations, marked as derived, with the batches they came from."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.observations.derive import derive_section_records

    try:
        with db.transaction(DatabaseSettings()) as conn:
            db.set_actor(conn, user="cli", role="admin")
            report = derive_section_records(conn, month, station_keys=station or None, replace_loaded=replace_loaded)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    data = report.to_dict()
    if as_json:
        print_json(data)
        return
    t = Table(title=f"section records derived for {month} ({len(report.written)} written, "
                    f"{len(report.unchanged)} unchanged)")
    for col in ("section", "flow m³/s", "CODMn", "COD", "NH3-N", "TP", "TN", "samples"):
        t.add_column(col)
    for w in report.written:
        t.add_row(w["station_key"], *[("" if w[f] is None else f"{w[f]:.4g}")
                                      for f in ("flow", "codmn", "cod", "nh3n", "tp", "tn")],
                  str(sum(w["derived"]["observations"].values())))
    out.print(t)
    for s in report.skipped:
        out.print(f"skipped {s['station_key']}: {s['reason']}")
