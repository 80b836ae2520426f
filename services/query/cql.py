"""CQL2 (text and JSON) to SQL with bound parameters (OGC API Features Part 3).

pygeofilter parses; this module walks its AST itself and emits a :class:`~services.query.clauses.Clause`:
column names come only from the collection's queryables, every literal is a bound ``%s`` value cast
to the property's type, spatial literals are moved from ``filter-crs`` to WGS84 in Python before they
are bound. Anything else (an unknown property, a type mismatch, a malformed or too deep filter, an
unsupported operator) is an :class:`InvalidParameter` that says what was wrong.

Supported: comparisons (=, <>, <, <=, >, >=), LIKE (``%`` and ``_`` wildcards, ``\\`` escape, case
sensitive), IN, BETWEEN, IS NULL, AND/OR/NOT, CASEI/LOWER on text, and the spatial predicates
S_INTERSECTS, S_WITHIN, S_CONTAINS, S_DISJOINT, S_TOUCHES, S_CROSSES, S_OVERLAPS, S_EQUALS and
BBOX. The within-distance in metres is the function ``S_DWITHIN(geometry, <literal>, <metres>)``
(CQL2 JSON: ``{"op": "s_dwithin", "args": [{"property": "geometry"}, <geometry>, <metres>]}``),
evaluated on geography (metres on the WGS84 spheroid) behind a bounding-box test on ``geom`` so that
the GiST index is used.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import orjson
import shapely
from psycopg import sql
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json.parser import walk_cql_json
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from gis.crs import CrsSpec
from services.errors import InvalidParameter
from services.query.clauses import GEOM, SQL_TYPES, Clause, join, param, wgs84_geometry
from services.query.cql_text import parse as parse_cql2_text
from services.query.crs import bbox_to_wgs84, geometry_to_wgs84, negotiate
from services.query.views import CollectionView, Property

__all__ = [
    "FILTER_LANGS",
    "MAX_FILTER_CHARS",
    "MAX_GEOMETRY_VERTICES",
    "MAX_DWITHIN_M",
    "parse",
    "to_sql",
    "filter_clause",
]

#: Accepted ``filter-lang`` values; ``cql-text`` / ``cql-json`` are the pre-1.0 names some clients send.
FILTER_LANGS = ("cql2-text", "cql2-json", "cql-text", "cql-json")
#: Limits on what a filter may hold (DESIGN 9): characters, vertices of all its geometries, IN items.
MAX_FILTER_CHARS = 100_000
MAX_GEOMETRY_VERTICES = 20_000
MAX_IN_ITEMS = 1_000
#: The largest S_DWITHIN distance accepted (metres): more than half the Earth's circumference.
MAX_DWITHIN_M = 20_100_000.0

_SPATIAL = {
    ast.GeometryIntersects: "ST_Intersects",
    ast.GeometryWithin: "ST_Within",
    ast.GeometryContains: "ST_Contains",
    ast.GeometryDisjoint: "ST_Disjoint",
    ast.GeometryTouches: "ST_Touches",
    ast.GeometryCrosses: "ST_Crosses",
    ast.GeometryOverlaps: "ST_Overlaps",
    ast.GeometryEquals: "ST_Equals",
}
_COMPARISON = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_NUMERIC = ("int", "float")
_INT64 = 2**63 - 1
_DWITHIN_NAMES = ("s_dwithin", "dwithin")
_LOWER_NAMES = ("lower", "casei")


def parse(text: str, lang: str | None, max_depth: int) -> ast.Node:
    """Parse a ``filter`` in ``lang`` (default cql2-text) into pygeofilter's AST.

    Raises :class:`InvalidParameter` for an unknown language, a malformed filter, or one nested deeper
    than ``max_depth`` (checked on the raw text before parsing, then on the AST).
    """
    lang = (lang or "cql2-text").strip().lower()
    if lang not in FILTER_LANGS:
        raise InvalidParameter(
            f"`filter-lang` was {_short(lang)} but is expected to be one of {list(FILTER_LANGS[:2])}"
        )
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidParameter(
            f"the filter has {len(text)} characters; at most {MAX_FILTER_CHARS} are allowed"
        )
    if not text.strip():
        raise InvalidParameter("the filter is empty")
    json_lang = lang.endswith("json")
    nesting = _nesting(text, "[{(" if json_lang else "(")
    if nesting > 3 * max_depth + 8:
        raise InvalidParameter(
            f"the filter is nested {nesting} levels deep; at most {max_depth} operators deep are allowed"
        )
    try:
        if json_lang:
            node = walk_cql_json(_prepare_json(orjson.loads(text)))
        else:
            node = parse_cql2_text(text)
    except InvalidParameter:
        raise
    except RecursionError:
        raise InvalidParameter("the filter is nested too deeply") from None
    except Exception as exc:  # lark and pygeofilter raise many types; all mean "malformed"
        raise InvalidParameter(
            f"the filter is not valid {'CQL2 JSON' if json_lang else 'CQL2 text'}: {_first_line(exc)}"
        ) from None
    if not isinstance(node, ast.Node) or (isinstance(node, ast.Expression) and not _is_dwithin(node)):
        raise InvalidParameter("the filter is expected to be a condition (a predicate), not a value")
    depth = _depth(node)
    if depth > max_depth:
        raise InvalidParameter(f"the filter is {depth} operators deep; at most {max_depth} are allowed")
    return node


def to_sql(node: ast.Node, view: CollectionView, filter_crs: CrsSpec) -> Clause:
    """The SQL condition of a parsed filter for ``view``; literals bound, names from its queryables."""
    return _Translator(view, filter_crs).condition(node)


def filter_clause(
    text: str | None, lang: str | None, crs: CrsSpec, view: CollectionView, max_depth: int
) -> Clause | None:
    """Parse and translate a ``filter`` query parameter; None when there is none."""
    if text is None:
        return None
    return to_sql(parse(text, lang, max_depth), view, crs)


class _Translator:
    """Walks one filter's AST; ``geometry_vertices`` counts the vertices bound so far."""

    def __init__(self, view: CollectionView, crs: CrsSpec) -> None:
        self.view = view
        self.crs = crs
        self.geometry_vertices = 0

    # -- conditions ------------------------------------------------------------------------------

    def condition(self, node: Any) -> Clause:
        handler = self._conditions().get(type(node))
        if handler is not None:
            return handler(node)
        if isinstance(node, ast.Comparison):
            return self.comparison(node)
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self.spatial(node)
        if _is_dwithin(node) or isinstance(node, ast.DistanceWithin):
            return self.dwithin(node)
        if isinstance(node, bool):
            return Clause(sql.SQL("TRUE" if node else "FALSE"))
        raise InvalidParameter(
            f"the filter uses {_describe(node)}, which this server does not support; "
            "supported are comparisons, LIKE, IN, BETWEEN, IS NULL, AND/OR/NOT, CASEI, "
            "S_INTERSECTS, S_WITHIN, S_CONTAINS, S_DISJOINT, S_TOUCHES, S_CROSSES, "
            "S_OVERLAPS, S_EQUALS, BBOX and S_DWITHIN(geometry, geometry, metres)"
        )

    def _conditions(self) -> dict[type, Callable[[Any], Clause]]:
        return {
            ast.And: lambda n: join(
                [self.condition(n.lhs).wrap("({})"), self.condition(n.rhs).wrap("({})")], " AND "
            ),
            ast.Or: lambda n: join(
                [self.condition(n.lhs).wrap("({})"), self.condition(n.rhs).wrap("({})")], " OR "
            ),
            ast.Not: lambda n: self.condition(n.sub_node).wrap("NOT ({})"),
            ast.Include: lambda n: Clause(sql.SQL("FALSE" if n.not_ else "TRUE")),
            ast.IsNull: self.is_null,
            ast.Like: self.like,
            ast.In: self.in_,
            ast.Between: self.between,
            ast.BBox: self.bbox,
        }

    def comparison(self, node: ast.Comparison) -> Clause:
        op = _COMPARISON[type(node)]
        lhs, rhs = node.lhs, node.rhs
        kind = self._scalar_kind(lhs, rhs, op)
        return join([self.scalar(lhs, kind), Clause(sql.SQL(op)), self.scalar(rhs, kind)], " ")

    def is_null(self, node: ast.IsNull) -> Clause:
        if not isinstance(node.lhs, ast.Attribute):
            raise InvalidParameter("IS NULL is expected to follow a property name")
        name = node.lhs.name
        # JSON fields are not queryables, but whether they are set is a fair question.
        prop = self._any_property(name) if name in self.view.field_names else self.view.queryable(name)
        return Clause(sql.SQL("{} IS NOT NULL" if node.not_ else "{} IS NULL").format(prop.column))

    def like(self, node: ast.Like) -> Clause:
        pattern = node.pattern
        lowered = isinstance(pattern, ast.Function) and str(pattern.name).lower() in _LOWER_NAMES
        if lowered and len(pattern.arguments) == 1:
            pattern = pattern.arguments[0]  # LIKE CASEI('...'): the pattern in lower case
        if not isinstance(pattern, str):
            raise InvalidParameter("LIKE is expected to be followed by a string pattern")
        self._text_operand(node.lhs, "LIKE")
        op = ("NOT " if node.not_ else "") + ("ILIKE" if node.nocase else "LIKE")
        # CQL2 patterns use % and _ with \ as escape: the same as PostgreSQL's LIKE.
        value = param(pattern, "text").wrap("lower({})") if lowered else param(pattern, "text")
        return join([self.scalar(node.lhs, "text"), Clause(sql.SQL(op)), value], " ")

    def in_(self, node: ast.In) -> Clause:
        items = list(node.sub_nodes)
        if not items:
            raise InvalidParameter("IN is expected to list at least one value")
        if len(items) > MAX_IN_ITEMS:
            raise InvalidParameter(f"IN lists {len(items)} values; at most {MAX_IN_ITEMS} are allowed")
        kind = self._kind_of(node.lhs, "IN")
        if kind in ("geometry", "json"):
            raise InvalidParameter(f"IN cannot be used on a {kind} property")
        lits = [self._literal(v, kind, "IN") for v in items]
        array_type = SQL_TYPES[kind] + "[]"
        if kind == "float" or (kind == "int" and any(isinstance(v, float) for v in lits)):
            array_type = "double precision[]"
            lits = [float(v) for v in lits]  # one array holds one type
        negate = "NOT " if node.not_ else ""
        lhs = self.scalar(node.lhs, kind)
        return Clause(
            sql.SQL(negate + "({} = ANY(%s::" + array_type + "))").format(lhs.text), lhs.params + (lits,)
        )

    def between(self, node: ast.Between) -> Clause:
        kind = self._kind_of(node.lhs, "BETWEEN")
        if kind not in _NUMERIC + ("text", "date", "timestamp"):
            raise InvalidParameter(f"BETWEEN cannot be used on a {kind} property")
        op = "NOT BETWEEN" if node.not_ else "BETWEEN"
        return join(
            [
                self.scalar(node.lhs, kind),
                Clause(sql.SQL(op)),
                self.scalar(node.low, kind),
                Clause(sql.SQL("AND")),
                self.scalar(node.high, kind),
            ],
            " ",
        )

    def spatial(self, node: ast.SpatialComparisonPredicate) -> Clause:
        func = _SPATIAL[type(node)]
        lhs, rhs = self.geometry(node.lhs), self.geometry(node.rhs)
        return Clause(sql.SQL(func + "({}, {})").format(lhs.text, rhs.text), lhs.params + rhs.params)

    def bbox(self, node: ast.BBox) -> Clause:
        crs = negotiate(node.crs, "filter BBOX crs") if node.crs else self.crs
        box = bbox_to_wgs84(
            [_number(v, "BBOX") for v in (node.minx, node.miny, node.maxx, node.maxy)],
            crs,
            "BBOX in the filter",
        )
        lhs = self.geometry(node.lhs)
        g = wgs84_geometry(shapely.to_wkb(box))
        return Clause(sql.SQL("ST_Intersects({}, {})").format(lhs.text, g.text), lhs.params + g.params)

    def dwithin(self, node: ast.Function | ast.DistanceWithin) -> Clause:
        if isinstance(node, ast.DistanceWithin):
            args = [node.lhs, node.rhs, node.distance]
        else:
            args = list(node.arguments)
        if len(args) != 3:
            raise InvalidParameter(
                "S_DWITHIN takes three arguments: a geometry property, a geometry and a distance in metres"
            )
        distance = _number(args[2], "S_DWITHIN distance")
        if not 0 <= distance <= MAX_DWITHIN_M:
            raise InvalidParameter(
                f"the S_DWITHIN distance was {distance} but is expected to be between 0 and "
                f"{MAX_DWITHIN_M:.0f} metres"
            )
        prop = next((a for a in args[:2] if isinstance(a, ast.Attribute)), None)
        lit = next((a for a in args[:2] if not isinstance(a, ast.Attribute)), None)
        if prop is None or lit is None:
            raise InvalidParameter("S_DWITHIN compares the geometry property with a geometry literal")
        if self.view.queryable(prop.name).kind != "geometry":
            raise InvalidParameter(f"S_DWITHIN needs the geometry property, not {prop.name!r}")
        geom = self._geometry_literal(lit)
        # Metres on the spheroid (geography); the && test on a degree box that surely holds every
        # point within `distance` lets the GiST index on geom do the work for every layer, and for
        # the point layers the expression index on geom::geography serves ST_DWithin itself.
        box = _degree_box(geom, distance)
        return Clause(
            sql.SQL(
                "({g} && ST_GeomFromWKB(%s, 4326) AND "
                "ST_DWithin({g}::geography, ST_GeomFromWKB(%s, 4326)::geography, %s))"
            ).format(g=GEOM),
            (shapely.to_wkb(box), shapely.to_wkb(geom), distance),
        )

    # -- values ----------------------------------------------------------------------------------

    def scalar(self, node: Any, kind: str) -> Clause:
        """A scalar operand: a property's column, CASEI/LOWER of a text operand, or a bound literal."""
        if isinstance(node, ast.Attribute):
            prop = self.view.queryable(node.name)
            return Clause(prop.column)
        if isinstance(node, ast.Function) and node.name.lower() in _LOWER_NAMES:
            if len(node.arguments) != 1:
                raise InvalidParameter("CASEI takes one argument")
            inner = self.scalar(node.arguments[0], "text")
            return inner.wrap("lower({})")
        if isinstance(node, (ast.Node, values.Geometry, values.Envelope, values.Interval, list)):
            raise InvalidParameter(f"{_describe(node)} cannot be used as a value here")
        return param(
            self._literal(node, kind, "comparison"),
            SQL_TYPES[kind] if not (kind == "int" and isinstance(node, float)) else "double precision",
        )

    def geometry(self, node: Any) -> Clause:
        """A geometry operand: the geometry column, or a literal moved to WGS84 and bound."""
        if isinstance(node, ast.Attribute):
            prop = self.view.queryable(node.name)
            if prop.kind != "geometry":
                raise InvalidParameter(
                    f"spatial predicates compare geometries; {node.name!r} is a {prop.kind} property"
                )
            return Clause(GEOM)
        return wgs84_geometry(shapely.to_wkb(self._geometry_literal(node)))

    def _geometry_literal(self, node: Any) -> BaseGeometry:
        if isinstance(node, ast.Function) and str(node.name).lower() == "bbox":
            # CQL2 text's bbox literal, BBOX(minx, miny, maxx, maxy), in filter-crs
            numbers = [_number(v, "BBOX") for v in node.arguments]
            return bbox_to_wgs84(numbers, self.crs, "BBOX in the filter")
        if isinstance(node, (values.Geometry, values.Envelope)):
            try:
                geom = shape(node.geometry)
            except Exception as exc:  # shapely raises several types for bad GeoJSON
                raise InvalidParameter(f"a geometry in the filter is not valid: {_first_line(exc)}") from None
        else:
            raise InvalidParameter(f"spatial predicates need a geometry, got {_describe(node)}")
        n = int(shapely.get_num_coordinates(geom))
        self.geometry_vertices += n
        if self.geometry_vertices > MAX_GEOMETRY_VERTICES:
            raise InvalidParameter(f"the filter's geometries have more than {MAX_GEOMETRY_VERTICES} vertices")
        if geom.is_empty:
            raise InvalidParameter("a geometry in the filter is empty")
        if not shapely.is_valid(geom):
            geom = shapely.make_valid(geom)
        return geometry_to_wgs84(geom, self.crs)

    def _literal(self, value: Any, kind: str, where: str) -> Any:
        """``value`` checked against a property kind; 400 on a mismatch."""
        if kind == "text":
            if isinstance(value, str):
                return value
        elif kind in _NUMERIC:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if isinstance(value, float) and not math.isfinite(value):
                    raise InvalidParameter(f"{value!r} in the filter is not a finite number")
                if isinstance(value, int) and abs(value) > _INT64:
                    raise InvalidParameter(
                        f"{_short(value)} in the filter is out of range (at most {_INT64} in absolute value)"
                    )
                return value
        elif kind == "bool":
            if isinstance(value, bool):
                return value
        elif kind == "date":
            if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                return value
        elif kind == "timestamp":
            if isinstance(value, dt.datetime):
                return value
        raise InvalidParameter(
            f"{where}: {_describe(value)} does not match a {_KIND_NAMES.get(kind, kind)} property"
        )

    def _scalar_kind(self, lhs: Any, rhs: Any, op: str) -> str:
        kinds = [k for k in (self._kind_or_none(lhs, op), self._kind_or_none(rhs, op)) if k]
        if not kinds:
            raise InvalidParameter(f"the comparison {op} is expected to involve at least one property")
        kind = kinds[0]
        if kind in ("geometry", "json"):
            raise InvalidParameter(
                f"{op} cannot compare a {kind} property; use a spatial predicate or IS NULL"
            )
        if len(kinds) == 2 and kinds[0] != kinds[1] and not (kinds[0] in _NUMERIC and kinds[1] in _NUMERIC):
            raise InvalidParameter(f"{op} compares properties of different types ({kinds[0]} and {kinds[1]})")
        if kind in _NUMERIC and len(kinds) == 2:
            return "float"
        return kind

    def _kind_or_none(self, node: Any, op: str) -> str | None:
        if isinstance(node, ast.Attribute):
            return self.view.queryable(node.name).kind
        if isinstance(node, ast.Function) and node.name.lower() in _LOWER_NAMES:
            return "text"
        if isinstance(node, ast.Function):
            raise InvalidParameter(f"the function {node.name!r} is not supported in filters (only CASEI)")
        if isinstance(node, ast.Arithmetic):
            raise InvalidParameter("arithmetic expressions are not supported in filters")
        return None

    def _kind_of(self, node: Any, where: str) -> str:
        kind = self._kind_or_none(node, where)
        if kind is None:
            raise InvalidParameter(f"{where} is expected to follow a property name")
        return kind

    def _text_operand(self, node: Any, where: str) -> None:
        kind = self._kind_of(node, where)
        if kind != "text":
            raise InvalidParameter(f"{where} works on text properties; this one is {kind}")

    def _any_property(self, name: str) -> Property:
        """Any visible property (JSON ones included, for IS NULL)."""
        f = self.view.field(name, "filter")
        return Property(name, f)


