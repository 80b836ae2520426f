"""The SQL of an overlay, clause by clause: the predicate, the measures, one GeoJSON feature per row."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from layers.catalogue import Field, Layer
from services.overlay.request import MEASURE_COLUMN, OverlayRequest
from services.query.clauses import Clause

L, R = sql.Identifier("l"), sql.Identifier("r")


def _predicate(req: OverlayRequest) -> Clause:
    """The spatial condition between ``l`` and ``r`` (index-friendly: geometry GiST or geography GiST)."""
    if req.predicate == "within-distance":
        return Clause(sql.SQL("ST_DWithin(l.geom::geography, r.geom::geography, %s)"), (req.distance_m,))
    fn = {"intersects": "ST_Intersects", "within": "ST_Within", "contains": "ST_Contains"}[req.predicate]
    return Clause(sql.SQL(fn + "(l.geom, r.geom)"))


def _measure(m: str) -> sql.Composable:
    """The SQL of one measure of the pair ``l``, ``r`` (geodesic, spheroid)."""
    return {
        "area": sql.SQL("ST_Area(ST_Intersection(l.geom, r.geom)::geography)"),
        "length": sql.SQL("ST_Length(ST_CollectionExtract(ST_Intersection(l.geom, r.geom), 2)::geography)"),
        "distance": sql.SQL("ST_Distance(l.geom::geography, r.geom::geography)"),
    }[m]


def _props(fields: Sequence[Field], alias: sql.Identifier, prefix: str) -> list[sql.Composable]:
    """``('prefix_name', alias.name)`` argument pairs of the properties object, the key first.

    Every layer table has a ``key`` column (admin_area's is its code), so ``left_key``/``right_key`` name
    each side of a pair even for layers whose catalogue fields do not list it.
    """
    names = ["key", *(f.name for f in fields if f.name != "key")]
    return [sql.SQL("{}, {}.{}").format(sql.Literal(prefix + n), alias, sql.Identifier(n)) for n in names]


def _feature(id_sql: sql.Composable, geometry: sql.Composable, pairs: list[sql.Composable]) -> sql.Composed:
    """One GeoJSON Feature as text; PostGIS writes the geometry.

    The properties keep their order in one ``json_build_object``; past its 100 arguments they are built
    in chunks merged as jsonb (which orders keys its own way).
    """
    if len(pairs) <= 50:
        props: sql.Composable = sql.SQL("json_build_object({})").format(sql.SQL(", ").join(pairs))
    else:
        chunks = [sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs[i:i + 50]))
                  for i in range(0, len(pairs), 50)]
        props = sql.SQL(" || ").join(chunks)
    return sql.SQL("""'{{"type":"Feature","id":' || to_json({id})::text || ',"geometry":' ||
        coalesce(ST_AsGeoJSON({geom}, 7), 'null') || ',"properties":' || ({props})::text || '}}'""").format(
        id=id_sql, geom=geometry, props=props)


def pairs(req: OverlayRequest, left: Layer, right: Layer, lf: tuple[Field, ...], rf: tuple[Field, ...],
           src_l: Clause, src_r: Clause, page: Clause) -> Clause:
    """One row per (left, right) pair, ordered by the two keys."""
    geometry = {"left": sql.SQL("l.geom"), "right": sql.SQL("r.geom"), "none": sql.SQL("NULL::geometry"),
                "intersection": sql.SQL("ST_Intersection(l.geom, r.geom)")}[req.geometry]
    measures = [sql.SQL("{}, {}").format(sql.Literal(MEASURE_COLUMN[m]), _measure(m)) for m in req.measures]
    same = sql.SQL("l.key <> r.key" if left.name == right.name else "TRUE")
    pred = _predicate(req)
    text = sql.SQL("""
        SELECT {feature} AS feature
        FROM {left}
        JOIN {right} ON {predicate}
        WHERE {same}
        ORDER BY l.key, r.key
        {page}""").format(
        feature=_feature(sql.SQL("l.key || '|' || r.key"), geometry,
                         _props(lf, L, "left_") + _props(rf, R, "right_") + measures),
        left=src_l.text, right=src_r.text, predicate=pred.text, same=same, page=page.text)
    return Clause(text, src_l.params + src_r.params + pred.params + page.params)


def left_with_count(req: OverlayRequest, left: Layer, right: Layer, lf: tuple[Field, ...],
                     rf: tuple[Field, ...], src_l: Clause, src_r: Clause, page: Clause) -> Clause:
    """One row per left feature (zero matches included) with the count and the summed measures."""
    del rf
    sums = [sql.SQL("coalesce(sum({}), 0) AS {}").format(_measure(m), sql.Identifier(MEASURE_COLUMN[m]))
            for m in req.measures]
    agg = sql.SQL(", ").join([sql.SQL("count(*) AS match_count"), *sums])
    extra = [sql.SQL("{}, m.{}").format(sql.Literal(c), sql.Identifier(c))
             for c in ["match_count", *(MEASURE_COLUMN[m] for m in req.measures)]]
    same = sql.SQL("l.key <> r.key" if left.name == right.name else "TRUE")
    geometry = sql.SQL("NULL::geometry") if req.geometry == "none" else sql.SQL("l.geom")
    pred = _predicate(req)
    text = sql.SQL("""
        SELECT {feature} AS feature
        FROM {left}
        CROSS JOIN LATERAL (
            SELECT {agg}
            FROM {right}
            WHERE {predicate} AND {same}
        ) m
        ORDER BY l.key
        {page}""").format(
        feature=_feature(sql.SQL("l.key"), geometry, _props(lf, L, "left_") + extra),
        left=src_l.text, right=src_r.text, agg=agg, predicate=pred.text, same=same, page=page.text)
    return Clause(text, src_l.params + src_r.params + pred.params + page.params)
