"""Migration 0010: the observation store's schema, its row-level security and the GB 3838 classes."""

from __future__ import annotations

import psycopg
import pytest

from layers import db
from layers.substances import CLASSES, water_limits
from tests.observations.conftest import CHUZHOU, NANJING


def _app(settings, key: str) -> psycopg.Connection:
    conn = db.connect(settings, "app")
    ctx = conn.execute("SELECT context FROM riskatlas.authenticate(%s)", (key,)).fetchone()["context"]
    conn.execute("SELECT set_config('riskatlas.ctx', %s, false)", (ctx,))
    return conn


def test_the_schema_is_partitioned_by_month_with_brin_and_reference_tables(fresh_db):
    with db.connect(fresh_db) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'riskatlas.observation'::regclass").fetchone()
        assert kind["relkind"] == "p"
        assert conn.execute("SELECT riskatlas.ensure_observation_partitions('2025-11-15', '2026-02-01') AS n"
                            ).fetchone()["n"] == 4
        assert conn.execute("SELECT riskatlas.ensure_observation_partitions('2025-12-01', '2026-01-31') AS n"
                            ).fetchone()["n"] == 0  # those exist
        parts = [r["p"] for r in conn.execute(
            """SELECT c.relname AS p FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'riskatlas.observation'::regclass ORDER BY 1""").fetchall()]
        assert parts == ["observation_y2025m11", "observation_y2025m12", "observation_y2026m01", "observation_y2026m02"]
        am = conn.execute("""SELECT a.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                             JOIN pg_am a ON a.oid = c.relam
                             WHERE i.indrelid = 'riskatlas.observation_y2026m01'::regclass""").fetchall()
        assert {"brin", "btree"} <= {r["amname"] for r in am}
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="at most 600 months"):
            conn.execute("SELECT riskatlas.ensure_observation_partitions('1900-01-01', '2026-01-01')")
        conn.rollback()
        n = conn.execute("SELECT count(*) AS n FROM riskatlas.obs_parameter WHERE medium = 'air'").fetchone()["n"]
        assert n == 7
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.gb3838_limit").fetchone()["n"] == len(water_limits())


