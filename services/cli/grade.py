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
    pending: bool = typer.Option(False, "--pending", help="Grade nothing: list the sources waiting for an M score"),
    city: str | None = typer.Option(None, "--city", help="With --pending: only this city's sources (6-digit code)"),
    as_json: bool = JsonOpt,
) -> None:
    """Grade risk sources per HJ 941-2018 and store the grades with their inputs.

    Without options: the sources never graded or changed since their last grade.  With --pending: list
    the sources whose Q and E are graded but whose level waits for the bureau's M score.
    """
    from services.errors import RiskAtlasError
    from services.grading import GradingError, grade_sources

    chosen = [name for name, on in (("--all", all_), ("--batch", batch is not None), ("--key", bool(key)),
                                    ("--pending", pending)) if on]
    if len(chosen) > 1:
        fail(f"give one of --all, --batch ID, --key or --pending, not {' and '.join(chosen)}", as_json)
    if city is not None and not pending:
        fail("--city goes with --pending (grading covers every city in scope)", as_json)
    if pending:
        _pending(city, as_json)
        return
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
    for col in ("run", "sources", "graded", "pending M", "rejected", "levels changed", "general", "larger", "major",
                "seconds"):
        t.add_column(col)
    t.add_row(str(data["run_id"]), str(data["sources"]), str(data["graded"]), str(data["pending"]),
              str(data["rejected"]),
              str(data["changed"]), *[str(data["levels"].get(k, 0)) for k in ("general", "larger", "major")],
              str(data["seconds"].get("total")))
    out.print(t)
    out.print("seconds per pass: " + ", ".join(f"{k} {v}" for k, v in data["seconds"].items()))
    if data["one_m_for_both"]:
        out.print(f"{data['one_m_for_both']} source(s) have one M (m_score) used for both air and water; HJ 941 "
                  "scores M for each medium (m_air, m_water)")
    if data["pending"]:
        out.print(f"{data['pending']} source(s) wait for an M score: riskatlas grade --pending")
    if data["rejects"]:
        r = Table(title=f"not graded (showing {len(data['rejects'])} of {data['rejected']})")
        r.add_column("source")
        r.add_column("why", overflow="fold")
        for item in data["rejects"]:
            r.add_row(item["key"], "; ".join(item["reasons"]))
        out.print(r)
    raise typer.Exit(data["exit_code"])


def _pending(city: str | None, as_json: bool) -> None:
    """The sources pending M, as a table or ``{"sources": [...], "count": n}``."""
    from layers import db
    from services.grading import pending_sources

    if city is not None and not (len(city) == 6 and city.isdigit()):
        fail(f"--city was {city!r} but is expected to be a 6-digit GB/T 2260 code such as 320100", as_json)
    with db.connect(DatabaseSettings(), "app") as conn:
        rows = pending_sources(conn, city=city)
    if as_json:
        print_json({"sources": rows, "count": len(rows)})
        return
    t = Table(title=f"waiting for an M score (HJ 941-2018): {len(rows)}")
    for col in ("source", "name", "city", "Q band", "needs M for", "levels M could give", "label"):
        t.add_column(col, overflow="fold")
    for r in rows:
        lo, hi = r["levels"]
        t.add_row(r["key"], r["name"] or "", r["city_code"] or "", r["q_band"] or "", ", ".join(r["needs_m_for"]),
                  lo if lo == hi else f"{lo} – {hi}", r["label"] or "")
    out.print(t)
