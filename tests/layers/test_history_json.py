"""riskatlas.row_jsonb_sql (migration 0022): the JSON of a row, built without PostGIS's per-value catalogue
lookup, is identical to to_jsonb(row) for every table of the schema, and the history keeps writing it."""

from __future__ import annotations

from psycopg import sql

from layers import db


def _tables(conn) -> list[str]:
    return [r["relname"] for r in conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
           WHERE s.nspname = 'riskatlas' AND c.relkind IN ('r', 'p') ORDER BY 1""").fetchall()]


def test_the_json_of_every_row_of_the_demo_is_to_jsonb_s(demo_db):
    with db.connect(demo_db) as conn:
        compared = 0
        with_geometry = 0
        for table in _tables(conn):
            rel = sql.Identifier("riskatlas", table)
            expr = conn.execute("SELECT riskatlas.row_jsonb_sql(%s::regclass, 't') AS e",
                                (f"riskatlas.{table}",)).fetchone()["e"]
            got = conn.execute(sql.SQL("""SELECT count(*) AS n, count(*) FILTER (WHERE to_jsonb(t) IS DISTINCT FROM
                                                                                  {expr}) AS differ
                                          FROM (SELECT * FROM {rel} LIMIT 3000) t""").format(
                expr=sql.SQL(expr), rel=rel)).fetchone()
            assert got["differ"] == 0, table
            compared += got["n"]
            with_geometry += got["n"] if "ST_AsGeoJSON" in expr else 0
        assert compared > 10_000 and with_geometry > 5_000


def test_geometries_of_every_kind_and_srid_and_wide_tables(fresh_db):
    with db.connect(fresh_db) as conn:
        conn.execute("""CREATE TABLE riskatlas.json_probe (id int, g geometry, h geometry(PointZ, 4549), k text,
                        w double precision)""")
        conn.execute("""INSERT INTO riskatlas.json_probe VALUES
            (1, 'SRID=4326;POINT(118.123456789012345 32.1)', 'SRID=4549;POINT Z (500000.123 3500000 12)', 'a', 0.1),
            (2, 'LINESTRING(0 0, 1 1)', NULL, NULL, NULL),
            (3, 'SRID=4326;MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((2 2, 3 2, 3 3, 2 2)))', NULL, '中文', -1e300),
            (4, 'SRID=4326;GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(1 2, 3 4))', NULL, 'x', 1),
            (5, 'SRID=4326;POINT EMPTY', NULL, 'e', 2), (6, NULL, NULL, NULL, NULL)""")
        for i in range(60):  # more columns than one jsonb_build_object takes
            conn.execute(sql.SQL("ALTER TABLE riskatlas.json_probe ADD COLUMN {} int DEFAULT {}").format(
                sql.Identifier(f"c{i}"), sql.Literal(i)))
        expr = conn.execute("SELECT riskatlas.row_jsonb_sql('riskatlas.json_probe'::regclass, 't') AS e"
                            ).fetchone()["e"]
        assert expr.count("jsonb_build_object") == 2
        rows = conn.execute(sql.SQL("SELECT to_jsonb(t) AS a, {} AS b FROM riskatlas.json_probe t ORDER BY id").format(
            sql.SQL(expr))).fetchall()
        assert len(rows) == 6 and all(r["a"] == r["b"] for r in rows)
        assert rows[0]["b"]["g"]["crs"]["properties"]["name"] == "EPSG:4326" and "crs" not in rows[1]["b"]["g"]
        conn.rollback()


def test_the_history_of_a_load_and_an_edit_is_written_as_before(demo_copy):
    with db.connect(demo_copy) as conn:
        conn.execute("UPDATE riskatlas.risk_source SET name = name || '（改）', geom = ST_Translate(geom, 0.001, 0) "
                     "WHERE key IN (SELECT key FROM riskatlas.risk_source ORDER BY key LIMIT 5)")
        rows = conn.execute("""SELECT h.new_row, to_jsonb(s) AS now, h.changed FROM riskatlas.row_history h
                               JOIN riskatlas.risk_source s ON s.key = h.key
                               WHERE h.layer = 'risk_source' AND h.op = 'update' ORDER BY h.id DESC LIMIT 5""").fetchall()
        assert len(rows) == 5
        for r in rows:
            assert r["new_row"] == r["now"] and {"name", "geom"} <= set(r["changed"])
        conn.rollback()


def test_the_history_notes_no_tile_changes(fresh_db):
    """The history is no layer: a history row notes no tile change (migration 0022)."""
    with db.connect(fresh_db) as conn:
        triggers = conn.execute("""SELECT tgname FROM pg_trigger WHERE tgrelid = 'riskatlas.row_history'::regclass
                                   AND NOT tgisinternal""").fetchall()
        assert not [t for t in triggers if "tiles" in t["tgname"]]
        on_layers = conn.execute("""SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = 'riskatlas.risk_source'::regclass
                                    AND tgname LIKE '%tiles%'""").fetchone()["n"]
        assert on_layers == 4
