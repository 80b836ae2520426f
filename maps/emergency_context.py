"""What an emergency map draws under the result: the city and county boundaries around it and their names.

Read from the database for the extent of the result (with a margin), so that a duty officer sees which
jurisdictions the path or the plume crosses and where the places are, without a basemap (the maps must
work on a network with no internet). Boundaries are generalised for drawing only: the tolerance is a
fraction of the extent (about a pixel of a 1,500-pixel-wide map), never used for a measurement.
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from layers.catalogue import ADMIN_AREA, relation
from maps.emergency_map import result_extent

_AREAS_SQL = sql.SQL("""
WITH box AS (SELECT ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326) AS g)
SELECT a.code, a.name, a.name_en, a.level,
       ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, %(tol)s), 5) AS geometry,
       round(ST_X(l.p)::numeric, 5)::float AS lon, round(ST_Y(l.p)::numeric, 5)::float AS lat
FROM {areas} a CROSS JOIN box
CROSS JOIN LATERAL (SELECT ST_PointOnSurface(ST_Intersection(a.geom, box.g)) AS p) l
WHERE a.level IN ('city', 'county') AND a.geom && box.g AND ST_Intersects(a.geom, box.g)
ORDER BY a.level DESC, a.code
""").format(areas=relation(ADMIN_AREA.name))

#: The margin around the result's extent, as a share of its width and height.
MARGIN = 0.25


def emergency_context(conn: psycopg.Connection, result: dict[str, Any]) -> dict[str, Any]:
    """The cities and counties around ``result`` (WGS84): code, names, level, outline (GeoJSON) and a label
    point inside the part of each that the map shows."""
    extent = result_extent(result)
    if extent is None:
        return {"areas": []}
    x0, y0, x1, y1 = extent
    dx, dy = max(x1 - x0, 0.02) * MARGIN, max(y1 - y0, 0.02) * MARGIN
    box = {"x0": x0 - dx, "y0": y0 - dy, "x1": x1 + dx, "y1": y1 + dy}
    tol = (box["x1"] - box["x0"]) / 1500
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_AREAS_SQL, {**box, "tol": tol}).fetchall()
    return {"areas": [{**r, "geometry": orjson.loads(r["geometry"])} for r in rows]}
