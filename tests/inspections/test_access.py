"""Who may do what with inspections, enforced by PostgreSQL: role × action × city, on connections of the
application role presenting contexts the database signed (each action rolled back after it is tried)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import psycopg
import pytest

from layers import db
from tests.inspections.conftest import CHUZHOU, MAANSHAN, NANJING

ACTORS = {"nj": ("steward", NANJING), "cz": ("steward", CHUZHOU), "nj.insp": ("inspector", NANJING),
          "cz.insp": ("inspector", CHUZHOU), "mas.insp": ("inspector", MAANSHAN), "ana": ("analyst", None),
          "boss": ("admin", None), "anonymous": ("public", None)}


@pytest.fixture(scope="module")
def seeded(inspection_db):
    """A Nanjing-only task (nj.insp assigned), a record with a finding at each of the Nanjing and Chuzhou
    sites, made by the administrator's batch (the owner)."""
    settings, _ = inspection_db
    with db.connect(settings) as conn:
        task = conn.execute("""INSERT INTO riskatlas.inspection_task (title, lead_city, cities, site_keys, starts_on,
                                   ends_on, template, template_version, inspectors)
                               VALUES ('南京自查', %s, ARRAY[%s], ARRAY['NJ-CHEM'], current_date, current_date + 5,
                                       'chemical', 1, ARRAY['nj.insp']) RETURNING id""", (NANJING, NANJING)).fetchone()["id"]
        findings = {}
        for site, lon, lat in (("NJ-CHEM", 118.6301, 32.0601), ("CZ-CHEM", 118.3101, 32.3001)):
            cid = str(uuid.uuid4())
            rid = conn.execute("""INSERT INTO riskatlas.inspection_record (key, client_id, site_key, inspector, template,
                                      template_version, position, device_time)
                                  VALUES (%s, %s::uuid, %s, '', 'chemical', 1, ST_SetSRID(ST_MakePoint(%s, %s), 4326),
                                          now()) RETURNING id""", (cid, cid, site, lon, lat)).fetchone()["id"]
            findings[site] = conn.execute("""INSERT INTO riskatlas.inspection_finding (key, record_id, ordinal, kind,
                                                 severity) VALUES (%s, %s, 1, 'leak', 'high') RETURNING id""",
                                          (cid + ":1", rid)).fetchone()["id"]
        conn.commit()
    return settings, task, findings


@contextmanager
def acting(settings, who):
    """A connection of the application role presenting ``who``'s signed context (none for the public)."""
    role, city = ACTORS[who]
    with db.connect(settings) as owner:
        ctx = None if role == "public" else owner.execute(
            "SELECT riskatlas.issue_context(%s, %s, %s) AS c", (who, role, city)).fetchone()["c"]
    with db.connect(settings, "app") as conn:
        if ctx:
            conn.execute("SELECT set_config('riskatlas.ctx', %s, false)", (ctx,))
        yield conn


def _record(conn, site, task=None):
    cid = str(uuid.uuid4())
    conn.execute("""INSERT INTO riskatlas.inspection_record (key, client_id, task_id, site_key, inspector, template,
                        template_version, position, device_time)
                    VALUES (%s, %s::uuid, %s, %s, '', 'chemical', 1, ST_SetSRID(ST_MakePoint(118.63, 32.06), 4326),
                            now())""", (cid, cid, task, site))


def _count(conn, sql, *args):
    return conn.execute(sql, args).fetchone()["n"]


def _try(settings, who, action, seeded_data):
    """Whether ``who`` may do ``action`` (writes: the statement passes; reads: the row is visible)."""
    _, task, findings = seeded_data
    with acting(settings, who) as conn:
        try:
            if action == "plan a Nanjing task":
                conn.execute("""INSERT INTO riskatlas.inspection_task (title, lead_city, cities, site_keys, starts_on,
                                    ends_on, template, template_version) VALUES ('t', %s, ARRAY[%s], ARRAY['NJ-CHEM'],
                                    current_date, current_date, 'chemical', 1)""", (NANJING, NANJING))
                return True
            if action == "change the Nanjing task":
                return conn.execute("UPDATE riskatlas.inspection_task SET title = 'x' WHERE id = %s RETURNING id",
                                    (task,)).fetchone() is not None
            if action == "see the Nanjing task":
                return _count(conn, "SELECT count(*) AS n FROM riskatlas.inspection_task WHERE id = %s", task) == 1
            if action == "record at a Nanjing site":
                _record(conn, "NJ-CHEM")
                return True
            if action == "record at a Nanjing site by the task":
                _record(conn, "NJ-CHEM", task)
                return True
            if action == "record at a Chuzhou site":
                _record(conn, "CZ-CHEM")
                return True
            if action == "read a Nanjing site's records":
                return _count(conn, "SELECT count(*) AS n FROM riskatlas.inspection_record WHERE site_key = 'NJ-CHEM'") > 0
            if action == "read a Chuzhou border site's records":
                return _count(conn, "SELECT count(*) AS n FROM riskatlas.inspection_record WHERE site_key = 'CZ-CHEM'") > 0
            if action == "open a case at a Chuzhou site":
                conn.execute("INSERT INTO riskatlas.enforcement_case (finding_id, deadline) VALUES (%s, current_date + 30)",
                             (findings["CZ-CHEM"],))
                return True
            raise AssertionError(action)
        except psycopg.errors.InsufficientPrivilege:
            return False
        finally:
            conn.rollback()


#                                        nj     cz     nj.insp cz.insp mas.insp ana    boss   anonymous
MATRIX = {
    "plan a Nanjing task":                (True,  False, False,  False,  False,   False, True,  False),
    "change the Nanjing task":            (True,  False, False,  False,  False,   False, True,  False),
    "see the Nanjing task":               (True,  False, True,   False,  False,   False, True,  False),
    "record at a Nanjing site":           (True,  False, True,   False,  False,   False, True,  False),
    "record at a Nanjing site by the task": (True, False, True,  False,  False,   False, True,  False),
    "record at a Chuzhou site":           (False, True,  False,  True,   False,   False, True,  False),
    "read a Nanjing site's records":      (True,  False, True,   False,  False,   False, True,  False),
    # the Chuzhou site lies in Nanjing's border zone (a city-border flag names Nanjing)
    "read a Chuzhou border site's records": (True, True, True,   True,   False,   False, True,  False),
    "open a case at a Chuzhou site":      (False, True,  False,  False,  False,   False, True,  False),
}


def test_role_action_city_matrix(seeded):
    settings = seeded[0]
    got = {action: tuple(_try(settings, who, action, seeded) for who in ACTORS) for action in MATRIX}
    wrong = {a: {who: (got[a][i], MATRIX[a][i]) for i, who in enumerate(ACTORS) if got[a][i] != MATRIX[a][i]}
             for a in MATRIX}
    assert not {a: w for a, w in wrong.items() if w}, "(got, expected) per actor"
