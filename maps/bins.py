"""Square bins of a point layer, counted in PostGIS by class, for report maps of large inventories.

A report map that embeds every source of a national inventory weighs tens of megabytes (a city of the
1M-source benchmark: 101k sources, 55 MB).  Beyond a count, a point layer is drawn as squares of a
Web Mercator grid over the city instead: each square carries how many features fall in it and how many
of each class (risk level, flag severity), so the page's size depends on the city's extent, never on
the inventory.  The grid has about :data:`BIN_CELLS` squares along the city's longer side; the squares
are Web Mercator squares so that they look square on the map.
"""

from __future__ import annotations

from psycopg import sql

#: Squares along the longer side of the city's bounding box (at most BIN_CELLS² bins per layer).
BIN_CELLS = 60


def bins_query(rows: sql.Composable, value: sql.Composable, city_geom: sql.Composable,
               digits: int) -> sql.Composed:
    """One statement giving ``n`` (features), ``bins`` (squares), ``cell_m`` (side of a square in Web
    Mercator metres) and ``features``: the GeoJSON features (text) of the non-empty squares, each with
    ``n`` and ``counts`` (features by ``value``; a missing value counted under "").

    ``rows`` is a FROM clause (with the city row ``c``) whose rows are the layer's features as ``x``;
    ``value`` the class expression over ``x``; ``city_geom`` the city's polygon over ``c``.
    """
    return sql.SQL("""
    WITH c AS MATERIALIZED ({city}),
    grid AS (SELECT greatest(ST_XMax(e) - ST_XMin(e), ST_YMax(e) - ST_YMin(e), 1) / %(cells)s AS s
             FROM (SELECT ST_Transform(ST_Envelope(c.geom), 3857) AS e FROM c) b),
    p AS (SELECT ST_Transform(x.geom, 3857) AS g, coalesce(({value})::text, '') AS v FROM {rows}),
    classed AS (SELECT floor(ST_X(p.g) / grid.s)::bigint AS i, floor(ST_Y(p.g) / grid.s)::bigint AS j, p.v,
                       count(*) AS n
                FROM p, grid GROUP BY 1, 2, 3),
    cell AS (SELECT i, j, sum(n)::bigint AS n, jsonb_object_agg(v, n) AS counts FROM classed GROUP BY i, j)
    SELECT coalesce(sum(cell.n), 0)::bigint AS n, count(cell.i) AS bins, min(grid.s) AS cell_m,
           coalesce(json_agg(json_build_object(
               'type', 'Feature',
               'geometry', ST_AsGeoJSON(ST_Transform(ST_MakeEnvelope(cell.i * grid.s, cell.j * grid.s,
                                                                     (cell.i + 1) * grid.s, (cell.j + 1) * grid.s,
                                                                     3857), 4326), {digits})::json,
               'properties', json_build_object('n', cell.n, 'counts', cell.counts))
               ORDER BY cell.i, cell.j), '[]'::json)::text AS features
    FROM grid LEFT JOIN cell ON true""").format(city=city_geom, value=value, rows=rows,
                                               digits=sql.Literal(digits))
