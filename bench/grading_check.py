"""Grading check: the demo region's grades, levels and grading history, dumped to compare two versions.

    .venv/bin/python -m bench.grading_check --dump before.json
    .venv/bin/python -m bench.grading_check --dump after.json --compare before.json

Builds (once) a database ``riskatlas_grading_check_tpl`` holding the demo region, its grades cleared,
and for each check clones it to ``riskatlas_grading_check``.  There it grades every source (a first
grade), then changes some inventories as a steward would (M scores raised, a substance added, a line
made bad, an M removed) and grades the stale sources (regrades: changed levels and their history),
then grades every source again (nothing may change).  The dump holds, after each step, every
``risk_grade`` row (all columns but the run and its time), the grade columns of every ``risk_source``
row, the grading's ``row_history`` rows (times and ids left out) and the run's report (without its
seconds).  ``--compare`` lists every difference with an earlier dump and exits 1 if there is one.
Not a test: a tool to show that a change to the grading code changed no result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from psycopg import sql

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings
from services.grading import grade_sources

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "riskatlas_grading_check_tpl"
DB_NAME = "riskatlas_grading_check"
SOURCE_COLUMNS = ("q_value", "q_band", "air_level", "water_level", "risk_level", "grade_label", "grade_status")


def template(base: DatabaseSettings) -> None:
    """The demo region, loaded and with every grade cleared (created on first use)."""
    from etl.demo import load_demo

    with db.connect(base.with_db("postgres")) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE,)).fetchone()
    if exists:
        return
    s = base.with_db(TEMPLATE)
    cluster.bootstrap(base, TEMPLATE)
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
    load_demo(s, ROOT / ".riskatlas" / "bench" / "grading_check_demo")
    with db.connect(s) as conn:
        conn.execute("TRUNCATE riskatlas.risk_grade, riskatlas.grade_run")
        conn.execute("ALTER TABLE riskatlas.risk_source DISABLE TRIGGER USER")
        conn.execute("UPDATE riskatlas.risk_source SET q_value = NULL, q_band = NULL, air_level = NULL, "
                     "water_level = NULL, risk_level = NULL, grade_label = NULL, grade_status = NULL")
        conn.execute("ALTER TABLE riskatlas.risk_source ENABLE TRIGGER USER")
        conn.execute("TRUNCATE riskatlas.row_history CASCADE")
        conn.execute("TRUNCATE riskatlas.tile_change")
        conn.commit()


def edit_inventories(s: DatabaseSettings) -> None:
    """Change some sources as a steward would (through the ordinary triggers, as an administrator)."""
    with db.connect(s) as conn, conn.transaction():
        db.set_actor(conn, user="grading-check", role="admin")
        conn.execute("""UPDATE riskatlas.risk_source SET m_score = least(100, coalesce(m_score, 20) + 35),
                               updated_at = now()
                        WHERE id % 5 = 0""")
        conn.execute("""UPDATE riskatlas.risk_source
                        SET substances = coalesce(substances, '[]') || '[{"name": "benzene", "cas": "71-43-2",
                                                                          "quantity_t": 400}]'::jsonb,
                            updated_at = now()
                        WHERE id % 11 = 0""")
        conn.execute("""UPDATE riskatlas.risk_source
                        SET substances = coalesce(substances, '[]') || '[{"name": "x", "quantity_t": -1}]'::jsonb,
                            updated_at = now()
                        WHERE id % 97 = 0""")
        conn.execute("""UPDATE riskatlas.risk_source SET m_score = NULL, m_air = NULL, m_water = NULL,
                               updated_at = now()
                        WHERE id % 13 = 0""")


def _strip(row: Any) -> Any:
    """A stored row without its times (they differ from run to run)."""
    if isinstance(row, dict):
        return {k: v for k, v in row.items() if not k.endswith("_at")}
    return row


def snapshot(s: DatabaseSettings, report: Any) -> dict[str, Any]:
    """Grades, levels, grading history and the report, in a form that compares across runs."""
    with db.connect(s) as conn:
        grades = conn.execute("""SELECT to_jsonb(g) - 'run_id' - 'computed_at' AS g FROM riskatlas.risk_grade g
                                 ORDER BY source_key""").fetchall()
        sources = conn.execute(sql.SQL("SELECT key, {} FROM riskatlas.risk_source ORDER BY key").format(
            sql.SQL(", ").join(map(sql.Identifier, SOURCE_COLUMNS)))).fetchall()
        history = conn.execute("""SELECT layer, key, op, old_row, new_row, changed_by, acting_role, acting_city,
                                         batch_id, ST_AsText(geom) AS geom, ST_AsText(geom_m, 3) AS geom_m, changed
                                  FROM riskatlas.row_history WHERE changed_by = 'riskatlas-grade'
                                  ORDER BY layer, key, id""").fetchall()
        tiles = conn.execute("""SELECT count(*) AS n FROM riskatlas.tile_change""").fetchone()["n"]
    rep = report.to_dict()
    rep.pop("seconds"), rep.pop("run_id")
    return {"report": rep, "grades": {r["g"]["source_key"]: r["g"] for r in grades},
            "sources": {r["key"]: {c: r[c] for c in SOURCE_COLUMNS} for r in sources},
            "history": [{**h, "old_row": _strip(h["old_row"]), "new_row": _strip(h["new_row"])} for h in history],
            "tile_changes": int(tiles)}


def run_check(base: DatabaseSettings) -> dict[str, Any]:
    """The three steps on a fresh clone of the template; their snapshots."""
    template(base)
    cluster.drop_database(base, DB_NAME)
    cluster.clone_database(base, TEMPLATE, DB_NAME)
    s = base.with_db(DB_NAME)
    out = {"first": snapshot(s, grade_sources(s, scope="all"))}
    edit_inventories(s)
    out["regrade"] = snapshot(s, grade_sources(s, scope="stale"))
    out["again"] = snapshot(s, grade_sources(s, scope="all"))
    return out


def differences(before: Any, after: Any, where: str = "", limit: int = 40,
                ignore: frozenset[str] = frozenset()) -> list[str]:
    """Where ``after`` differs from ``before``, as readable lines (at most ``limit``); keys named in
    ``ignore`` are not compared."""
    out: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for k in sorted(set(before) | set(after), key=str):
            if k in ignore:
                continue
            if k not in before or k not in after:
                out.append(f"{where}/{k}: only {'after' if k in after else 'before'}")
            else:
                out += differences(before[k], after[k], f"{where}/{k}", limit - len(out), ignore)
            if len(out) >= limit:
                break
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after)):
            out += differences(b, a, f"{where}[{i}]", limit - len(out), ignore)
            if len(out) >= limit:
                break
    elif before != after:
        out.append(f"{where}: {json.dumps(before, ensure_ascii=False)[:200]} -> "
                   f"{json.dumps(after, ensure_ascii=False)[:200]}")
    return out[:limit]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, required=True, help="write the snapshots here (JSON)")
    ap.add_argument("--compare", type=Path, help="an earlier dump to compare with")
    ap.add_argument("--ignore", default="", help="comma-separated keys not to compare (e.g. geom,geom_m,changed)")
    ap.add_argument("--no-run", action="store_true", help="compare the dump already written, run nothing")
    args = ap.parse_args()
    if not args.no_run:
        base = DatabaseSettings(database_url=None, state_dir=ROOT / ".riskatlas")
        cluster.start(base)
        args.dump.write_text(json.dumps(run_check(base), ensure_ascii=False, indent=1, sort_keys=True, default=str),
                             encoding="utf-8")
    got = json.loads(args.dump.read_text(encoding="utf-8"))
    for step, snap in got.items():
        r = snap["report"]
        print(f"{step}: {r['sources']} sources, {r['graded']} graded, {r['pending']} pending, {r['rejected']} "
              f"rejected, {r['changed']} changed; {len(snap['history'])} history rows")
    if args.compare:
        before = json.loads(args.compare.read_text(encoding="utf-8"))
        after = json.loads(args.dump.read_text(encoding="utf-8"))
        diff = differences(before, after, ignore=frozenset(k for k in args.ignore.split(",") if k))
        print("identical" if not diff else "differences:\n" + "\n".join(diff))
        sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
