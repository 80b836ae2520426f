"""``riskatlas grade``: HJ 941-2018 grades of risk sources, stored with their inputs."""

from __future__ import annotations

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, fail, out, print_json


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
        fail(f"give one of --all, --batch ID or --key, not {' and '.join(chosen)}", as_json)
    scope = "all" if all_ else "batch" if batch is not None else "keys" if key else "stale"
    try:
        report = grade_sources(DatabaseSettings(), scope=scope, batch_id=batch, keys=key or None, show_rejects=show)
    except (RiskAtlasError, GradingError, ValueError) as exc:
        fail(getattr(exc, "description", str(exc)), as_json)
    data = report.to_dict()
    if as_json:
        print_json(data)
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
