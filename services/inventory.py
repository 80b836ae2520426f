"""What is loaded: layers with their counts, and the data set's own metadata."""

from __future__ import annotations

from typing import Any

from layers import db
from layers.catalogue import LAYERS, SCHEMA
from layers.settings import DatabaseSettings

COUNTS_SQL = " UNION ALL ".join(
    f"SELECT '{layer.name}' AS name, count(*) AS n FROM {layer.table}" for layer in LAYERS.values()
)


def layer_counts(settings: DatabaseSettings) -> list[dict[str, Any]]:
    """Every catalogue layer with its title, geometry type and row count."""
    with db.connect(settings, "app") as conn:
        counts = {r["name"]: r["n"] for r in conn.execute(COUNTS_SQL).fetchall()}
        rasters = conn.execute(f"SELECT name, kind, title, width, height FROM {SCHEMA}.raster_layer").fetchall()
    rows = [{"name": layer.name, "title": layer.title, "title_zh": layer.title_zh,
             "geometry_type": layer.geometry_type, "count": counts.get(layer.name, 0)}
            for layer in LAYERS.values()]
    rows += [{"name": r["name"], "title": r["title"], "title_zh": "", "geometry_type": "raster",
              "count": r["width"] * r["height"]} for r in rasters]
    return rows
