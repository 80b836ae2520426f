"""The filter on each side of an overlay (CQL2 text or JSON, or equality) as a FROM item, values bound."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from psycopg import sql

from gis.crs import CRS84 as CRS84_SPEC
from layers.catalogue import SCHEMA, Field, Layer
from services.errors import InvalidParameter
from services.overlay.request import Filter
from services.query import cql
from services.query.clauses import SQL_TYPES, Clause, join
from services.query.views import CollectionView


def source(layer: Layer, spec: Filter, fields: tuple[Field, ...], alias: str, name: str,
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
        cast = SQL_TYPES[f.type]
        if isinstance(value, (list, tuple)):
            out.append(Clause(sql.SQL("{} = ANY(%s::" + cast + "[])").format(column),
                              ([_value(v, f, name) for v in value],)))
        else:
            out.append(Clause(sql.SQL("{} = %s::" + cast).format(column), (_value(value, f, name),)))
    return join(out, " AND ") if out else None


def _cql(spec: str | Mapping[str, Any], layer: Layer, fields: tuple[Field, ...], name: str,
         max_depth: int) -> Clause:
    """CQL2 text or JSON through the query kit, against this layer's queryables for the role."""
    text, lang = (spec, "cql2-text") if isinstance(spec, str) else (json.dumps(spec), "cql2-json")
    try:
        return cql.filter_clause(text, lang, CRS84_SPEC, CollectionView(layer, fields), max_depth)
    except InvalidParameter as exc:
        raise InvalidParameter(f"`{name}`: {exc.description}") from None


def _value(v: Any, f: Field, name: str) -> Any:
    """The filter value checked against the field's type and domain."""
    ok = {"text": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "date": (str,),
          "timestamp": (str,)}[f.type]
    if isinstance(v, bool) and f.type != "bool" or not isinstance(v, ok):
        raise InvalidParameter(f"`{name}`: {f.name} was {v!r} but is expected to be a {f.type}")
    if f.domain and v not in f.domain:
        raise InvalidParameter(f"`{name}`: {f.name} was {v!r} but is expected to be one of {list(f.domain)}")
    return v


def _table(layer: Layer) -> sql.Composed:
    """The relation to read: ``<layer>_visible`` for a layer with restricted fields (the application
    role cannot read those columns in the table; the view shows them to verified callers only)."""
    name = layer.name + ("_visible" if any(f.restricted for f in layer.fields) else "")
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))
