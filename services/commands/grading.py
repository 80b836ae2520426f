"""``riskatlas grade``, ``riskatlas coverage`` and ``riskatlas ledger load|show``.

Every command prints tables for people, or one JSON document with ``--json``; bad input exits with
code 2 and the message the API would give.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.commands.output import JsonOpt, err, out
from services.commands.output import fail as _fail


ledger_app = typer.Typer(help="The cross-border section ledger: load monthly records, show what cities owe.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``grade``, ``coverage`` and ``ledger`` to the ``riskatlas`` command."""
    app.command("grade")(grade)
    app.command("coverage")(coverage)
    app.add_typer(ledger_app, name="ledger")




def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def grade(
    all_: bool = typer.Option(False, "--all", help="Grade every source"),
    batch: int | None = typer.Option(None, "--batch", help="Grade the sources written by this load batch"),
    key: list[str] = typer.Option([], "--key", help="Grade these sources (repeatable)"),
    show: int = typer.Option(20, "--show", help="How many rejected sources to list"),
    as_json: bool = JsonOpt,
) -> None:
    """Grade risk sources per HJ 941-2018 and store the grades with their inputs.

    Without options: the sources never graded or changed since their last grade.
    """
    from services.errors import RiskAtlasError
    from services.grading import GradingError, grade_sources

    chosen = [name for name, on in (("--all", all_), ("--batch", batch is not None), ("--key", bool(key))) if on]
    if len(chosen) > 1:
        _fail(f"give one of --all, --batch ID or --key, not {' and '.join(chosen)}", as_json)
    scope = "all" if all_ else "batch" if batch is not None else "keys" if key else "stale"
    try:
        report = grade_sources(DatabaseSettings(), scope=scope, batch_id=batch, keys=key or None, show_rejects=show)
    except (RiskAtlasError, GradingError, ValueError) as exc:
        _fail(getattr(exc, "description", str(exc)), as_json)
    data = report.to_dict()
    if as_json:
        _print_json(data)
        raise typer.Exit(data["exit_code"])
    t = Table(title=f"HJ 941-2018 grading ({scope})")
    for col in ("run", "sources", "graded", "rejected", "levels changed", "general", "larger", "major", "seconds"):
        t.add_column(col)
    t.add_row(str(data["run_id"]), str(data["sources"]), str(data["graded"]), str(data["rejected"]),
              str(data["changed"]), *[str(data["levels"].get(k, 0)) for k in ("general", "larger", "major")],
              str(data["seconds"].get("total")))
    out.print(t)
    if data["rejects"]:
        r = Table(title=f"not graded (showing {len(data['rejects'])} of {data['rejected']})")
        r.add_column("source")
        r.add_column("why", overflow="fold")
        for item in data["rejects"]:
            r.add_row(item["key"], "; ".join(item["reasons"]))
        out.print(r)
    raise typer.Exit(data["exit_code"])


def coverage(
    what: str = typer.Option("air", "--medium", help="air or water (sources without a station), or crossings "
                                                     "(river crossings of borders without a section)"),
    distance_m: float | None = typer.Option(None, "--distance-m", help="Air: metres around the source "
                                                                          "(5000); water: metres downstream "
                                                                          "(10000)"),
    level: str = typer.Option("city", "--level", help="Crossings: city or province borders"),
    within_m: float = typer.Option(3000.0, "--within-m", help="Crossings: a section this near covers one"),
    min_stay_m: float = typer.Option(5000.0, "--min-stay-m", help="Crossings: shorter stays on one side are "
                                                                  "ignored"),
    all_crossings: bool = typer.Option(False, "--all-crossings", help="Crossings: list covered ones too"),
    out_file: Path | None = typer.Option(None, "--out", help="Write the GeoJSON to this file (a map layer)"),
    limit: int = typer.Option(1_000_000, "--limit", help="At most this many sources"),
    as_json: bool = JsonOpt,
) -> None:
    """Where monitoring is blind: sources without a station of their medium, or border crossings of
    rivers without a cross-border section."""
    from layers import db
    from services import coverage as cov
    from services.errors import RiskAtlasError

    if what not in ("air", "water", "crossings"):
        _fail(f"--medium was {what!r} but is expected to be air, water or crossings", as_json)
    try:
        with db.connect(DatabaseSettings(), "app") as conn, conn.transaction(force_rollback=True):
            if what == "crossings":
                doc = cov.crossing_gaps(conn, level, within_m=within_m, min_stay_m=min_stay_m,  # type: ignore[arg-type]
                                        gaps_only=not all_crossings)
            else:
                doc = cov.source_gaps(conn, what, distance_m, limit=limit)  # type: ignore[arg-type]
    except RiskAtlasError as exc:
        _fail(exc.description, as_json)
    if out_file is not None:
        out_file.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    if as_json:
        _print_json(doc)
        return
    feats = doc["features"]
    if what == "crossings":
        t = Table(title=f"{level}-border river crossings: {doc['uncovered']} of {doc['crossings']} without a section "
                        f"within {within_m:g} m")
        for col in ("river", "from", "to", "covered", "nearest section", "m"):
            t.add_column(col)
        for f in feats:
            p = f["properties"]
            t.add_row(p["river"], p["from_name"] or "(outside)", p["to_name"] or "(outside)", str(p["covered"]),
                      p["station_name"] or "", f"{p['station_m'] or 0:.0f}")
    else:
        t = Table(title=f"{what} monitoring gaps: {doc['numberMatched']} sources")
        for col in ("source", "name", "city", "level"):
            t.add_column(col, overflow="fold")
        for f in feats[:50]:
            p = f["properties"]
            t.add_row(p["key"], p["name"], p["city_code"] or "", p["risk_level"] or "")
    out.print(t)
    if out_file is not None:
        err.print(f"wrote {len(feats)} features to {out_file}")


