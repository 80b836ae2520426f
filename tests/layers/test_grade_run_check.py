"""risk_grade's run (migration 0024): checked once per statement instead of a foreign key's check per row,
with the same guarantees: a grade names an existing run, and a run named by a grade cannot go."""

from __future__ import annotations

import psycopg
import pytest

from layers import db
from layers.settings import DatabaseSettings


def _grade(conn: psycopg.Connection, run_id: int, key: str = "G-1") -> None:
    conn.execute("""INSERT INTO riskatlas.risk_grade (source_key, status, run_id, computed_at)
                    VALUES (%s, 'rejected', %s, now())""", (key, run_id))


def test_a_grade_must_name_an_existing_run_and_a_named_run_stays(fresh_db: DatabaseSettings) -> None:
    with db.connect(fresh_db) as conn:
        run, other = (conn.execute("INSERT INTO riskatlas.grade_run (scope, tables_sha256) VALUES ('all', 'test') "
                                   "RETURNING id").fetchone()["id"] for _ in range(2))
        _grade(conn, run)
        conn.execute("""INSERT INTO riskatlas.risk_grade (source_key, status, run_id, computed_at)
                        SELECT 'G-' || i, 'rejected', %s, now() FROM generate_series(2, 500) i""", (run,))
        conn.commit()

        with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"grade run {run + 1000}"):
            _grade(conn, run + 1000, "G-x")
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"grade run {run + 1000}"):
            conn.execute("UPDATE riskatlas.risk_grade SET run_id = %s WHERE source_key = 'G-7'", (run + 1000,))
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"grade run {run} is still named"):
            conn.execute("DELETE FROM riskatlas.grade_run WHERE id = %s", (run,))
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"grade run {run} is still named"):
            conn.execute("UPDATE riskatlas.grade_run SET id = DEFAULT WHERE id = %s", (run,))
        conn.rollback()

        # what stays allowed: a run's other fields, a run no grade names, moving grades to another run
        conn.execute("UPDATE riskatlas.grade_run SET finished_at = now() WHERE id = %s", (run,))
        conn.execute("UPDATE riskatlas.risk_grade SET run_id = %s", (other,))
        conn.execute("DELETE FROM riskatlas.grade_run WHERE id = %s", (run,))
        conn.commit()
        row = conn.execute("SELECT count(*) AS n, min(run_id) AS lo, max(run_id) AS hi FROM riskatlas.risk_grade"
                           ).fetchone()
        assert (row["n"], row["lo"], row["hi"]) == (500, other, other)
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.grade_run").fetchone()["n"] == 1
