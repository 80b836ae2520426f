"""The nearby search: one index-served statement, a proof that its answer is exact, sites from its rows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis.crs import bearing_deg
from layers.catalogue import SCHEMA
from services.nearby.request import NearbyQuery, Site

_COLUMNS = (
    "key",
    "name",
    "category",
    "risk_level",
    "industry",
    "address",
    "status",
    "city_code",
    "county_code",
)
_RESTRICTED_COLUMNS = ("contact",)

#: Lower bound of spheroidal over spherical distance (they differ by < 0.7 % anywhere on Earth).
_SPHEROID_OVER_SPHERE = 0.99


def nearby_sql(
    q: NearbyQuery, with_restricted: bool, n_candidates: int | None = None
) -> tuple[str, dict[str, Any]]:
    """The statement and its parameters; the identifiers are fixed here, every value is bound.

    The origin is written inline (not joined from a CTE) so that the planner sees an expression it can
    give to the index: ``ST_DWithin`` becomes an index condition and ``<->`` an index order (KNN).
    Rows: the candidates, nearest first by spheroidal distance, each with its spherical index distance.
    """
    params: dict[str, Any] = {
        "lon": q.lon,
        "lat": q.lat,
        "radius": q.radius_m,
        "candidates": n_candidates or candidates(q.limit),
    }
    if q.categories:
        params["categories"] = list(q.categories)
    if q.levels:
        params["levels"] = list(q.levels)
    return _statement(with_restricted, bool(q.categories), bool(q.levels)), params


@cache
def _statement(with_restricted: bool, by_category: bool, by_level: bool) -> str:
    """The text of the nearby statement for one shape of request, composed once (composing it is a
    good part of the Python time of a request: the statement is always the same for a shape)."""
    columns = _COLUMNS + (_RESTRICTED_COLUMNS if with_restricted else ())
    origin = sql.SQL("ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography")
    filters: list[sql.Composable] = []
    if by_category:
        filters.append(sql.SQL("AND r.category = ANY(%(categories)s::text[])"))
    if by_level:
        filters.append(sql.SQL("AND r.risk_level = ANY(%(levels)s::text[])"))
    text = sql.SQL("""
        SELECT {ccols}, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.sphere_m,
               ST_Distance(c.geom::geography, {origin}) AS distance_m,
               city.name AS city_name, county.name AS county_name
        FROM (
            SELECT {cols}, r.geom, r.geom::geography <-> {origin} AS sphere_m
            FROM {table} r
            WHERE ST_DWithin(r.geom::geography, {origin}, %(radius)s) {filters}
            ORDER BY r.geom::geography <-> {origin}
            LIMIT %(candidates)s
        ) c
        LEFT JOIN {admin} city ON city.code = c.city_code
        LEFT JOIN {admin} county ON county.code = c.county_code
        ORDER BY distance_m, c.key
    """).format(
        cols=sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in columns),
        ccols=sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(c)) for c in columns),
        # restricted columns are readable only through the view, for callers the database verified
        table=sql.Identifier(SCHEMA, "risk_source_visible" if with_restricted else "risk_source"),
        admin=sql.Identifier(SCHEMA, "admin_area"),
        origin=origin,
        filters=sql.SQL(" ").join(filters),
    )
    return text.as_string(None)


def candidates(limit: int) -> int:
    """How many index-ordered candidates to re-sort by spheroidal distance for ``limit`` answers."""
    return 2 * limit + 16


async def find_nearby(
    conn: psycopg.AsyncConnection, q: NearbyQuery, with_restricted: bool = False
) -> list[Site]:
    """The sites within ``q.radius_m`` of the origin, nearest first by geodesic distance, at most ``q.limit``.

    Exact: the index orders by spherical distance, so the answer is checked against the farthest
    candidate fetched; when a site beyond the candidates could still be nearer on the spheroid than the
    last answer, the search runs again with four times as many candidates.
    """
    n = candidates(q.limit)
    while True:
        text, params = nearby_sql(q, with_restricted, n)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(text, params)
        rows = await cur.fetchall()
        if is_complete(rows, n, q.limit):
            return sites_from_rows(q, rows[: q.limit])
        n *= 4


def is_complete(rows: Sequence[dict[str, Any]], n_candidates: int, limit: int) -> bool:
    """True when no site outside the ``rows`` (spheroid-sorted candidates) can belong in the answer."""
    if len(rows) < n_candidates:
        return True  # every site within the radius was fetched
    farthest_sphere = max(float(r["sphere_m"]) for r in rows)
    last_kept = float(rows[min(limit, len(rows)) - 1]["distance_m"])
    return last_kept <= farthest_sphere * _SPHEROID_OVER_SPHERE


def sites_from_rows(q: NearbyQuery, rows: Sequence[dict[str, Any]]) -> list[Site]:
    """Rows of :func:`nearby_sql` as sites, with their bearings computed in one vectorised call."""
    if not rows:
        return []
    lons = np.array([r["lon"] for r in rows], dtype=float)
    lats = np.array([r["lat"] for r in rows], dtype=float)
    bearings = np.atleast_1d(bearing_deg(q.lon, q.lat, lons, lats))
    return [
        Site(
            key=r["key"],
            name=r["name"],
            category=r["category"],
            risk_level=r["risk_level"],
            industry=r["industry"],
            address=r["address"],
            status=r["status"],
            city_code=r["city_code"],
            city_name=r["city_name"],
            county_code=r["county_code"],
            county_name=r["county_name"],
            lon=float(r["lon"]),
            lat=float(r["lat"]),
            distance_m=float(r["distance_m"]),
            bearing_deg=float(b),
            contact=r.get("contact"),
        )
        for r, b in zip(rows, bearings, strict=True)
    ]