def test_a_steward_writes_only_their_own_citys_stations(stations):
    settings, keys = stations
    with db.connect(settings) as conn:
        conn.execute("SELECT riskatlas.ensure_observation_partitions('2026-01-01', '2026-01-01')")
        conn.commit()
    with _app(settings, keys["nj"]) as conn:
        conn.execute("""INSERT INTO riskatlas.observation (station_key, parameter, observed_at, value, owner_city)
                        VALUES ('NJ-W', 'nh3n', '2026-01-05 08:00+08', 0.8, %s)""", (NANJING,))
        conn.commit()
        # another city's station under its own city code: row-level security refuses it
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("""INSERT INTO riskatlas.observation (station_key, parameter, observed_at, value, owner_city)
                            VALUES ('CZ-W', 'nh3n', '2026-01-05 08:00+08', 0.8, %s)""", (CHUZHOU,))
        conn.rollback()
        # another city's station claimed as Nanjing's: the owner check refuses it
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="CZ-W is owned by city 341100"):
            conn.execute("""INSERT INTO riskatlas.observation (station_key, parameter, observed_at, value, owner_city)
                            VALUES ('CZ-W', 'nh3n', '2026-01-05 08:00+08', 0.8, %s)""", (NANJING,))
        conn.rollback()
        # a correction keeps the old value with who made it
        conn.execute("""UPDATE riskatlas.observation SET value = 1.9 WHERE station_key = 'NJ-W'""")
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO riskatlas.observation_history (station_key, parameter, observed_at, old_value, "
                         "old_flag, new_value, new_flag, changed_by) VALUES ('x','y',now(),1,'valid',1,'valid','z')")
        conn.rollback()
    with db.connect(settings, "app") as anon:  # no key: reads everything, writes nothing
        assert anon.execute("SELECT count(*) AS n FROM riskatlas.observation").fetchone()["n"] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            anon.execute("""INSERT INTO riskatlas.observation (station_key, parameter, observed_at, value, owner_city)
                            VALUES ('NJ-W', 'nh3n', '2026-01-06 08:00+08', 0.8, %s)""", (NANJING,))
    with db.connect(settings) as conn:
        h = conn.execute("SELECT old_value, new_value, changed_by, acting_city FROM riskatlas.observation_history"
                         ).fetchall()
        assert h == [{"old_value": 0.8, "new_value": 1.9, "changed_by": "nj", "acting_city": NANJING}]
        latest = conn.execute("SELECT station_key, value FROM riskatlas.observation_latest").fetchall()
        assert latest == [{"station_key": "NJ-W", "value": 1.9}]
    with _app(settings, keys["boss"]) as conn:  # an administrator writes any city's, but never a false owner
        conn.execute("""INSERT INTO riskatlas.observation (station_key, parameter, observed_at, value, owner_city)
                        VALUES ('CZ-W', 'nh3n', '2026-01-05 08:00+08', 0.3, %s)""", (CHUZHOU,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="owned by city 341100"):
            conn.execute("""INSERT INTO riskatlas.observation (station_key, parameter, observed_at, value, owner_city)
                            VALUES ('CZ-W', 'nh3n', '2026-01-06 08:00+08', 0.3, %s)""", (NANJING,))


def _expected_class(limit, value: float) -> int:
    for i, lim in enumerate(limit.limits, start=1):
        if (value <= lim) if limit.kind == "max" else (value >= lim):
            return i
    return 6


def test_water_class_follows_the_gb3838_table(fresh_db):
    limits = water_limits()
    with db.connect(fresh_db) as conn:
        for factor, limit in limits.items():
            for i, lim in enumerate(limit.limits):
                for value in (lim, lim * 1.0001 if limit.kind == "max" else lim * 0.9999):
                    got = conn.execute("SELECT riskatlas.water_class(%s, %s, %s) AS c",
                                       (factor.removesuffix("-lake"), value, factor.endswith("-lake"))).fetchone()["c"]
                    assert got == _expected_class(limit, value), (factor, CLASSES[i], value)
        q = "SELECT riskatlas.water_class(%s, %s) AS c"
        assert conn.execute(q, ("nh3n", 1.0)).fetchone()["c"] == 3        # parameter code, at class III's limit
        assert conn.execute(q, ("NH3-N", 1.01)).fetchone()["c"] == 4
        assert conn.execute(q, ("nh3n", 2.5)).fetchone()["c"] == 6        # worse than V
        assert conn.execute(q, ("do", 5.5)).fetchone()["c"] == 3          # DO is a minimum
        assert conn.execute(q, ("do", 1.0)).fetchone()["c"] == 6
        assert conn.execute(q, ("cod", 15)).fetchone()["c"] == 1          # equal limits: the better class
        assert conn.execute(q, ("tp", 0.04)).fetchone()["c"] == 2         # river limits
        assert conn.execute("SELECT riskatlas.water_class('tp', 0.04, true) AS c").fetchone()["c"] == 3  # lake
        assert conn.execute(q, ("ph", 7.0)).fetchone()["c"] is None       # no class limit
        assert conn.execute(q, ("pm25", 70.0)).fetchone()["c"] is None


def test_a_delete_leaves_the_latest_values_true(stations):
    """observation_latest after the owner deletes rows: the newest remaining value, or nothing."""
    settings, _ = stations
    with db.connect(settings) as conn:
        conn.execute("SELECT riskatlas.ensure_observation_partitions('2026-01-01', '2026-02-28')")
        conn.execute("""INSERT INTO riskatlas.observation (station_key, parameter, observed_at, value, owner_city)
                        VALUES ('NJ-W', 'nh3n', '2026-01-05 08:00+08', 0.8, %(nj)s),
                               ('NJ-W', 'nh3n', '2026-02-05 08:00+08', 1.6, %(nj)s),
                               ('NJ-W', 'codmn', '2026-02-05 08:00+08', 4.0, %(nj)s),
                               ('CZ-W', 'nh3n', '2026-02-05 08:00+08', 0.4, %(cz)s)""",
                     {"nj": NANJING, "cz": CHUZHOU})
        latest = "SELECT station_key, parameter, value FROM riskatlas.observation_latest ORDER BY 1, 2"
        assert [r["value"] for r in conn.execute(latest).fetchall()] == [0.4, 4.0, 1.6]
        # the February rows of Nanjing (a wrong batch): NH3-N falls back to January, CODMn has none left
        conn.execute("DELETE FROM riskatlas.observation WHERE station_key = 'NJ-W' AND observed_at >= '2026-02-01'")
        assert conn.execute(latest).fetchall() == [
            {"station_key": "CZ-W", "parameter": "nh3n", "value": 0.4},
            {"station_key": "NJ-W", "parameter": "nh3n", "value": 0.8}]
        conn.execute("DELETE FROM riskatlas.observation")
        assert conn.execute(latest).fetchall() == []
