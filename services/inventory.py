"""What is loaded: layers with their counts, and the data set's own metadata."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from layers import db
from layers.catalogue import BIN_GRIDS, LAYERS, MERCATOR_MAX_LAT, Layer, relation
from layers.settings import DatabaseSettings

#: The boxes (lon/lat) beyond the bin grids' range: north and south of Web Mercator's latitudes, east and
#: west of ±180°.
_BEYOND_GRID = ((-1e9, MERCATOR_MAX_LAT, 1e9, 1e9), (-1e9, -1e9, 1e9, -MERCATOR_MAX_LAT),
                (180.0, -1e9, 1e9, 1e9), (-1e9, -1e9, -180.0, 1e9))


def _count_sql(layer: Layer) -> sql.Composed:
    """The exact row count of ``layer``.  A layer with a bin grid is counted from the grid's zoom 0 (a few
    thousand rows where ``count(*)`` reads every row: 12 s cold at five million sources), plus the rows
    the grid leaves out, positions beyond Web Mercator's latitudes (found through the spatial index)."""
    grid = BIN_GRIDS.get(layer.name)
    if grid is None:
        return sql.SQL("SELECT {name} AS name, count(*) AS n FROM {table}").format(
            name=sql.Literal(layer.name), table=layer.relation)
    outside = sql.SQL(" OR ").join(
        sql.SQL("geom && ST_MakeEnvelope({}, 4326)").format(sql.SQL(", ").join(map(sql.Literal, box)))
        for box in _BEYOND_GRID)
    return sql.SQL(
        "SELECT {name} AS name, (SELECT coalesce(sum(n), 0) FROM {grid} WHERE z = 0)::bigint"
        " + (SELECT count(*) FROM {table} WHERE ({outside}) AND NOT (ST_X(geom) BETWEEN -180 AND 180"
        " AND ST_Y(geom) BETWEEN -{lat} AND {lat})) AS n").format(
        name=sql.Literal(layer.name), grid=relation(grid.table), table=layer.relation, outside=outside,
        lat=sql.Literal(MERCATOR_MAX_LAT))


#: One row (name, n) per catalogue layer: its exact row count.
COUNTS_SQL = sql.SQL(" UNION ALL ").join(_count_sql(layer) for layer in LAYERS.values())


def layer_counts(settings: DatabaseSettings) -> list[dict[str, Any]]:
    """Every catalogue layer with its title, geometry type and row count."""
    with db.connect(settings, "app") as conn:
        counts = {r["name"]: r["n"] for r in conn.execute(COUNTS_SQL).fetchall()}
        rasters = conn.execute(sql.SQL("SELECT name, kind, title, width, height FROM {}").format(
            relation("raster_layer"))).fetchall()
    rows = [{"name": layer.name, "title": layer.title, "title_zh": layer.title_zh,
             "geometry_type": layer.geometry_type, "count": counts.get(layer.name, 0)}
            for layer in LAYERS.values()]
    rows += [{"name": r["name"], "title": r["title"], "title_zh": "", "geometry_type": "raster",
              "count": r["width"] * r["height"]} for r in rasters]
    return rows
