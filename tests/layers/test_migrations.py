"""Migrations on an empty and on a populated database; the catalogue agrees with the schema."""

from __future__ import annotations

import re

import pytest

from layers import db, migrate
from layers.catalogue import LAYERS, SCHEMA

PG_TYPES = {"text": {"text"}, "int": {"integer", "bigint"}, "float": {"double precision"}, "bool": {"boolean"},
            "json": {"jsonb"}, "date": {"date"}, "timestamp": {"timestamp with time zone"}}


def test_upgrade_on_empty_database_creates_every_layer(empty_db):
    with db.connect(empty_db) as conn:
        ran = migrate.upgrade(conn, empty_db)
        assert ran == [m.version for m in migrate.available()]
        assert migrate.upgrade(conn, empty_db) == []  # a second run has nothing to do
        tables = {r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (SCHEMA,)).fetchall()}
    assert set(LAYERS) <= tables
    assert {"load_batch", "load_reject", "row_history", "raster_layer", "admin_piece"} <= tables


def test_upgrade_on_populated_database_keeps_the_data(empty_db):
    with db.connect(empty_db) as conn:
        migrate.upgrade(conn, empty_db, target=1)
        conn.execute("""INSERT INTO riskatlas.admin_area (code, name, level, geom) VALUES ('320100', '南京市', 'city',
            ST_Multi(ST_MakeEnvelope(118.3, 31.2, 119.3, 32.6, 4326)))""")
        conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, city_code, geom)
            VALUES ('K1', '老企业', 'chemical', '320100', ST_SetSRID(ST_MakePoint(118.7, 32.0), 4326))""")
        conn.commit()
        assert migrate.upgrade(conn, empty_db) == [m.version for m in migrate.available()][1:]
        row = conn.execute("SELECT name, city_code FROM riskatlas.risk_source WHERE key = 'K1'").fetchone()
        assert row == {"name": "老企业", "city_code": "320100"}
        # and the newer migration's machinery applies to the old rows (history on update)
        conn.execute("UPDATE riskatlas.risk_source SET name = '新名' WHERE key = 'K1'")
        assert conn.execute("SELECT old_row->>'name' AS n FROM riskatlas.row_history").fetchone()["n"] == "老企业"


def test_an_edited_migration_is_refused(empty_db):
    with db.connect(empty_db) as conn:
        migrate.upgrade(conn, empty_db)
        changed = [migrate.Migration(m.version, m.name, m.sql + "\n-- edited") for m in migrate.available()]
        with pytest.raises(migrate.MigrationError, match="edited after it was applied"):
            migrate.upgrade(conn, empty_db, migrations=changed)


def test_catalogue_fields_exist_with_their_types_and_geometry(empty_db):
    with db.connect(empty_db) as conn:
        migrate.upgrade(conn, empty_db)
        for layer in LAYERS.values():
            cols = {r["column_name"]: r["data_type"] for r in conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s", (SCHEMA, layer.name)).fetchall()}
            for f in layer.fields:
                assert f.name in cols, f"{layer.name}.{f.name} missing from the schema"
                assert cols[f.name] in PG_TYPES[f.type], f"{layer.name}.{f.name} is {cols[f.name]}"
            geom = conn.execute("SELECT type, srid FROM geometry_columns WHERE f_table_schema = %s AND "
                                "f_table_name = %s AND f_geometry_column = 'geom'", (SCHEMA, layer.name)).fetchone()
            assert geom == {"type": layer.geometry_type.upper(), "srid": 4326}
            gist = conn.execute("SELECT count(*) AS n FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
                                "AND indexdef ILIKE '%%USING gist (geom)%%'", (SCHEMA, layer.name)).fetchone()
            assert gist["n"] == 1, f"{layer.name} has no GiST index on geom"
            if layer.geometry_type == "Point":
                geog = conn.execute("SELECT count(*) AS n FROM pg_indexes WHERE schemaname = %s AND tablename = %s"
                                    " AND indexdef ILIKE '%%geography%%'", (SCHEMA, layer.name)).fetchone()
                assert geog["n"] == 1, f"{layer.name} lacks the geography index metric queries use"


def test_constraints_refuse_bad_rows(empty_db):
    import psycopg

    with db.connect(empty_db) as conn:
        migrate.upgrade(conn, empty_db)
        conn.commit()
        bad = [
            "INSERT INTO riskatlas.risk_source (key, name, category, geom) VALUES ('a', 'n', 'rocket', "
            "ST_SetSRID(ST_MakePoint(118, 32), 4326))",
            "INSERT INTO riskatlas.risk_source (key, name, category, geom) VALUES ('a', 'n', 'other', "
            "ST_SetSRID(ST_MakePoint(118, 32), 3857))",
            "INSERT INTO riskatlas.risk_source (key, name, category, city_code, geom) VALUES ('a', 'n', 'other', "
            "'999999', ST_SetSRID(ST_MakePoint(118, 32), 4326))",
            "INSERT INTO riskatlas.protected_area (key, name, kind, geom) VALUES ('p', 'n', 'wetland', "
            "ST_Multi(ST_GeomFromText('POLYGON((0 0,1 1,1 0,0 1,0 0))', 4326)))",
        ]
        for sql in bad:
            with pytest.raises(psycopg.Error):
                with conn.transaction():
                    conn.execute(sql)


def test_catalogue_domains_are_checked_by_the_database(empty_db):
    with db.connect(empty_db) as conn:
        migrate.upgrade(conn, empty_db)
        for layer in LAYERS.values():
            checks = [r["def"] for r in conn.execute(
                "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = %s::regclass "
                "AND contype = 'c'", (layer.table,)).fetchall()]
            for f in layer.fields:
                if not f.domain:
                    continue
                mine = [c for c in checks if f"({f.name} " in c or f"({f.name})" in c]
                allowed = [set(re.findall(r"'([^']*)'::text", c)) for c in mine]
                assert set(f.domain) in allowed, (
                    f"{layer.name}.{f.name}: no CHECK allows exactly the domain {f.domain}: {mine}")


def test_q_band_is_backfilled_from_q_value_and_follows_it(empty_db):
    """0006: the band of every stored Q, without row history; later writers of q_value get its band."""
    import psycopg

    with db.connect(empty_db) as conn:
        migrate.upgrade(conn, empty_db, target=4)
        conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, q_value, geom)
            SELECT 'K' || i, 'n', 'other', q, ST_SetSRID(ST_MakePoint(118.7, 32.0), 4326)
            FROM unnest(ARRAY[NULL, 0, 0.999, 1, 9.99, 10, 99.5, 100, 2500]::float8[]) WITH ORDINALITY AS t(q, i)""")
        conn.commit()
        migrate.upgrade(conn, empty_db)
        got = conn.execute("SELECT q_value, q_band FROM riskatlas.risk_source ORDER BY key::text COLLATE \"C\"")
        bands = {r["q_value"]: r["q_band"] for r in got.fetchall()}
        assert bands == {None: None, 0: "Q0", 0.999: "Q0", 1: "Q1", 9.99: "Q1", 10: "Q2", 99.5: "Q2", 100: "Q3",
                         2500: "Q3"}
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.row_history").fetchone()["n"] == 0
        conn.execute("UPDATE riskatlas.risk_source SET q_value = 12.5 WHERE key = 'K2'")  # a writer without a band
        conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, q_value, geom)
                        VALUES ('N', 'n', 'other', 3.5, ST_SetSRID(ST_MakePoint(118.7, 32.0), 4326))""")
        rows = conn.execute("SELECT key, q_band FROM riskatlas.risk_source WHERE key IN ('K2', 'N') ORDER BY key")
        assert [(r["key"], r["q_band"]) for r in rows.fetchall()] == [("K2", "Q2"), ("N", "Q1")]
        conn.commit()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE riskatlas.risk_source SET q_band = 'Q4' WHERE key = 'N'")


def test_grades_by_medium_upgrade_a_graded_database(empty_db):
    """0007 on a database at 0006 whose grades the application role reads through risk_grade_visible:
    the view is made again with the new columns, graded sources become 'graded', M stays where it was."""
    with db.connect(empty_db) as conn:
        migrate.upgrade(conn, empty_db, target=6)
        run = conn.execute("""INSERT INTO riskatlas.grade_run (scope, tables_sha256) VALUES ('all', 'x')
                              RETURNING id""").fetchone()["id"]
        conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, m_score, q_value, risk_level, geom)
                        VALUES ('G', 'n', 'other', 40, 3.0, 'larger', ST_SetSRID(ST_MakePoint(118.7, 32.0), 4326)),
                               ('U', 'n', 'other', NULL, NULL, NULL, ST_SetSRID(ST_MakePoint(118.7, 32.0), 4326))""")
        conn.execute("""INSERT INTO riskatlas.risk_grade (source_key, run_id, status, m_score, m_band)
                        VALUES ('G', %s, 'graded', 40, 'M2')""", (run,))
        conn.commit()
        assert 7 in migrate.upgrade(conn, empty_db)
        got = conn.execute("SELECT key, m_score, m_air, m_water, grade_status FROM riskatlas.risk_source ORDER BY key")
        assert [tuple(r.values()) for r in got.fetchall()] == [("G", 40, None, None, "graded"),
                                                              ("U", None, None, None, None)]
        cols = {r["column_name"] for r in conn.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'riskatlas' AND table_name = 'risk_grade_visible'""").fetchall()}
        assert {"m_air", "m_water", "m_air_band", "m_water_band", "m_note", "level_min", "level_max"} <= cols
        assert "m_band" not in cols
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.row_history WHERE op <> 'insert'").fetchone()["n"] == 0
