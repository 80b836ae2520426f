"""``riskatlas map``: the report map of a city as a self-contained HTML file, and optionally a PNG.

The HTML opens with no network (Leaflet, clustering and the styling runtime are inlined); ``--png``
photographs it with headless Chromium, offline (see :mod:`maps.png`).  Exit code 2 on bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import fail, out


def map_cmd(
    city: str = typer.Option(..., "--city", help="City code (GB/T 2260), e.g. 320100 for Nanjing"),
    layers: str | None = typer.Option(None, "--layers", help="Comma-separated layers (default: all)"),
    flags: bool = typer.Option(False, "--flags", help="Add the border-zone hazard flags"),
    out_file: Path = typer.Option(..., "--out", help="The HTML file to write"),
    png: Path | None = typer.Option(None, "--png", help="Also write a PNG picture of the map"),
    restricted: bool = typer.Option(False, "--restricted", help="Include restricted fields (contacts, Q) in popups"),
    basemap: str | None = typer.Option(None, "--basemap", help="XYZ tile URL of a basemap (none: offline)"),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON document instead of a table."),
) -> None:
    """Report map of one city: self-contained HTML (no CDN), styled like the web map; --png for a picture."""
    from maps.overview import MapInputError, build_overview
    from maps.png import PngError, render_png

    names = [p.strip() for p in layers.split(",") if p.strip()] if layers else None
    try:
        report = build_overview(DatabaseSettings(), city, names, flags=flags, restricted=restricted,
                                basemap_url=basemap)
    except MapInputError as exc:
        fail(str(exc), as_json)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(report.html, encoding="utf-8")
    summary = {"html": str(out_file), **report.summary()}
    if png is not None:
        try:
            summary["png"] = str(render_png(out_file, png))
        except PngError as exc:
            fail(str(exc), as_json)
    if as_json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
        return
    t = Table(title=f"{report.city_name} {report.city_name_en} ({city}) → {out_file}")
    t.add_column("layer")
    t.add_column("features", justify="right")
    for name, n in report.counts.items():
        t.add_row(name + (" (clustered)" if name in report.clustered else ""), f"{n:,}")
    if report.flags is not None:
        t.add_row("hazard flags", f"{report.flags:,}")
    out.print(t)
    out.print(f"{summary['bytes']:,} bytes in {summary['seconds']} s" + (f"; PNG {summary['png']}" if png else ""))
