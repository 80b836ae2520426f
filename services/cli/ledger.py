"""``riskatlas ledger load|show``: the cross-border section ledger from the shell."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, fail, out, print_json

ledger_app = typer.Typer(help="The cross-border section ledger: load monthly records, show what cities owe.",
                         no_args_is_help=True)


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
        fail(str(exc), as_json)
    data = report.to_dict()
    if as_json:
        print_json(data)
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
    """What each upstream city owes (positive) or is owed (negative) at its sections, by month, under each
    section's scheme (Jiangsu per tonne; two-way fixed amounts by index across provinces)."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.ledger import build_ledger, ledger_csv

    try:
        with db.connect(DatabaseSettings(), "app") as conn:
            result = build_ledger(conn, month=month, pair=pair)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if csv_out or out_file is not None:
        text = ledger_csv(result, detail=detail)
        if out_file is not None:
            out_file.write_text(text, encoding="utf-8")
        if csv_out:
            sys.stdout.write(text.removeprefix("\ufeff"))  # the mark is for spreadsheet programs, not pipes
        if not as_json:
            return
    if as_json:
        print_json(result.to_dict())
        return
    t = Table(title=f"section ledger ({result.units['amount']})")
    for col in ("month", "upstream", "downstream", "sections", "schemes", "amount (yuan)", "synthetic"):
        t.add_column(col)
    for p in result.pairs:
        t.add_row(p["month"], p["upstream_name"] or p["upstream_code"] or "(outside)",
                  p["downstream_name"] or p["downstream_code"] or "(outside)", " ".join(p["sections"]),
                  " ".join(p["by_scheme"]), f"{p['amount_yuan']:,.2f}", "yes" if p["synthetic"] else "")
    out.print(t)
    if result.years:
        y = Table(title="fixed-amount agreements: the year's index from mean concentrations (what settles)")
        for col in ("section", "year", "months", "scheme", "P", "payer", "amount (yuan)"):
            y.add_column(col)
        for row in result.years:
            y.add_row(row["station_key"], row["year"], str(row["months"]), row["scheme"]["key"],
                      "" if row["p"] is None else f"{row['p']:.4f}", row["payer"] or (row.get("note") or ""),
                      "" if row["amount_yuan"] is None else f"{row['amount_yuan']:,.2f}")
        out.print(y)
