"""SQL built clause by clause, for the OGC endpoints and the analyses.

A :class:`Clause` is a piece of SQL with its own bound values, in placeholder order; clauses compose
without ever putting a client's value in the SQL text. Identifiers come from the catalogue (through
:class:`services.query.views.CollectionView`); values travel as ``%s`` parameters.

PostGIS builds the bytes (DESIGN 10): each feature comes out of the database as GeoJSON text, built by
string concatenation so that the geometry's JSON is never parsed again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from layers.catalogue import SQL_TYPES, Field  # SQL_TYPES: casts of bound values, the catalogue's one map
from services.query.views import GEOMETRY_COLUMN, CollectionView

GEOM = sql.Identifier(GEOMETRY_COLUMN)
TRUE = sql.SQL("TRUE")


@dataclass(frozen=True)
class Clause:
    """SQL text and the values for its placeholders, in order."""

    text: sql.Composable
    params: tuple[Any, ...] = ()

    def wrap(self, template: str) -> Clause:
        """``template`` (with one ``{}``) around this clause; the template has no placeholders."""
        return Clause(sql.SQL(template).format(self.text), self.params)


def join(clauses: Iterable[Clause], separator: str) -> Clause:
    """The clauses joined by ``separator``, their parameters concatenated in the same order."""
    items = list(clauses)
    return Clause(sql.SQL(separator).join(c.text for c in items), tuple(p for c in items for p in c.params))


def all_of(clauses: Sequence[Clause]) -> Clause:
    """The conjunction of ``clauses`` (TRUE when there are none), each parenthesised."""
    if not clauses:
        return Clause(TRUE)
    return join((c.wrap("({})") for c in clauses), " AND ")


def param(value: Any, cast: str | None = None) -> Clause:
    """One bound value, optionally cast to a SQL type named here (never by a client)."""
    text = sql.SQL("%s") if cast is None else sql.SQL("%s::" + cast)
    return Clause(text, (value,))


def wgs84_geometry(wkb: bytes) -> Clause:
    """A bound WGS84 geometry given as WKB."""
    return Clause(sql.SQL("ST_GeomFromWKB(%s, 4326)"), (wkb,))


def intersects_clause(wkb: bytes) -> Clause:
    """Rows whose geometry intersects the bound WGS84 geometry (GiST on ``geom``)."""
    g = wgs84_geometry(wkb)
    return Clause(sql.SQL("ST_Intersects({}, {})").format(GEOM, g.text), g.params)


def envelope_clause(minx: float, miny: float, maxx: float, maxy: float) -> Clause:
    """Rows whose geometry intersects a WGS84 lon/lat rectangle (GiST on ``geom``)."""
    return Clause(
        sql.SQL("ST_Intersects({}, ST_MakeEnvelope(%s, %s, %s, %s, 4326))").format(GEOM),
        (minx, miny, maxx, maxy),
    )


def equals_clause(f: Field, value: Any) -> Clause:
    """``field = value`` with the value cast to the field's type."""
    return Clause(sql.SQL("{} = %s::" + SQL_TYPES[f.type]).format(sql.Identifier(f.name)), (value,))




def properties_json(fields: Sequence[Field]) -> sql.Composable:
    """A JSON object of ``fields`` (names from the catalogue), keys in catalogue order.

    ``row_to_json`` of a one-row subselect: compact JSON, and faster than ``json_build_object``.
    """
    if not fields:
        return sql.SQL("'{}'::json")
    columns = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields)
    return sql.SQL("(SELECT row_to_json(p) FROM (SELECT {}) AS p)").format(columns)


def feature_text(
    v: CollectionView, fields: Sequence[Field], geometry: sql.Composable, decimals: int
) -> sql.Composable:
    """One GeoJSON Feature as text: id, geometry (``geometry`` is the SQL of the output geometry) and
    the ``fields`` as properties."""
    return sql.SQL(
        '\'{{"type":"Feature","id":\' || to_json({id})::text || \',"geometry":\' || '
        "coalesce(ST_AsGeoJSON({geom}, {dec}, 0), 'null') || ',\"properties\":' || {props}::text || '}}'"
    ).format(id=v.id_column, geom=geometry, dec=sql.Literal(int(decimals)), props=properties_json(fields))


