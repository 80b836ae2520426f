"""The conditions a request puts on a collection's rows: bbox, CQL2 filter, property=value parameters."""

from __future__ import annotations

from collections.abc import Iterable

from services.errors import InvalidParameter
from services.query.clauses import Clause, envelope_clause, equals_clause, intersects_clause
from services.query.cql import filter_clause
from services.query.crs import CRS84, bbox_to_wgs84, negotiate
from services.query.params import equality_filters, numbers
from services.query.views import CollectionView


def conditions(
    v: CollectionView,
    bbox: str | None,
    bbox_crs: str | None,
    filter_text: str | None,
    filter_lang: str | None,
    filter_crs: str | None,
    query: Iterable[tuple[str, str]],
    max_depth: int,
) -> list[Clause]:
    """The WHERE conditions of an items or tiles request: bbox, CQL2 filter, and equality filters from the
    query parameters named after queryables (``query``: all the request's parameters)."""
    where: list[Clause] = []
    box_crs = negotiate(bbox_crs, "bbox-crs")
    if bbox is not None:
        box = bbox_to_wgs84(numbers(bbox, "bbox"), box_crs)
        if box_crs.name == CRS84.name or box_crs.epsg in (4326, 4490):
            where.append(envelope_clause(*box.bounds))
        else:
            where.append(intersects_clause(box.wkb))
    elif bbox_crs is not None:
        raise InvalidParameter("`bbox-crs` was given without `bbox`")
    fcrs = negotiate(filter_crs, "filter-crs")
    if filter_text is not None and filter_text.strip():
        clause = filter_clause(filter_text, filter_lang, fcrs, v, max_depth)
        if clause is not None:
            where.append(clause)
    for f, value in equality_filters(query, v):
        where.append(equals_clause(f, value))
    return where
