"""Mapbox Vector Tiles of WebMercatorQuad, built by PostGIS (ST_AsMVT / ST_AsMVTGeom / ST_TileEnvelope).

The bounds test compares the stored ``geom`` with the tile envelope transformed to EPSG:4326 (a
Mercator rectangle is a lon/lat rectangle), so the GiST index on ``geom`` is used and no column is
transformed in the WHERE clause. Lines and polygons are simplified by zoom before they are projected
(one MVT unit, in degrees), points never. Each layer of a tile holds at most ``max_features`` features.
Restricted fields are absent for roles that may not see them, since the view's fields are used, and by
default a tile carries only what a map styles and identifies by (:func:`tile_fields`).
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from services.errors import InvalidParameter
from services.query.clauses import GEOM, Clause, all_of, join
from services.query.views import CollectionView

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 24
#: From this zoom on, lines and polygons are sent as stored (a unit is then below 3 cm).
SIMPLIFY_BELOW_ZOOM = 18

TMS_ID = "WebMercatorQuad"


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


def tile_sql(
    views: Sequence[CollectionView],
    z: int,
    x: int,
    y: int,
    max_features: int,
    where: Sequence[Clause] = (),
    properties: Sequence[str] | None = None,
) -> Clause:
    """A tile holding one layer per view, in the order given (layers concatenate into one tile)."""
    parts = [layer_sql(v, z, x, y, max_features, where, properties) for v in views]
    combined = join([p.wrap("({})") for p in parts], " || ")
    return Clause(sql.SQL("SELECT {}").format(combined.text), combined.params)
