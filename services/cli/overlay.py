"""``riskatlas overlay LEFT PREDICATE RIGHT``: the overlay service from the shell.

Prints a table for people, or the GeoJSON result with ``--json``; bad input exits with code 2 and the
same message the API gives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import err, fail, out


def overlay_cmd(
    left: str = typer.Argument(..., help="Left layer, e.g. risk_source"),
    predicate: str = typer.Argument(..., help="intersects, within, contains or within-distance"),
    right: str = typer.Argument(..., help="Right layer, e.g. protection_zone"),
    distance_m: float | None = typer.Option(None, "--distance", "-d", help="Metres (within-distance)"),
    left_filter: str | None = typer.Option(None, "--left-filter", help="CQL2 text on the left layer"),
    right_filter: str | None = typer.Option(None, "--right-filter", help="CQL2 text on the right layer"),
    output: str = typer.Option("pairs", "--output", help="pairs or left-with-count"),
    measure: list[str] = typer.Option([], "--measure", help="area, length or distance (repeatable)"),
    geometry: str = typer.Option("left", "--geometry", help="left, right, intersection or none"),
    limit: int | None = typer.Option(None, "--limit", help="Page size; without it more than --cap is an error"),
    offset: int = typer.Option(0, "--offset"),
    cap: int = typer.Option(10_000, "--cap", help="Largest result returned without paging"),
    out_file: Path | None = typer.Option(None, "--out", help="Write the GeoJSON to this file"),
    as_json: bool = typer.Option(False, "--json", help="Print the GeoJSON result instead of a table."),
) -> None:
    """Overlay two layers: pairs with the attributes of both, or left features with their match count."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.overlay import overlay

    try:
        with db.connect(DatabaseSettings(), "app") as conn:
            result = overlay(conn, left, predicate, right, distance_m=distance_m, left_filter=left_filter,
                             right_filter=right_filter, output=output, measures=measure, geometry=geometry,
                             limit=limit, offset=offset, cap=cap, may_see_restricted=True)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    text = result.collection_text()
    if out_file is not None:
        out_file.write_text(text, encoding="utf-8")
        if not as_json:
            err.print(f"wrote {result.number_returned} features to {out_file}")
    if as_json:
        sys.stdout.write(text + "\n")
        return
    _print_overlay(result)


def _print_overlay(result: Any) -> None:
    feats = [json.loads(f) for f in result.features[:20]]
    t = Table(title=f"overlay: {result.number_returned} features"
                    + (f" (next page at offset {result.next_offset})" if result.next_offset is not None else ""))
    extra = [k for k in ("match_count", "area_m2", "length_m", "distance_m")
             if feats and k in feats[0]["properties"]]
    for col in ("left", "right", *extra):
        t.add_column(col)
    for f in feats:
        p = f["properties"]
        t.add_row(f"{p.get('left_key')} {p.get('left_name') or ''}",
                  f"{p.get('right_key', '')} {p.get('right_name') or ''}".strip(),
                  *[f"{p[k]:.1f}" if isinstance(p[k], float) else str(p[k]) for k in extra])
    out.print(t)
