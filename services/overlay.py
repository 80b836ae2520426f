"""Overlay queries: layer A x predicate x layer B, with filters on both sides (DESIGN 5, issue 4).

The function analysts call in notebooks is :func:`overlay`; ``POST /analysis/overlay`` and
``riskatlas overlay`` call the same :func:`build` and differ only in how they run the SQL.

* predicates: ``intersects``, ``within`` (A within B), ``contains`` (A contains B) and
  ``within-distance`` (geodesic metres, ``ST_DWithin`` on ``geom::geography``, which every layer
  indexes);
* filters on each side: CQL2 text (a string), CQL2 JSON (an object with ``op`` and ``args``), or simple
  equality ``{field: value}`` / ``{field: [values]}``; CQL2 goes through :mod:`services.query.cql`
  (pygeofilter), so property names are checked against the layer's queryables for the caller's role
  (a restricted field is unknown to a role that may not see it);
* output: ``pairs`` (one feature per matching pair, the attributes of both as ``left_*`` and
  ``right_*``) or ``left-with-count`` (every left feature with ``match_count``; measures are summed);
* measures: ``area`` (m² of the intersection, both sides polygons), ``length`` (m of the intersection,
  one side a line) and ``distance`` (m), all on the WGS84 spheroid;
* paging: ``limit``/``offset``; without a limit a result larger than the cap is refused (400) rather
  than truncated silently, and a limit above the cap is refused too.

Table and column names come only from the catalogue; every client value is a bound parameter.
PostGIS builds each feature's GeoJSON text; Python only joins the rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from gis.crs import CRS84 as CRS84_SPEC
from layers.catalogue import SCHEMA, Field, Layer, UnknownLayer, get_layer
from services.errors import InvalidParameter
from services.query.clauses import Clause, join

PREDICATES = ("intersects", "within", "contains", "within-distance")
OUTPUTS = ("pairs", "left-with-count")
MEASURES = ("area", "length", "distance")
GEOMETRIES = ("left", "right", "intersection", "none")
#: Results larger than this need paging (the API passes its own ``max_limit``).
DEFAULT_CAP = 10_000
#: The largest within-distance accepted, in metres (the region is about 400 km across).
MAX_DISTANCE_M = 100_000.0
MEASURE_COLUMN = {"area": "area_m2", "length": "length_m", "distance": "distance_m"}
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

Filter = Mapping[str, Any] | str | None


@dataclass(frozen=True)
class OverlayRequest:
    """One overlay, as a client states it (names unchecked until :func:`build`)."""

    left: str
    predicate: str
    right: str
    distance_m: float | None = None
    left_filter: Filter = None
    right_filter: Filter = None
    output: str = "pairs"
    measures: tuple[str, ...] = ()
    geometry: str = "left"
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class OverlayQuery:
    """The SQL of a checked request: one row per output feature, its GeoJSON text in ``feature``."""

    request: OverlayRequest
    clause: Clause
    cap: int | None
    fetch: int | None  # rows to fetch: the limit, or cap + 1 to detect an over-large result

    @property
    def params(self) -> tuple[Any, ...]:
        return self.clause.params

    @property
    def text(self) -> sql.Composable:
        return self.clause.text


@dataclass
class OverlayResult:
    """The features of one page, as GeoJSON text, with the paging facts."""

    features: list[str]
    request: OverlayRequest
    next_offset: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def number_returned(self) -> int:
        return len(self.features)

    def collection_text(self) -> str:
        """A GeoJSON FeatureCollection (CRS84), the features exactly as PostGIS wrote them."""
        r = self.request
        head = {"type": "FeatureCollection", "numberReturned": self.number_returned,
                "crs": CRS84, "overlay": _echo(r), **self.extra}
        if self.next_offset is not None:
            head["next_offset"] = self.next_offset
        meta = json.dumps(head, ensure_ascii=False)[1:-1]
        return "{" + meta + ',"features":[' + ",".join(self.features) + "]}"

    def collection(self) -> dict[str, Any]:
        return json.loads(self.collection_text())

    def to_geodataframe(self):  # -> geopandas.GeoDataFrame
        """The features as a GeoDataFrame in EPSG:4326 (properties as columns)."""
        import geopandas as gpd

        feats = [json.loads(f) for f in self.features]
        return gpd.GeoDataFrame.from_features(feats, crs="EPSG:4326") if feats else gpd.GeoDataFrame(
            geometry=[], crs="EPSG:4326")


# --------------------------------------------------------------------------------------------------
# the public function


def overlay(conn: psycopg.Connection, left: str, predicate: str, right: str, *, distance_m: float | None = None,
            left_filter: Filter = None, right_filter: Filter = None, output: str = "pairs",
            measures: Sequence[str] = (), geometry: str = "left", limit: int | None = None, offset: int = 0,
            cap: int | None = DEFAULT_CAP, may_see_restricted: bool = True,
            max_filter_depth: int = 20) -> OverlayResult:
    """Run one overlay on ``conn`` and return one page of features.

    ``left``/``right`` are catalogue layer names; ``distance_m`` is required by (and only allowed with)
    ``within-distance``.  ``cap=None`` lifts the result cap (for trusted Python callers only).  Bad input
    raises :class:`services.errors.InvalidParameter` saying which argument and what is allowed.

    >>> from layers import db; from layers.settings import DatabaseSettings
    >>> with db.connect(DatabaseSettings(), "app") as conn:                      # doctest: +SKIP
    ...     gdf = overlay(conn, "risk_source", "within-distance", "protection_zone",
    ...                   distance_m=500, left_filter="risk_level = 'major'",
    ...                   right_filter={"level": "1"}).to_geodataframe()
    """
    req = OverlayRequest(left, predicate, right, distance_m, left_filter, right_filter, output,
                         tuple(measures), geometry, limit, offset)
    q = build(req, cap=cap, may_see_restricted=may_see_restricted, max_filter_depth=max_filter_depth)
    rows = conn.execute(q.text, q.params).fetchall()
    return finish(q, [r["feature"] if isinstance(r, dict) else r[0] for r in rows])


def finish(q: OverlayQuery, features: list[str]) -> OverlayResult:
    """Apply the cap and the paging facts to the fetched rows (shared by the sync and async callers)."""
    r = q.request
    if r.limit is None and q.cap is not None and len(features) > q.cap:
        raise InvalidParameter(
            f"the overlay matches more than {q.cap} {'pairs' if r.output == 'pairs' else 'left features'}; "
            f"ask for pages with `limit` (at most {q.cap}) and `offset`, or narrow it with filters")
    next_offset = r.offset + len(features) if r.limit is not None and len(features) == r.limit else None
    return OverlayResult(features, r, next_offset)


# --------------------------------------------------------------------------------------------------
# checking the request


def build(req: OverlayRequest, *, cap: int | None = DEFAULT_CAP, may_see_restricted: bool = True,
          max_filter_depth: int = 20) -> OverlayQuery:
    """Check every part of ``req`` and build its SQL; :class:`InvalidParameter` names what is wrong."""
    left, right = _layer(req.left, "left"), _layer(req.right, "right")
    _check_choice(req.predicate, PREDICATES, "predicate")
    _check_choice(req.output, OUTPUTS, "output")
    _check_choice(req.geometry, GEOMETRIES, "geometry")
    for m in req.measures:
        _check_choice(m, MEASURES, "measures")
    _check_distance(req)
    _check_measures(req, left, right)
    if req.output == "left-with-count" and req.geometry in ("right", "intersection"):
        raise InvalidParameter(f"`geometry` was {req.geometry!r} but left-with-count output has one feature per "
                               "left feature; use 'left' or 'none'")
    if req.offset < 0:
        raise InvalidParameter(f"`offset` was {req.offset} but is expected to be >= 0")
    if req.limit is not None:
        if req.limit < 1:
            raise InvalidParameter(f"`limit` was {req.limit} but is expected to be >= 1")
        if cap is not None and req.limit > cap:
            raise InvalidParameter(f"`limit` was {req.limit} but is expected to be at most {cap}")
    lf = _visible(left, may_see_restricted)
    rf = _visible(right, may_see_restricted)
    src_l = _source(left, req.left_filter, lf, "l", "left_filter", max_filter_depth)
    src_r = _source(right, req.right_filter, rf, "r", "right_filter", max_filter_depth)
    fetch = req.limit if req.limit is not None else (cap + 1 if cap is not None else None)
    page = Clause(sql.SQL("LIMIT %s OFFSET %s"), (fetch, req.offset))
    builder = _pairs if req.output == "pairs" else _left_with_count
    return OverlayQuery(req, builder(req, left, right, lf, rf, src_l, src_r, page), cap, fetch)


def _layer(name: str, side: str) -> Layer:
    try:
        return get_layer(name)
    except UnknownLayer as exc:
        raise InvalidParameter(f"`{side}`: {str(exc).strip(chr(34))}") from None


def _check_choice(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise InvalidParameter(f"`{name}` was {value!r} but is expected to be one of {list(allowed)}")


def _check_distance(req: OverlayRequest) -> None:
    d = req.distance_m
    if req.predicate != "within-distance":
        if d is not None:
            raise InvalidParameter(f"`distance_m` is only used with predicate 'within-distance', not "
                                   f"{req.predicate!r}")
        return
    if d is None:
        raise InvalidParameter("predicate 'within-distance' needs `distance_m` (metres, >= 0)")
    if not isinstance(d, (int, float)) or math.isnan(d):
        raise InvalidParameter(f"`distance_m` was {d!r} but is expected to be a number of metres")
    if d < 0:
        raise InvalidParameter(f"`distance_m` was {d} but is expected to be >= 0 (metres)")
    if d > MAX_DISTANCE_M:
        raise InvalidParameter(f"`distance_m` was {d} but is expected to be at most {MAX_DISTANCE_M:.0f} m")


def _check_measures(req: OverlayRequest, left: Layer, right: Layer) -> None:
    types = (left.geometry_type, right.geometry_type)
    if "area" in req.measures and types != ("MultiPolygon", "MultiPolygon"):
        raise InvalidParameter(f"measure 'area' needs polygons on both sides, but {left.name} is {types[0]} and "
                               f"{right.name} is {types[1]}")
    if "length" in req.measures and ("LineString" not in types or "Point" in types):
        raise InvalidParameter(f"measure 'length' needs a line on one side and a line or polygon on the other, "
                               f"but {left.name} is {types[0]} and {right.name} is {types[1]}")


def _visible(layer: Layer, may_see_restricted: bool) -> tuple[Field, ...]:
    return layer.public_fields(may_see_restricted)


# --------------------------------------------------------------------------------------------------
# filters


def _source(layer: Layer, spec: Filter, fields: tuple[Field, ...], alias: str, name: str,
            max_depth: int) -> Clause:
    """The layer as a FROM item called ``alias``: the table, or a subquery over it with the filter.

    Inside the subquery the filter's column names need no alias (CQL2 translations name bare columns);
    PostgreSQL pulls the subquery up, so the GiST indexes serve the join as they would on the table.
    """
    cond = _filter(spec, layer, fields, name, max_depth)
    if cond is None:
        return Clause(sql.SQL("{} {}").format(_table(layer), sql.Identifier(alias)))
    return Clause(sql.SQL("(SELECT * FROM {} WHERE {}) {}").format(_table(layer), cond.text, sql.Identifier(alias)),
                  cond.params)


def _filter(spec: Filter, layer: Layer, fields: tuple[Field, ...], name: str, max_depth: int) -> Clause | None:
    """The filter as a condition on bare column names, values bound."""
    if spec is None:
        return None
    if isinstance(spec, str) or (isinstance(spec, Mapping) and {"op", "args"} <= set(spec)):
        return _cql(spec, layer, fields, name, max_depth)
    if not isinstance(spec, Mapping):
        raise InvalidParameter(f"`{name}` was {spec!r} but is expected to be CQL2 text, a CQL2 JSON object "
                               "or an object of property: value")
    visible = {f.name: f for f in fields}
    out: list[Clause] = []
    for prop, value in spec.items():
        f = visible.get(prop)
        if f is None or f.type == "json":
            allowed = sorted(n for n, fl in visible.items() if fl.type != "json")
            raise InvalidParameter(f"`{name}`: {prop!r} is not a queryable property of {layer.name!r}; "
                                   f"the properties are {allowed}")
        column = sql.Identifier(f.name)
        cast = _SQL_TYPES[f.type]
        if isinstance(value, (list, tuple)):
            out.append(Clause(sql.SQL("{} = ANY(%s::" + cast + "[])").format(column),
                              ([_value(v, f, name) for v in value],)))
        else:
            out.append(Clause(sql.SQL("{} = %s::" + cast).format(column), (_value(value, f, name),)))
    return join(out, " AND ") if out else None


def _cql(spec: str | Mapping[str, Any], layer: Layer, fields: tuple[Field, ...], name: str,
         max_depth: int) -> Clause:
    """CQL2 text or JSON through the OGC module, against this layer's queryables for the role."""
    from services.query import cql
    from services.query.views import CollectionView

    text, lang = (spec, "cql2-text") if isinstance(spec, str) else (json.dumps(spec), "cql2-json")
    try:
        return cql.filter_clause(text, lang, CRS84_SPEC, CollectionView(layer, fields), max_depth)
    except InvalidParameter as exc:
        raise InvalidParameter(f"`{name}`: {exc.description}") from None


