"""Observations as an OGC API Features collection: each observation a point feature at its station.

``datetime`` (an instant or an interval on the observed time, RFC 3339; no offset: China Standard Time)
is bound as a range on ``observed_at``, the partition key, so PostgreSQL reads only the monthly
partitions it spans (runtime pruning of the bound values). ``station`` and ``parameter`` take
comma-separated keys and codes; ``bbox`` (in ``bbox-crs``, CRS84 by default) keeps the observations of the
stations inside it (OGC API Features Core: the box is resolved to station keys first, so the observations
are still read by the unique index). Nothing in an observation is restricted; the batch and the user who
wrote it are bookkeeping and left out, as on the public page. Features are built by PostGIS, ordered by
time, station and parameter, paged by ``limit`` and ``offset``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from layers.catalogue import SCHEMA_SQL
from services.errors import InvalidParameter
from services.query.clauses import Clause, all_of, envelope_clause, intersects_clause
from services.query.crs import CRS84, bbox_to_wgs84, negotiate
from services.query.params import numbers
from services.query.temporal import interval

COLLECTION = "observations"
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100


def _names(raw: str | None, what: str) -> list[str] | None:
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names or len(names) > 200 or any(len(n) > 120 or "\x00" in n for n in names):
        raise InvalidParameter(f"`{what}` is a comma-separated list of at most 200 names of at most 120 characters")
    return names


def bbox_clause(bbox: str, bbox_crs: str | None = None) -> Clause:
    """Observations of the stations whose point lies in ``bbox`` (4 or 6 numbers in ``bbox_crs``, CRS84 by
    default), or a 400 naming the parameter."""
    spec = negotiate(bbox_crs, "bbox-crs")
    box = bbox_to_wgs84(numbers(bbox, "bbox"), spec)
    inside = (envelope_clause(*box.bounds) if spec.name == CRS84.name or spec.epsg in (4326, 4490)
              else intersects_clause(box.wkb))
    return Clause(sql.SQL("o.station_key = ANY(ARRAY(SELECT st.key FROM {schema}.monitoring_station st WHERE {inside}))"
                          ).format(schema=SCHEMA_SQL, inside=inside.text), inside.params)


def where_clause(datetime: str | None, station: str | None, parameter: str | None, bbox: str | None = None,
                 bbox_crs: str | None = None) -> Clause:
    """The filter: ``observed_at`` in the interval (bound, so partitions are pruned), stations, parameters,
    the stations inside ``bbox``."""
    parts: list[Clause] = []
    if bbox is not None:
        parts.append(bbox_clause(bbox, bbox_crs))
    elif bbox_crs is not None:
        raise InvalidParameter("`bbox-crs` was given without `bbox`")
    if datetime is not None:
        start, end, exclusive = interval(datetime)
        if start is not None and end is not None and start == end and not exclusive:
            parts.append(Clause(sql.SQL("o.observed_at = %s"), (start,)))
        else:
            if start is not None:
                parts.append(Clause(sql.SQL("o.observed_at >= %s"), (start,)))
            if end is not None:
                parts.append(Clause(sql.SQL("o.observed_at < %s" if exclusive else "o.observed_at <= %s"), (end,)))
    stations = _names(station, "station")
    if stations is not None:
        parts.append(Clause(sql.SQL("o.station_key = ANY(%s)"), (stations,)))
    params = _names(parameter, "parameter")
    if params is not None:
        parts.append(Clause(sql.SQL("o.parameter = ANY(%s)"), ([p.lower() for p in params],)))
    return all_of(parts)


def items_clause(where: Clause, limit: int, offset: int) -> Clause:
    """One page of features as GeoJSON text, built in the database (the station's point, WGS84), by station,
    parameter and time."""
    text = sql.SQL("""
        SELECT json_build_object(
            'type', 'Feature',
            'id', o.station_key || '|' || o.parameter || '|' || to_char(o.observed_at AT TIME ZONE 'Asia/Shanghai',
                                                                      'YYYY-MM-DD"T"HH24:MI:SS+08:00'),
            'geometry', ST_AsGeoJSON(s.geom, 6)::json,
            'properties', json_build_object(
                'station', o.station_key, 'station_name', s.name, 'medium', s.medium, 'kind', s.kind,
                'parameter', o.parameter, 'parameter_zh', p.name_zh, 'parameter_en', p.name_en,
                'observed_at', to_char(o.observed_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS+08:00'),
                'value', o.value, 'unit', p.unit, 'flag', o.flag, 'owner_city', o.owner_city,
                'synthetic', s.synthetic))::text AS feature
        FROM {schema}.observation o
        JOIN {schema}.monitoring_station s ON s.key = o.station_key
        LEFT JOIN {schema}.obs_parameter p ON p.code = o.parameter
        WHERE {where}
        ORDER BY o.station_key, o.parameter, o.observed_at  -- the unique index: a page is an index walk
        LIMIT %s OFFSET %s""").format(schema=SCHEMA_SQL, where=where.text)
    return Clause(text, where.params + (limit, offset))


def check_paging(limit: int | None, offset: int | None) -> tuple[int, int]:
    """``limit`` and ``offset`` within their bounds, or a 400 naming them."""
    n = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= n <= MAX_LIMIT:
        raise InvalidParameter(f"`limit` was {n} but is expected to be between 1 and {MAX_LIMIT}")
    o = 0 if offset is None else offset
    if not 0 <= o <= 10_000_000:
        raise InvalidParameter(f"`offset` was {o} but is expected to be between 0 and 10000000")
    return n, o


async def observation_features(conn: psycopg.AsyncConnection, where: Clause, limit: int, offset: int) -> list[str]:
    """The page's features under ``where`` (from :func:`where_clause`), each as GeoJSON text."""
    clause = items_clause(where, limit, offset)
    cur = conn.cursor()
    await cur.execute(clause.text, clause.params)
    return [r[0] for r in await cur.fetchall()]


def collection_document(base: str, bbox: tuple[float, ...] | None = None) -> dict[str, Any]:
    """The collection's description (OGC API Features ``/collections/observations``); ``bbox``: the
    stations' extent (CRS84), the collection's spatial extent."""
    return {
        "id": COLLECTION, "title": "Observations", "title_zh": "监测数据",
        "description": "Station measurements (air and water), one point feature per station, parameter and time; "
                       "filter by `datetime` on the observed time, `station` and `parameter` (监测数据)",
        "itemType": "feature", "geometry_type": "Point",
        "extent": {"spatial": {"bbox": [list(bbox) if bbox else [-180.0, -90.0, 180.0, 90.0]],
                               "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
        "storageCrs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "links": [{"rel": "self", "href": f"{base}/collections/{COLLECTION}", "type": "application/json"},
                  {"rel": "items", "href": f"{base}/collections/{COLLECTION}/items", "type": "application/geo+json"},
                  {"rel": "items", "href": f"{base}/collections/{COLLECTION}/items?f=html", "type": "text/html"}],
    }
