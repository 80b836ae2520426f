"""What is loaded: layers with their counts, and the data set's own metadata."""

from __future__ import annotations

from typing import Any

from layers import db
from layers.catalogue import BIN_GRIDS, LAYERS, MERCATOR_MAX_LAT, SCHEMA, Layer
from layers.settings import DatabaseSettings


def _count_sql(layer: Layer) -> str:
    """The exact row count of ``layer``.  A layer with a bin grid is counted from the grid's zoom 0 (a few
    thousand rows where ``count(*)`` reads every row: 12 s cold at five million sources), plus the rows
    the grid leaves out, positions beyond Web Mercator's latitudes (found through the spatial index)."""
    grid = BIN_GRIDS.get(layer.name)
    if grid is None:
        return f"SELECT '{layer.name}' AS name, count(*) AS n FROM {layer.table}"
    lat = repr(MERCATOR_MAX_LAT)
    outside = " OR ".join(f"geom && ST_MakeEnvelope({box}, 4326)" for box in (
        f"-1e9, {lat}, 1e9, 1e9", f"-1e9, -1e9, 1e9, -{lat}", "180, -1e9, 1e9, 1e9", "-1e9, -1e9, -180, 1e9"))
    return (f"SELECT '{layer.name}' AS name, (SELECT coalesce(sum(n), 0) FROM {SCHEMA}.{grid.table} WHERE z = 0)"
            f"::bigint + (SELECT count(*) FROM {layer.table} WHERE ({outside}) AND NOT (ST_X(geom) BETWEEN -180 "
            f"AND 180 AND ST_Y(geom) BETWEEN -{lat} AND {lat})) AS n")


#: One row (name, n) per catalogue layer: its exact row count.
COUNTS_SQL = " UNION ALL ".join(_count_sql(layer) for layer in LAYERS.values())


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