@ledger_app.command("load")
def ledger_load(
    file: Path = typer.Argument(..., help="CSV of monthly section records"),
    mapping: str | None = typer.Option(None, "--mapping", "-m", help="Mapping YAML (columns:, encoding:)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and count, then roll back"),
    show: int = typer.Option(20, "--show", help="How many rejected rows to list"),
    as_json: bool = JsonOpt,
) -> None:
    """Load monthly section records (station, month, flow, CODMn/COD, NH3-N, TP, TN), all or nothing."""
    from etl.errors import InputError, LoadFailed
    from etl.load import Actor
    from etl.section_records import load_section_records

    try:
        report = load_section_records(DatabaseSettings(), file, mapping=mapping, dry_run=dry_run, actor=Actor(user="cli"))
    except (InputError, LoadFailed) as exc:
        _fail(str(exc), as_json)
    data = report.to_dict()
    if as_json:
        _print_json(data)
        raise typer.Exit(data["exit_code"])
    t = Table(title=f"{file} → section_record")
    for col in ("status", "rows_in", "inserted", "updated", "unchanged", "rejected", "batch_id"):
        t.add_column(col)
    t.add_row(data["status"], str(data["rows_in"]), str(data["rows_inserted"]), str(data["rows_updated"]),
              str(data["rows_unchanged"]), str(data["rows_rejected"]), str(data["batch_id"]))
    out.print(t)
    if data["rejects"]:
        r = Table(title=f"rejected rows (showing {min(show, len(data['rejects']))} of {len(data['rejects'])} reasons)")
        for col in ("row", "field", "reason"):
            r.add_column(col, overflow="fold")
        for item in data["rejects"][:show]:
            r.add_row(str(item["row_no"]), item.get("field") or "", item["reason"])
        out.print(r)
    raise typer.Exit(data["exit_code"])


@ledger_app.command("show")
def ledger_show(
    month: str | None = typer.Option(None, "--month", help="YYYY-MM (every month when absent)"),
    pair: str | None = typer.Option(None, "--pair", help="UPSTREAM-DOWNSTREAM city codes, e.g. 341100-320100"),
    csv_out: bool = typer.Option(False, "--csv", help="Print CSV (one row per city pair and month)"),
    detail: bool = typer.Option(False, "--detail", help="CSV: one row per record and factor"),
    out_file: Path | None = typer.Option(None, "--out", help="Write the CSV to this file"),
    as_json: bool = JsonOpt,
) -> None:
    """What each upstream city owes (positive) or is owed (negative) at its sections, by month."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.ledger import build_ledger, ledger_csv

    try:
        with db.connect(DatabaseSettings(), "app") as conn:
            result = build_ledger(conn, month=month, pair=pair)
    except RiskAtlasError as exc:
        _fail(exc.description, as_json)
    if csv_out or out_file is not None:
        text = ledger_csv(result, detail=detail)
        if out_file is not None:
            out_file.write_text(text, encoding="utf-8")
        if csv_out:
            sys.stdout.write(text)
        if not as_json:
            return
    if as_json:
        _print_json(result.to_dict())
        return
    t = Table(title=f"section ledger ({result.units['amount']})")
    for col in ("month", "upstream", "downstream", "sections", "amount (yuan)"):
        t.add_column(col)
    for p in result.pairs:
        t.add_row(p["month"], p["upstream_name"] or p["upstream_code"] or "(outside)",
                  p["downstream_name"] or p["downstream_code"] or "(outside)", " ".join(p["sections"]),
                  f"{p['amount_yuan']:,.2f}")
    out.print(t)
