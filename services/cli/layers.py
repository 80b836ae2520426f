"""``riskatlas layers``: the layers with their row counts."""

from __future__ import annotations

import json
import sys

from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, fail, out


def layers(as_json: bool = JsonOpt) -> None:
    """List the layers with their row counts."""
    from services.inventory import layer_counts

    s = DatabaseSettings()
    try:
        rows = layer_counts(s)
    except Exception as exc:  # noqa: BLE001
        fail(str(exc), as_json)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    t = Table(title="layers")
    for c in ("name", "title", "geometry", "count"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["name"], r["title"], r["geometry_type"], str(r["count"]))
    out.print(t)
