"""SQLAlchemy ``Table``s of the layers, generated from the catalogue, for analysts working in Python.

Each catalogue layer is a :class:`sqlalchemy.Table` of ``riskatlas.<layer>`` with one column per
catalogue field (types from :data:`layers.catalogue.SQL_TYPES`), primary key ``key`` (``code`` for
``admin_area``, which has no key field), and the
geometry as a :class:`geoalchemy2.types.Geometry` column ``geom`` in EPSG:4326::

    import geopandas
    from sqlalchemy import select
    from layers import db, tables
    from layers.settings import DatabaseSettings

    engine = db.engine(DatabaseSettings(), "owner")
    cities = geopandas.read_postgis(
        select(tables.admin_area).where(tables.admin_area.c.level == "city"), engine, geom_col="geom")

The tables are for the schema owner's (analyst's) engine: they hold every field, restricted ones
included.  The application role may not read restricted columns of the base tables; it reads the
``<layer>_visible`` views (:data:`VISIBLE`, or :func:`readable`), which show restricted fields only to
a verified caller allowed to see them and NULL to everyone else (``layers/grants.py``).

A table holds the catalogue's fields only: bookkeeping columns of the database (timestamps, batch
ids) are left out, so a new layer is one declaration in the catalogue and nothing here.
"""

from __future__ import annotations

from collections.abc import Callable

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Float, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from layers.catalogue import LAYERS, SCHEMA, SQL_TYPES, SRID, Field, Layer

#: The SQLAlchemy type of each PostgreSQL type the catalogue uses (keys are ``SQL_TYPES`` values).
_SQLALCHEMY: dict[str, Callable[[], TypeEngine]] = {
    "text": Text,
    "bigint": BigInteger,
    "double precision": lambda: Float(53),
    "boolean": Boolean,
    "date": Date,
    "timestamptz": lambda: DateTime(timezone=True),
    "jsonb": JSONB,
}
_missing = set(SQL_TYPES.values()) - set(_SQLALCHEMY)
if _missing:  # a new field type in the catalogue needs its SQLAlchemy type here
    raise RuntimeError(f"no SQLAlchemy type for the catalogue's SQL types {sorted(_missing)}")

metadata = MetaData(schema=SCHEMA)


def column_type(f: Field) -> TypeEngine:
    """The SQLAlchemy type of a catalogue field."""
    return _SQLALCHEMY[f.sql_type]()


def geometry_type(layer: Layer) -> Geometry:
    """The geoalchemy2 type of a layer's ``geom`` column (no index DDL: migrations own the schema)."""
    return Geometry(geometry_type=layer.geometry_type.upper(), srid=SRID, spatial_index=False)


def primary_key(layer: Layer) -> tuple[str, ...]:
    """The columns identifying a row: the stable ``key`` when the layer declares one, else the fields
    the key is made from (``admin_area``: its code).  The database's surrogate ``id`` is left out."""
    return ("key",) if "key" in layer.field_names else layer.key_from


def _columns(layer: Layer) -> list[Column]:
    pk = primary_key(layer)
    cols = [Column(f.name, column_type(f), primary_key=f.name in pk,
                   nullable=not (f.required or f.name in pk), comment=f.title or None, info={"field": f})
            for f in layer.fields]
    cols.append(Column("geom", geometry_type(layer), nullable=False, comment="Geometry (EPSG:4326)"))
    return cols


def table_for(layer: Layer, meta: MetaData | None = None, name: str | None = None) -> Table:
    """A ``Table`` of ``layer`` (or of a view with its columns, ``name``) in ``meta``."""
    return Table(name or layer.name, meta if meta is not None else metadata, *_columns(layer),
                 comment=layer.title, info={"layer": layer})


#: Layer name -> Table of the base table (every field; the owner's engine).
TABLES: dict[str, Table] = {name: table_for(layer) for name, layer in LAYERS.items()}

#: Layer name -> Table of its ``<layer>_visible`` view, for layers with restricted fields: what the
#: application role reads (restricted fields NULL unless the verified caller may see them).
VISIBLE: dict[str, Table] = {name: table_for(layer, name=f"{name}_visible")
                             for name, layer in LAYERS.items() if any(f.restricted for f in layer.fields)}


def readable(layer_name: str) -> Table:
    """What the application role selects from for a layer: its ``_visible`` view, else its table."""
    return VISIBLE[layer_name] if layer_name in VISIBLE else TABLES[layer_name]


def __getattr__(name: str) -> Table:
    """``tables.risk_source`` and so on: the Table of each catalogue layer."""
    try:
        return TABLES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}; layers are {sorted(TABLES)}") \
            from None


__all__ = ["TABLES", "VISIBLE", "column_type", "geometry_type", "metadata", "primary_key", "readable",
           "table_for", *TABLES]