_KIND_NAMES = {
    "text": "text (string)",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


def _is_dwithin(node: Any) -> bool:
    return isinstance(node, ast.Function) and str(node.name).lower() in _DWITHIN_NAMES


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise InvalidParameter(f"{where} is expected to be a finite number, got {_describe(value)}")
    return float(value)


def _degree_box(geom: BaseGeometry, metres: float) -> BaseGeometry:
    """A lon/lat box holding every point within ``metres`` of ``geom`` (generous by a few per cent)."""
    minx, miny, maxx, maxy = geom.bounds
    dlat = metres / 110_574.0 * 1.01 + 1e-9  # shortest degree of latitude (at the equator)
    lat_edge = min(max(abs(miny - dlat), abs(maxy + dlat)), 90.0)
    cos = math.cos(math.radians(lat_edge))
    dlon = 360.0 if cos < 1e-6 else min(metres / (111_320.0 * cos) * 1.01 + 1e-9, 360.0)
    return shapely.box(
        max(minx - dlon, -180.0), max(miny - dlat, -90.0), min(maxx + dlon, 180.0), min(maxy + dlat, 90.0)
    )


def _prepare_json(doc: Any) -> Any:
    """CQL2 JSON details pygeofilter does not read: ``s_dwithin`` (as a function) and ``{"bbox": [...]}``
    literals (as polygons, since pygeofilter mixes up their axes). Iterative, so deep input cannot
    exhaust the stack."""
    root: list[Any] = [doc]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        node = container[key]
        if isinstance(node, dict):
            if node.get("op") in _DWITHIN_NAMES and isinstance(node.get("args"), list):
                node = {"function": {"name": "s_dwithin", "arguments": node["args"]}}
                container[key] = node
            elif (
                node.get("op") == "between" and isinstance(node.get("args"), list) and len(node["args"]) == 3
            ):
                node = {"op": "between", "args": [node["args"][0], [node["args"][1], node["args"][2]]]}
                container[key] = node
            elif set(node) == {"bbox"} and isinstance(node["bbox"], list) and len(node["bbox"]) in (4, 6):
                b = node["bbox"] if len(node["bbox"]) == 4 else [node["bbox"][i] for i in (0, 1, 3, 4)]
                if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b):
                    x0, y0, x1, y1 = b
                    node = {
                        "type": "Polygon",
                        "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
                    }
                    container[key] = node
                continue
            for k in node:
                stack.append((node, k))
        elif isinstance(node, list):
            for i in range(len(node)):
                stack.append((node, i))
    return root[0]


