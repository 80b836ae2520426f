"""A layer as one role sees it: which properties it may read, filter on and sort by.

Everything a client may name (``properties=``, ``sortby=``, CQL2 property names, equality query
parameters) is looked up here; the SQL identifiers used afterwards come from the catalogue entry found,
never from the request. Restricted fields (``Field.restricted``) do not exist for roles that may not
see them: asking for one is the same 400 as asking for a name that is not there at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql

from layers.catalogue import SCHEMA, Field, Layer
from services.errors import InvalidParameter
from services.identity import Identity

#: The geometry column of every layer table (layers/migrations), and the names clients may use for it.
GEOMETRY_COLUMN = "geom"
GEOMETRY_NAMES = ("geometry", "geom")

PropertyKind = Literal["text", "int", "float", "bool", "date", "timestamp", "json", "geometry"]

_GEOMETRY_FORMAT = {
    "Point": "geometry-point",
    "LineString": "geometry-linestring",
    "MultiPolygon": "geometry-multipolygon",
}


@dataclass(frozen=True)
class Property:
    """A name a client may use in a filter, with its catalogue field (None for the geometry)."""

    name: str
    field: Field | None

    @property
    def kind(self) -> PropertyKind:
        return "geometry" if self.field is None else self.field.type

    @property
    def column(self) -> sql.Identifier:
        """The column, quoted; its name comes from the catalogue (or the fixed geometry column)."""
        return sql.Identifier(GEOMETRY_COLUMN if self.field is None else self.field.name)


@dataclass(frozen=True)
class CollectionView:
    """``layer`` as seen by a role: ``fields`` are the catalogue fields that role may see."""

    layer: Layer
    fields: tuple[Field, ...]
    via_visible: bool = False  # read the view even when no restricted field is shown (filters may name one)

    @property
    def table(self) -> sql.Composed:
        """The qualified relation to read, quoted (schema and name from the catalogue).

        A view that shows restricted fields reads ``<layer>_visible``: the application role cannot
        read those columns in the table itself, and the view shows them only when the database has
        verified that the caller may see them (layers.grants).
        """
        visible = self.via_visible or any(f.restricted for f in self.fields)
        name = self.layer.name + ("_visible" if visible else "")
        return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))

    @property
    def id_field(self) -> str:
        """The column whose value is the feature id (``Layer.id_field``)."""
        return self.layer.id_field

    @property
    def id_column(self) -> sql.Identifier:
        return sql.Identifier(self.id_field)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str, param: str = "properties") -> Field:
        """The visible field called ``name``; 400 naming the allowed ones otherwise."""
        for f in self.fields:
            if f.name == name:
                return f
        raise InvalidParameter(
            f"`{param}`: {_short(name)} is not a property of collection "
            f"{self.layer.name!r}; the properties are {list(self.field_names)}"
        )

    def sortable(self, name: str) -> Field:
        """A visible field that can be sorted on (every type but json)."""
        f = self.field(name, "sortby")
        if f.type == "json":
            raise InvalidParameter(
                f"`sortby`: {name!r} holds JSON and cannot be sorted on; sortable are "
                f"{[x.name for x in self.fields if x.type != 'json']}"
            )
        return f

    @property
    def queryable_names(self) -> list[str]:
        """Names a filter may use: the geometry, then every visible non-JSON field."""
        return ["geometry"] + [f.name for f in self.fields if f.type != "json"]

    def queryable(self, name: str) -> Property:
        """The property called ``name`` in a filter; 400 naming the queryables otherwise."""
        if name in GEOMETRY_NAMES:
            return Property(name, None)
        for f in self.fields:
            if f.name == name:
                return Property(name, f)
        raise InvalidParameter(
            f"unknown property {_short(name)} in the filter of collection "
            f"{self.layer.name!r}; the queryables are {self.queryable_names}"
        )

    def queryables_schema(self, url: str) -> dict[str, Any]:
        """The queryables document (JSON Schema 2020-12) of OGC API Features Part 3."""
        props: dict[str, Any] = {
            "geometry": {
                "title": "Geometry",
                "description": "Also accepted as `geom`.",
                "format": _GEOMETRY_FORMAT[self.layer.geometry_type],
                "x-ogc-role": "primary-geometry",
            },
        }
        for f in self.fields:
            if f.type != "json":
                props[f.name] = field_schema(f)
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": url,
            "type": "object",
            "title": f"{self.layer.title} ({self.layer.title_zh})",
            "description": f"Properties of {self.layer.name} usable in CQL2 filters, sortby and as "
            "equality query parameters.",
            "properties": props,
            "additionalProperties": False,
        }

    def features_schema(self, url: str) -> dict[str, Any]:
        """JSON Schema of one GeoJSON feature as this role receives it (GDAL reads field types from it)."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": url,
            "title": self.layer.title,
            "type": "object",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"type": "string"},
                "geometry": {
                    "format": _GEOMETRY_FORMAT[self.layer.geometry_type],
                    "x-ogc-role": "primary-geometry",
                },
                "properties": {
                    "type": "object",
                    "properties": {f.name: field_schema(f) for f in self.fields},
                },
            },
        }


def view(layer: Layer, identity: Identity) -> CollectionView:
    """The collection view of ``layer`` for ``identity`` (restricted fields only when allowed)."""
    return CollectionView(layer, layer.public_fields(identity.sees_restricted))


def field_schema(f: Field) -> dict[str, Any]:
    """JSON Schema of one catalogue field."""
    out: dict[str, Any] = {"title": f.title or f.name}
    if f.title_zh:
        out["description"] = f.title_zh
    if f.type == "text":
        out["type"] = "string"
        if f.domain:
            out["enum"] = list(f.domain)
    elif f.type == "int":
        out["type"] = "integer"
    elif f.type == "float":
        out["type"] = "number"
    elif f.type == "bool":
        out["type"] = "boolean"
    elif f.type == "date":
        out.update(type="string", format="date")
    elif f.type == "timestamp":
        out.update(type="string", format="date-time")
    else:
        out["type"] = "array"
    if f.type in ("int", "float"):
        if f.minimum is not None:
            out["minimum"] = f.minimum
        if f.maximum is not None:
            out["maximum"] = f.maximum
    if f.unit:
        out["x-ogc-unit"] = f.unit
    return out


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"
