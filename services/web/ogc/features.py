"""Fetching features: the SQL of :mod:`services.web.ogc.sql` run on a pooled connection, GeoJSON bytes out.

For CRSs PostGIS knows, every feature's GeoJSON text is built in the database and only joined here.
For GCJ-02 and BD-09 the database returns WGS84 WKB, which is transformed in one vectorised pass
(:func:`services.web.ogc.crs.geometries_from_wgs84`) and written with ``shapely.to_geojson``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg
import shapely

from gis.crs import CrsSpec
from services.query.clauses import GEOM, FeatureQuery
from services.query.crs import (
    geojson_decimals,
    geometries_from_wgs84,
    needs_python_transform,
    output_geometry_sql,
)
from services.web.ogc.counts import CountCache
from services.web.ogc.execute import run_query


@dataclass(frozen=True)
class Page:
    """Features as GeoJSON texts, and how many rows match in all (None when not counted)."""

    features: list[str]
    matched: int


async def fetch_page(
    conn: psycopg.AsyncConnection, q: FeatureQuery, crs: CrsSpec, counts: CountCache | None = None
) -> Page:
    """The page of features ``q`` asks for, with numberMatched.

    The count query runs only when the page does not already tell the total (a page shorter than the
    limit, starting at 0 or holding rows, ends the result), and through ``counts`` when given, so
    that paging through one result counts it once per data version.
    """
    features = await fetch_features(conn, q, crs)
    returned = len(features)
    if returned < q.limit and (returned > 0 or q.offset == 0):
        return Page(features, q.offset + returned)
    return Page(features, await _count(conn, q, counts))


async def count_page(
    conn: psycopg.AsyncConnection, q: FeatureQuery, counts: CountCache | None = None
) -> Page:
    """No features, only how many match (``resultType=hits``)."""
    return Page([], await _count(conn, q, counts))


async def _count(conn: psycopg.AsyncConnection, q: FeatureQuery, counts: CountCache | None) -> int:
    if counts is None:
        return int((await run_query(conn, q.count()))[0][0])
    return await counts.count(conn, q.view.layer.name, q.count())


async def fetch_features(conn: psycopg.AsyncConnection, q: FeatureQuery, crs: CrsSpec) -> list[str]:
    """The GeoJSON text of each feature of the page, in order, coordinates in ``crs``."""
    if not needs_python_transform(crs):
        rows = await run_query(
            conn, q.features_as_text(output_geometry_sql(GEOM, crs), geojson_decimals(crs))
        )
        return [r[0] for r in rows]
    rows = await run_query(conn, q.features_as_parts())
    if not rows:
        return []
    geoms = shapely.from_wkb(np.array([r[2] for r in rows], dtype=object))
    out = shapely.set_precision(
        geometries_from_wgs84(geoms, crs), 10.0 ** -geojson_decimals(crs), mode="pointwise"
    )
    texts = shapely.to_geojson(out)
    return [
        f'{{"type":"Feature","id":{r[0]},"geometry":{g},"properties":{r[1]}}}'
        for r, g in zip(rows, texts, strict=True)
    ]


def body(features: list[str], head: dict[str, object]) -> bytes:
    """A FeatureCollection: ``features`` (GeoJSON texts) then the members of ``head``."""
    import orjson

    rest = orjson.dumps({k: v for k, v in head.items() if k != "type"})
    return b'{"type":"FeatureCollection","features":[' + ",".join(features).encode() + b"]," + rest[1:]


def feature_body(feature: str, links: list[dict[str, object]]) -> bytes:
    """One Feature's text with its links added."""
    import orjson

    return feature[:-1].encode() + b',"links":' + orjson.dumps(links) + b"}"
