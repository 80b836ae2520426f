"""``riskatlas check FILE --layer L``: what a load would reject, and probable duplicates, without a database."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from services.cli.output import JsonOpt, fail, out


def check_cmd(
    file: Path = typer.Argument(..., help="GeoJSON, GeoPackage, Shapefile (.shp or .zip), CSV or KML/KMZ"),
    layer: str = typer.Option(..., "--layer", "-l", help="Target layer (see `riskatlas layers`)"),
    mapping: str | None = typer.Option(None, "--mapping", "-m", help="Mapping YAML file or built-in name"),
    crs: str | None = typer.Option(None, "--crs", help="Override the CRS: EPSG:4326, gcj02, bd09, ..."),
    source_layer: str | None = typer.Option(None, "--source-layer", help="Layer in a multi-layer file"),
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
        report = check_file(file, layer, mapping=mapping, crs=crs, source_layer=source_layer, within_m=within_m)
    except InputError as exc:
        message = str(exc).strip('"')
        fail(message if file.name in message else f"file {file.name}: {message}", as_json)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        print_check(report, out, show)
    raise typer.Exit(report.exit_code)
