"""The demo's synthetic joint Nanjing–Chuzhou task: planned on the sites flagged near their border, once."""

from __future__ import annotations

from layers import db
from services.inspections.demo import TITLE, plan_demo_task
from tests.inspections.conftest import CHUZHOU, NANJING


def test_the_demo_plans_one_labelled_joint_task_on_border_sites(inspection_db):
    settings, _ = inspection_db
    with db.connect(settings) as conn:
        first = plan_demo_task(conn)
        again = plan_demo_task(conn)
        task = conn.execute("SELECT * FROM riskatlas.inspection_task WHERE id = %s", (first["task_id"],)).fetchone()
        recs = conn.execute("SELECT synthetic, far, distance_m FROM riskatlas.inspection_record WHERE task_id = %s",
                            (task["id"],)).fetchall()
        case = conn.execute("SELECT owner_city, cities, status FROM riskatlas.enforcement_case WHERE id = %s",
                            (first["case_id"],)).fetchone()
        conn.rollback()
    assert first["created"] and not again["created"] and again["task_id"] == first["task_id"]
    assert task["title"] == TITLE and "合成" in task["title"] and task["synthetic"] and task["joint"]
    assert task["cities"] == [NANJING, CHUZHOU] and task["site_keys"] == ["CZ-CHEM"]
    assert [(r["synthetic"], r["far"]) for r in recs] == [(True, False)] and abs(recs[0]["distance_m"] - 80) < 1
    assert (case["owner_city"], case["cities"], case["status"]) == (CHUZHOU, [NANJING, CHUZHOU], "open")