@dataclass(frozen=True)
class FeatureQuery:
    """What an items request asks of one collection, ready to become SQL."""

    view: CollectionView
    fields: tuple[Field, ...]  # the properties to return
    where: tuple[Clause, ...] = ()
    order: tuple[tuple[Field, bool], ...] = ()  # (field, descending)
    limit: int = 100
    offset: int = 0
    #: SQL of the geometry to output instead of the stored ``geom`` of a page row (e.g. simplified)
    geometry: Clause | None = None

    def where_clause(self) -> Clause:
        """``WHERE`` over every condition (bbox, filter, equality parameters)."""
        return all_of(list(self.where)).wrap("WHERE {}")

    def order_clause(self) -> sql.Composable:
        """``ORDER BY`` the requested fields, then the id so that pages never overlap."""
        parts = [
            sql.SQL("{} DESC NULLS LAST" if desc else "{} ASC NULLS LAST").format(sql.Identifier(f.name))
            for f, desc in self.order
        ]
        if not any(f.name == self.view.id_field for f, _ in self.order):
            parts.append(sql.SQL("{} ASC").format(self.view.id_column))
        return sql.SQL("ORDER BY {}").format(sql.SQL(", ").join(parts))

    def page_clause(self) -> Clause:
        return Clause(sql.SQL("LIMIT %s OFFSET %s"), (int(self.limit), int(self.offset)))

    def _names(self) -> list[str]:
        """The columns the output needs besides the geometry: id, properties, sort keys."""
        return list(
            dict.fromkeys(
                [self.view.id_field, *(f.name for f in self.fields), *(f.name for f, _ in self.order)]
            )
        )

    def page_rows(self) -> Clause:
        """The page's rows with the raw columns the output needs, as subquery ``page``.

        The JSON is built over this subquery, not next to OFFSET: PostgreSQL evaluates a SELECT list
        for every row it skips, so building GeoJSON in the same query level costs ``offset + limit``
        features instead of ``limit``.
        """
        names = self._names()
        where = self.where_clause()
        page = self.page_clause()
        text = sql.SQL("(SELECT {cols}, {geom} FROM {table} {where} {order} {page}) AS page").format(
            cols=sql.SQL(", ").join(sql.Identifier(n) for n in names),
            geom=GEOM,
            table=self.view.table,
            where=where.text,
            order=self.order_clause(),
            page=page.text,
        )
        return Clause(text, where.params + page.params)

    def output_rows(self) -> Clause:
        """The page's rows as subquery ``page``, with ``geom`` replaced by :attr:`geometry` when set.

        The replacement is computed one level above LIMIT/OFFSET, so only for the rows returned.
        """
        rows = self.page_rows()
        if self.geometry is None:
            return rows
        text = sql.SQL("(SELECT {cols}, {geometry} AS {geom} FROM {rows}) AS page").format(
            cols=sql.SQL(", ").join(sql.Identifier(n) for n in self._names()),
            geometry=self.geometry.text,
            geom=GEOM,
            rows=rows.text,
        )
        return Clause(text, self.geometry.params + rows.params)

    def features_as_text(self, geometry: sql.Composable, decimals: int) -> Clause:
        """One row per feature, in order: its GeoJSON text (geometry produced by PostGIS)."""
        rows = self.output_rows()
        text = sql.SQL("SELECT {feature} FROM {rows} {order}").format(
            feature=feature_text(self.view, self.fields, geometry, decimals),
            rows=rows.text,
            order=self.order_clause(),
        )
        return Clause(text, rows.params)

    def features_as_parts(self) -> Clause:
        """One row per feature, in order: id JSON, properties JSON and WGS84 WKB (for a Python transform)."""
        rows = self.output_rows()
        text = sql.SQL(
            "SELECT to_json({id})::text, {props}::text, ST_AsBinary({geom}) FROM {rows} {order}"
        ).format(
            id=self.view.id_column,
            props=properties_json(self.fields),
            geom=GEOM,
            rows=rows.text,
            order=self.order_clause(),
        )
        return Clause(text, rows.params)

    def count(self) -> Clause:
        """The number of rows matching the conditions."""
        where = self.where_clause()
        return Clause(
            sql.SQL("SELECT count(*) FROM {table} {where}").format(table=self.view.table, where=where.text),
            where.params,
        )


def by_id(v: CollectionView, fid: str) -> Clause:
    """The condition selecting the feature whose id is ``fid``."""
    return Clause(sql.SQL("{} = %s::text").format(v.id_column), (fid,))
