"""``riskatlas inspections tasks|report|demo``: joint inspections from the shell (as the schema owner)."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, emit, fail, out, print_json

inspections_app = typer.Typer(help="Joint inspections and enforcement: tasks, monthly reports, the demo's joint task.",
                              no_args_is_help=True)


def _conn() -> Any:
    from layers import db

    return db.connect(DatabaseSettings())


@inspections_app.command("tasks")
def tasks_cmd(
    city: str | None = typer.Option(None, "--city", help="Only tasks this city takes part in (6-digit code)"),
    status: str | None = typer.Option(None, "--status", help="planned, done or cancelled"),
    as_json: bool = JsonOpt,
) -> None:
    """List inspection tasks: window, cities (joint when two or more), sites, checklist."""
    from services.errors import RiskAtlasError
    from services.inspections.tasks import list_tasks

    try:
        with _conn() as conn:
            rows = [r for r in list_tasks(conn, status=status, limit=1000) if city is None or city in r["cities"]]
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if as_json:
        print_json({"tasks": rows})
        return
    t = Table(title=f"inspection tasks ({len(rows)})")
    for col in ("id", "title", "cities", "window", "sites", "checklist", "status"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(str(r["id"]), r["title"] + (" [joint]" if r["joint"] else ""), ", ".join(r["cities"]),
                  f"{r['starts_on']} – {r['ends_on']}", str(len(r["site_keys"])),
                  f"{r['template']} v{r['template_version']}", r["status"])
    out.print(t)


@inspections_app.command("report")
def report_cmd(
    month: str = typer.Option(..., "--month", help="YYYY-MM (China Standard Time)"),
    city: str = typer.Option(..., "--city", help="The city (6-digit code)"),
    other: str | None = typer.Option(None, "--other", help="The other city of a pair"),
    csv: bool = typer.Option(False, "--csv", help="Print CSV"),
    as_json: bool = JsonOpt,
) -> None:
    """A month's inspections, findings by type, cases opened, overdue and closed, joint tasks held."""
    from services.errors import RiskAtlasError
    from services.inspections import reports

    try:
        with _conn() as conn:
            doc = reports.month_report(conn, month, city, other)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if csv:
        sys.stdout.write(reports.to_csv([doc]))  # as written: the console would wrap long lines
        return
    emit(doc, as_json, f"inspections {city}{' – ' + other if other else ''} {month}")


@inspections_app.command("demo")
def demo_cmd(as_json: bool = JsonOpt) -> None:
    """Plan the demo's synthetic joint Nanjing–Chuzhou task along their border (needs the demo region)."""
    from services.inspections.demo import plan_demo_task

    with _conn() as conn:
        doc = plan_demo_task(conn)
        conn.commit()
    emit(doc, as_json, "demo joint inspection (synthetic)")
