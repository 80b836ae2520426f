"""Mapbox Vector Tiles of WebMercatorQuad, built by PostGIS (ST_AsMVT / ST_AsMVTGeom / ST_TileEnvelope).

The bounds test compares the stored ``geom`` with the tile envelope transformed to EPSG:4326 (a
Mercator rectangle is a lon/lat rectangle), so the GiST index on ``geom`` is used and no column is
transformed in the WHERE clause. Lines and polygons are simplified by zoom before they are projected
(one MVT unit, in degrees), points never. Each layer of a tile holds at most ``max_features`` features.
Restricted fields are absent for roles that may not see them, since the view's fields are used, and by
default a tile carries only what a map styles and identifies by (:func:`tile_fields`).

Aggregation (``bins_above``): a point layer with more than that many features in a tile is sent as
the layer ``<name>_bins`` instead, one point per cell of a :data:`BIN_PX`-unit grid of the tile, with
``n`` (features in the cell) and ``n_<class>`` for each class of the layer's colour field (``n_none``:
no class yet), so that a map of a million sources draws counts by level at low zoom, and single
points only where a tile holds few of them.

Where the database keeps a layer's counts per cell (:data:`BIN_GRIDS`, migration 0020), a tile up to the
grid's deepest zoom reads its cells from the grid, not its points: the same counts (the grid's cells are the
bins' cells, computed with the same formulas), from a few thousand rows instead of every point of the tile.
That holds with no filter or a filter on the fields the grid is kept by (:func:`grid_conditions`); any other
filter is answered from the points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql
from pygeofilter import ast

from layers.catalogue import BIN_GRIDS, BinGrid, relation
from services.errors import InvalidParameter
from services.query.clauses import GEOM, Clause, all_of, join
from services.query.cql import parse, to_sql
from services.query.crs import negotiate
from services.query.views import CollectionView

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 24
#: From this zoom on, lines and polygons are sent as stored (a unit is then below 3 cm).
SIMPLIFY_BELOW_ZOOM = 18

TMS_ID = "WebMercatorQuad"
#: Side of an aggregation cell, in tile units (64 of 4096: a 4 px cell of a 256 px tile, 8 of 512).
BIN_PX = 64


#: Text fields without a domain that tiles carry by default: the jurisdiction codes (the web map
#: filters by city); other free text (addresses, sources, contacts) stays in the items.
_TILE_TEXT = ("name", "city_code", "county_code")


def tile_fields(v: CollectionView, requested: Sequence[str] | None = None) -> list[str]:
    """The properties written into the tile.

    By default what a map styles, filters and identifies by: the feature id, the name, the
    jurisdiction codes, every field with a domain (category, level, kind ...) and every number or
    boolean; free text without a domain is left to the items endpoint, which keeps tiles small.
    ``requested`` (the ``properties`` parameter) names other visible fields instead. JSON never goes
    into a tile, and the view already lacks the fields the role may not see.
    """
    usable = [f for f in v.fields if f.type != "json"]
    if requested is not None:
        names = {f.name for f in usable}
        for name in requested:
            if name not in names:
                raise InvalidParameter(
                    f"`properties`: {name[:60]!r} is not a tile property of collection {v.layer.name!r}; "
                    f"the properties are {sorted(names)}"
                )
        return [f.name for f in usable if f.name in requested]
    return [
        f.name
        for f in usable
        if f.name == v.id_field or f.name in _TILE_TEXT or f.domain or f.type in ("int", "float", "bool")
    ]


def layer_sql(
    v: CollectionView,
    z: int,
    x: int,
    y: int,
    max_features: int,
    where: Sequence[Clause] = (),
    properties: Sequence[str] | None = None,
) -> Clause:
    """One MVT layer (bytea, empty when nothing is in the tile) named after the collection."""
    geom: sql.Composable = GEOM
    if v.layer.geometry_type != "Point" and z < SIMPLIFY_BELOW_ZOOM:
        tolerance = 360.0 / (EXTENT * 2**z)
        geom = sql.SQL("ST_Simplify({}, {}, true)").format(GEOM, sql.Literal(tolerance))
    columns = [sql.Identifier(name) for name in tile_fields(v, properties)]
    select = sql.SQL(
        "SELECT ST_AsMVTGeom(ST_Transform({geom}, 3857), ST_TileEnvelope(%s, %s, %s), {extent}, {buffer}, "
        "true) "
        "AS mvt_geom{comma}{columns} FROM {table} "
        "WHERE {g} && ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => %s), 4326) AND "
    ).format(
        geom=geom,
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
        comma=sql.SQL(", ") if columns else sql.SQL(""),
        columns=sql.SQL(", ").join(columns),
        table=v.table,
        g=GEOM,
    )
    condition = all_of(list(where))
    text = sql.SQL(
        "SELECT coalesce((SELECT ST_AsMVT(t.*, {name}, {extent}, 'mvt_geom') FROM ({select}{cond} "
        "LIMIT %s) t WHERE t.mvt_geom IS NOT NULL), ''::bytea)"
    ).format(name=sql.Literal(v.layer.name), extent=sql.Literal(EXTENT), select=select, cond=condition.text)
    params = (z, x, y, z, x, y, BUFFER / EXTENT) + condition.params + (max_features,)
    return Clause(text, params)


def bins_sql(v: CollectionView, z: int, x: int, y: int, where: Sequence[Clause] = ()) -> Clause:
    """The layer ``<name>_bins`` of a point layer: a point per non-empty :data:`BIN_PX` cell of the
    tile, with ``n`` and ``n_<class>`` of the layer's colour field (bytea, empty when none)."""
    color_by = v.layer.style.color_by
    classes = _bin_classes(v)
    counts = [sql.SQL("count(*) FILTER (WHERE v = {}) AS {}").format(sql.Literal(c), sql.Identifier(
        "n_" + c.replace("-", "_"))) for c in classes]
    if classes:
        counts.append(sql.SQL("count(*) FILTER (WHERE v IS NULL) AS n_none"))
    value = sql.SQL("{}::text").format(sql.Identifier(color_by)) if classes else sql.SQL("NULL::text")
    condition = all_of(list(where))
    text = sql.SQL(
        "SELECT coalesce((SELECT ST_AsMVT(b.*, {name}, {extent}, 'geom') FROM ("
        "SELECT ST_MakePoint((i + 0.5) * {px}, (j + 0.5) * {px}) AS geom, count(*) AS n{comma}{counts} FROM ("
        # the cell from lon/lat by the Web Mercator formulas (no geometry made per point)
        "SELECT floor(((lon + 180.0) / 360.0 * n2 - tx) * {extent} / {px}) AS i, "
        "floor(((1.0 - ln(tan(radians(lat)) + 1.0 / cos(radians(lat))) / pi()) / 2.0 * n2 - ty) "
        "* {extent} / {px}) AS j, v "
        "FROM (SELECT ST_X({g}) AS lon, ST_Y({g}) AS lat, {value} AS v FROM {table} "
        "WHERE {g} && ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326) AND {cond}) s, "
        "(SELECT power(2.0, %s) AS n2, %s::float8 AS tx, %s::float8 AS ty) t) q "
        "WHERE i >= 0 AND i < {cells} AND j >= 0 AND j < {cells} "
        "GROUP BY i, j) b), ''::bytea)"
    ).format(
        name=sql.Literal(v.layer.name + "_bins"), extent=sql.Literal(EXTENT), px=sql.Literal(BIN_PX),
        cells=sql.Literal(EXTENT // BIN_PX), g=GEOM, value=value, table=v.table, cond=condition.text,
        comma=sql.SQL(", ") if counts else sql.SQL(""),
        counts=sql.SQL(", ").join(counts),
    )
    return Clause(text, (z, x, y) + condition.params + (z, x, y))  # (z, column, row) in both places


def grid_layer_sql(v: CollectionView, grid: BinGrid, z: int, x: int, y: int, bins_above: int,
                   where: Sequence[Clause], features: Clause) -> Clause:
    """The bins of :func:`bins_sql` read from the layer's grid when its cells in the tile count more than
    ``bins_above`` sources, else ``features``.

    The tile's rows of the grid are those of its zoom and its column and row; summed by cell over the
    grid's fields (the conditions ``where`` apply to them), they are the counts the points would give."""
    color_by = v.layer.style.color_by
    classes = _bin_classes(v)
    counts = [sql.SQL("coalesce(sum(n) FILTER (WHERE {} = {}), 0) AS {}").format(
        sql.Identifier(color_by), sql.Literal(c), sql.Identifier("n_" + c.replace("-", "_")))
        for c in classes] if color_by else []
    if counts:
        counts.append(sql.SQL("coalesce(sum(n) FILTER (WHERE {} IS NULL), 0) AS n_none").format(
            sql.Identifier(color_by)))
    condition = all_of(list(where))
    text = sql.SQL(
        "WITH cells AS (SELECT i, j, sum(n) AS n{comma}{counts} FROM {grid} "
        "WHERE z = %s AND tx = %s AND ty = %s AND {cond} GROUP BY i, j) "
        "SELECT CASE WHEN (SELECT coalesce(sum(n), 0) FROM cells) > %s THEN "
        "coalesce((SELECT ST_AsMVT(b.*, {name}, {extent}, 'geom') FROM ("
        "SELECT ST_MakePoint((i + 0.5) * {px}, (j + 0.5) * {px}) AS geom, n{comma}{names} FROM cells) b), ''::bytea) "
        "ELSE ({features}) END"
    ).format(
        grid=relation(grid.table), cond=condition.text, comma=sql.SQL(", ") if counts else sql.SQL(""),
        counts=sql.SQL(", ").join(counts), name=sql.Literal(v.layer.name + "_bins"), extent=sql.Literal(EXTENT),
        px=sql.Literal(BIN_PX), features=features.text,
        names=sql.SQL(", ").join(sql.Identifier("n_" + c.replace("-", "_")) for c in
                                 ([*classes, "none"] if counts else [])),
    )
    return Clause(text, (z, x, y) + condition.params + (bins_above,) + features.params)


def grid_conditions(v: CollectionView, filter_text: str | None, filter_lang: str | None, filter_crs: str | None,
                    max_depth: int) -> list[Clause] | None:
    """A tile's filter as conditions on the layer's bin grid (:data:`BIN_GRIDS`): no conditions without a
    filter, None when the layer has no grid or the filter names a property the grid is not kept by (the
    geometry, a name, ...).  The grid's columns are named as the layer's fields, so the filter is the
    same CQL2 translated against the grid's fields alone."""
    grid = BIN_GRIDS.get(v.layer.name)
    if grid is None:
        return None
    if filter_text is None or not filter_text.strip():
        return []
    node = parse(filter_text, filter_lang, max_depth)
    if not _names_in(node) <= set(grid.fields):
        return None
    fields = tuple(f for f in v.fields if f.name in grid.fields)
    return [to_sql(node, CollectionView(v.layer, fields), negotiate(filter_crs, "filter-crs"))]


def _names_in(node: Any) -> set[str]:
    """The property names a parsed filter uses."""
    if isinstance(node, ast.Attribute):
        return {node.name}
    if isinstance(node, (list, tuple)):
        return set().union(*(_names_in(n) for n in node))
    if isinstance(node, ast.Node):
        return _names_in(node.get_sub_nodes())
    return set()


def _bin_classes(v: CollectionView) -> list[str]:
    """The classes of the layer's colour field counted in its bins (``n_<class>``), when the view has it."""
    color_by = v.layer.style.color_by
    if not color_by or not any(f.name == color_by for f in v.fields):
        return []
    field = v.layer.field(color_by)
    return [c for c in (field.domain or tuple(v.layer.style.palette)) if c.replace("-", "_").isidentifier()]


def aggregated_layer_sql(
    v: CollectionView,
    z: int,
    x: int,
    y: int,
    max_features: int,
    bins_above: int,
    where: Sequence[Clause] = (),
    properties: Sequence[str] | None = None,
    grid_where: Sequence[Clause] | None = None,
) -> Clause:
    """The layer's features when the tile holds at most ``bins_above`` of them, else its bins
    (:func:`bins_sql`); the count stops at ``bins_above`` + 1, through the GiST index.

    ``grid_where``: ``where`` as conditions on the layer's :data:`BIN_GRIDS` table, or None when it cannot
    be (:func:`grid_conditions`); then, up to the grid's deepest zoom, the count and the bins come from the
    grid (:func:`grid_layer_sql`)."""
    features = layer_sql(v, z, x, y, max_features, where, properties)
    grid = BIN_GRIDS.get(v.layer.name)
    if grid is not None and grid_where is not None and z <= grid.max_zoom:
        return grid_layer_sql(v, grid, z, x, y, bins_above, grid_where, features)
    bins = bins_sql(v, z, x, y, where)
    condition = all_of(list(where))
    count = sql.SQL(
        "(SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {g} && ST_Transform(ST_TileEnvelope(%s, %s, %s), "
        "4326) AND {cond} LIMIT %s) c) > %s"
    ).format(table=v.table, g=GEOM, cond=condition.text)
    text = sql.SQL("CASE WHEN {count} THEN ({bins}) ELSE ({features}) END").format(
        count=count, bins=bins.text, features=features.text)
    return Clause(text, (z, x, y) + condition.params + (bins_above + 1, bins_above) + bins.params
                  + features.params)


def tile_sql(
    views: Sequence[CollectionView],
    z: int,
    x: int,
    y: int,
    max_features: int,
    where: Sequence[Clause] = (),
    properties: Sequence[str] | None = None,
    bins_above: int | None = None,
    grid_where: Sequence[Clause] | None = None,
) -> Clause:
    """A tile holding one layer per view, in the order given (layers concatenate into one tile).

    With ``bins_above``, a point layer holding more features than that in the tile is sent as its
    bins (:func:`aggregated_layer_sql`).  ``grid_where`` is ``where`` on the layers' bin grids
    (:func:`grid_conditions`); None: bins are aggregated from the points."""
    parts = [
        aggregated_layer_sql(v, z, x, y, max_features, bins_above, where, properties, grid_where)
        if bins_above is not None and v.layer.geometry_type == "Point"
        else layer_sql(v, z, x, y, max_features, where, properties)
        for v in views
    ]
    combined = join([p.wrap("({})") for p in parts], " || ")
    return Clause(sql.SQL("SELECT {}").format(combined.text), combined.params)