def _nesting(text: str, openers: str) -> int:
    """The deepest bracket nesting of ``text`` outside quoted strings."""
    closers = {"(": ")", "[": "]", "{": "}"}
    close = {closers[o] for o in openers}
    depth = best = 0
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in openers:
            depth += 1
            best = max(best, depth)
        elif ch in close:
            depth -= 1
    return best


def _depth(node: Any) -> int:
    """Operator depth of the AST (iterative)."""
    best = 0
    stack: list[tuple[Any, int]] = [(node, 1)]
    while stack:
        current, d = stack.pop()
        if isinstance(current, (ast.Combination, ast.Not, ast.Predicate, ast.Function, ast.Arithmetic)):
            best = max(best, d)
            subs = current.get_sub_nodes() if not isinstance(current, ast.Not) else [current.sub_node]
            if isinstance(current, ast.Function):
                subs = list(current.arguments)
            for s in subs or []:
                if isinstance(s, list):
                    stack.extend((x, d + 1) for x in s)
                else:
                    stack.append((s, d + 1))
    return best


def _describe(node: Any) -> str:
    if isinstance(node, ast.Attribute):
        return f"property {node.name!r}"
    if isinstance(node, ast.Function):
        return f"function {node.name!r}"
    if isinstance(node, (values.Geometry, values.Envelope)):
        return "a geometry"
    if isinstance(node, ast.Node):
        return type(node).__name__
    if isinstance(node, bool):
        return f"the boolean {node!r}"
    if isinstance(node, (int, float)):
        return f"the number {_short(node)}"
    if isinstance(node, str):
        return f"the string {_short(node)}"
    return type(node).__name__


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