_SQL_TYPES = {"text": "text", "int": "bigint", "float": "double precision", "bool": "boolean",
              "date": "date", "timestamp": "timestamptz"}


def _value(v: Any, f: Field, name: str) -> Any:
    """The filter value checked against the field's type and domain."""
    ok = {"text": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "date": (str,),
          "timestamp": (str,)}[f.type]
    if isinstance(v, bool) and f.type != "bool" or not isinstance(v, ok):
        raise InvalidParameter(f"`{name}`: {f.name} was {v!r} but is expected to be a {f.type}")
    if f.domain and v not in f.domain:
        raise InvalidParameter(f"`{name}`: {f.name} was {v!r} but is expected to be one of {list(f.domain)}")
    return v


# --------------------------------------------------------------------------------------------------
# SQL, clause by clause

L, R = sql.Identifier("l"), sql.Identifier("r")


def _table(layer: Layer) -> sql.Composed:
    """The relation to read: ``<layer>_visible`` for a layer with restricted fields (the application
    role cannot read those columns in the table; the view shows them to verified callers only)."""
    name = layer.name + ("_visible" if any(f.restricted for f in layer.fields) else "")
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))


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


def _pairs(req: OverlayRequest, left: Layer, right: Layer, lf: tuple[Field, ...], rf: tuple[Field, ...],
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


def _left_with_count(req: OverlayRequest, left: Layer, right: Layer, lf: tuple[Field, ...],
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


def _echo(r: OverlayRequest) -> dict[str, Any]:
    return {"left": r.left, "predicate": r.predicate, "right": r.right, "distance_m": r.distance_m,
            "left_filter": _echo_filter(r.left_filter), "right_filter": _echo_filter(r.right_filter),
            "output": r.output,
            "measures": list(r.measures), "geometry": r.geometry, "limit": r.limit, "offset": r.offset}


def _echo_filter(f: Filter) -> Any:
    return dict(f) if isinstance(f, Mapping) else f
