"""The SQLAlchemy tables generated from the catalogue match the live schema and serve geopandas."""

from __future__ import annotations

import geopandas
import pytest
import sqlalchemy
from geoalchemy2 import Geometry
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION

from layers import db, tables
from layers.catalogue import LAYERS, SCHEMA, SQL_TYPES

# The SQLAlchemy type family of each catalogue field type, written out here rather than taken from
# the module under test; both the generated and the reflected column types must belong to it.
FAMILIES: dict[str, type] = {"text": sqlalchemy.String, "int": sqlalchemy.Integer, "float": sqlalchemy.Float,
                             "bool": sqlalchemy.Boolean, "date": sqlalchemy.Date,
                             "timestamp": sqlalchemy.DateTime, "json": sqlalchemy.JSON}


def test_every_field_type_has_a_sql_and_a_sqlalchemy_type():
    assert set(SQL_TYPES) == set(FAMILIES)
    for layer in LAYERS.values():
        table = tables.TABLES[layer.name]
        assert table.schema == SCHEMA and tables.metadata.tables[f"{SCHEMA}.{layer.name}"] is table
        assert [c.name for c in table.columns] == [*layer.field_names, "geom"]
        expected_pk = ["key"] if "key" in layer.field_names else list(layer.key_from)
        assert [c.name for c in table.primary_key] == expected_pk
        for f in layer.fields:
            assert isinstance(table.c[f.name].type, FAMILIES[f.type]), (layer.name, f.name)
    assert tables.risk_source is tables.TABLES["risk_source"]
    assert isinstance(tables.river.c.geom.type, Geometry)
    with pytest.raises(AttributeError, match="risk_source"):
        tables.no_such_layer  # noqa: B018 - the attribute access is the test


def test_tables_reflect_the_live_columns(fresh_db):
    engine = db.engine(fresh_db, "owner")
    try:
        live = sqlalchemy.inspect(engine)
        for layer in LAYERS.values():
            columns = {c["name"]: c for c in live.get_columns(layer.name, schema=SCHEMA)}
            table = tables.TABLES[layer.name]
            for col in table.columns:
                assert col.name in columns, f"{layer.name}.{col.name} is not a live column"
                found = columns[col.name]["type"]
                if col.name == "geom":
                    assert isinstance(found, Geometry)
                    assert (found.geometry_type, found.srid) == (col.type.geometry_type, col.type.srid) \
                        == (layer.geometry_type.upper(), 4326)
                else:
                    family = FAMILIES[layer.field(col.name).type]
                    assert isinstance(found, family), (layer.name, col.name, found)
                    if family is sqlalchemy.DateTime:
                        assert found.timezone, (layer.name, col.name)
                    if family is sqlalchemy.Float:
                        assert isinstance(found, DOUBLE_PRECISION), (layer.name, col.name, found)
            # the Table's key identifies a row live: it is the primary key or a unique index there
            key = [c.name for c in table.primary_key]
            unique = [live.get_pk_constraint(layer.name, schema=SCHEMA)["constrained_columns"]]
            unique += [i["column_names"] for i in live.get_indexes(layer.name, schema=SCHEMA) if i["unique"]]
            unique += [u["column_names"] for u in live.get_unique_constraints(layer.name, schema=SCHEMA)]
            assert key in unique, (layer.name, key, unique)
            if layer.name in tables.VISIBLE:
                view = {c["name"] for c in live.get_columns(f"{layer.name}_visible", schema=SCHEMA)}
                assert {c.name for c in tables.VISIBLE[layer.name].columns} <= view
    finally:
        engine.dispose()


def test_read_postgis_on_a_selectable(fresh_db):
    engine = db.engine(fresh_db, "owner")
    try:
        area = tables.admin_area
        query = select(area).where(area.c.level == "city").order_by(area.c.code)
        cities = geopandas.read_postgis(query, engine, geom_col="geom")
    finally:
        engine.dispose()
    assert isinstance(cities, geopandas.GeoDataFrame)
    assert cities.crs.to_epsg() == 4326
    assert len(cities) >= 9
    assert set(cities["level"]) == {"city"} and cities["code"].is_unique
    assert "南京市" in set(cities["name"])
    assert set(cities.geom_type) <= {"MultiPolygon"} and cities.is_valid.all()
    # the region lies around Nanjing, in degrees
    minx, miny, maxx, maxy = cities.total_bounds
    assert 115 < minx < maxx < 122 and 29 < miny < maxy < 35


def test_app_role_reads_the_visible_view_not_restricted_columns(fresh_db):
    engine = db.engine(fresh_db, "app")
    try:
        with engine.connect() as conn:
            assert conn.execute(select(sqlalchemy.func.count()).select_from(
                tables.readable("risk_source"))).scalar_one() == 0
            assert tables.readable("admin_area") is tables.admin_area
            with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
                conn.execute(select(tables.risk_source.c.contact))
    finally:
        engine.dispose()
