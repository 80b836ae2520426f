"""Water sections: every sample classed by GB 3838 against the target; an exceedance at a cross-border section
raises an event for the downstream city, and the month's ledger row is computed from the observations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from etl.load import Actor
from etl.observations import load_observation_file
from layers import db
from services import accounts
from services.incidents.settings import DeliverySettings
from services.ledger import build_ledger
from services.observations.derive import derive_section_records
from services.observations.events import after_ingest
from services.web.app import create_app
from services.web.settings import APISettings

ROOT = Path(__file__).resolve().parents[2]
NANJING, CHUZHOU, YANGZHOU = "320100", "341100", "321000"
HIGH_DAYS = range(5, 17)  # 12 days of NH3-N at 1.9 mg/L (class V) against class III (1.0 mg/L)


@pytest.fixture
def chu(demo_copy, tmp_path):
    """The Chu River cross-border section of the demo, a month (March 2026) of daily samples loaded by its
    owner city's steward, and keys of the cities involved and of one that is not."""
    with db.connect(demo_copy) as conn:
        st = conn.execute("""SELECT key, owner_city, target_class FROM riskatlas.monitoring_station
                             WHERE kind = 'cross-border-section' AND name LIKE '%%滁河%%' ORDER BY key LIMIT 1""").fetchone()
        keys = {}
        for name, city in (("nj", NANJING), ("cz", CHUZHOU), ("yz", YANGZHOU)):
            accounts.create_account(conn, name, "steward", city)
            keys[name] = accounts.create_key(conn, name).secret
        conn.commit()
    assert st["owner_city"] == NANJING and st["target_class"] == "III"
    lines = ["station,time,flow,codmn,nh3n,tp,tn"]
    for day in range(1, 32):
        nh3n = 1.9 if day in HIGH_DAYS else 0.6
        lines.append(f"{st['key']},2026-03-{day:02d} 10:00,{40 + day},3.0,{nh3n},0.1,0.8")
    path = tmp_path / "chu.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load_observation_file(demo_copy, path, actor=Actor(user="nj", role="steward", city=NANJING),
                                   hook=after_ingest)
    assert report.rows_inserted == 31 * 5 and not report.rejects
    return demo_copy, st["key"], keys, report, tmp_path


def test_an_exceedance_raises_an_event_for_the_downstream_city(chu):
    settings, key, keys, report, tmp_path = chu
    assert report.derived["events_raised"] == len(HIGH_DAYS)
    with db.connect(settings) as conn:
        events = conn.execute("""SELECT parameter, value, water_class, target_class, upstream_city, downstream_city,
                                        status, message_zh, message_en FROM riskatlas.observation_event
                                 WHERE station_key = %s AND observed_at >= '2026-03-01' ORDER BY observed_at""",
                              (key,)).fetchall()
        classes = conn.execute("""SELECT riskatlas.water_class(parameter, value) AS c, count(*) AS n
                                  FROM riskatlas.observation WHERE station_key = %s AND parameter = 'nh3n'
                                    AND observed_at >= '2026-03-01' GROUP BY 1 ORDER BY 1""", (key,)).fetchall()
    assert [(c["c"], c["n"]) for c in classes] == [(3, 31 - len(HIGH_DAYS)), (5, len(HIGH_DAYS))]
    assert len(events) == len(HIGH_DAYS)
    assert {(e["parameter"], e["water_class"], e["target_class"], e["upstream_city"], e["downstream_city"],
             e["status"]) for e in events} == {("nh3n", 5, 3, CHUZHOU, NANJING, "open")}
    assert "超过目标III类" in events[0]["message_zh"] and "worse than its target class III" in events[0]["message_en"]
    # in the app: the cities involved see the events, another city and the public do not (the delivery worker
    # is off here: the notices the events go out with are tests/incidents/test_exceedance.py's)
    with TestClient(create_app(settings, APISettings(pool_min=1, pool_max=2), DeliverySettings(worker=False))) as c:
        nj = c.get("/observations/events", params={"city": NANJING}, headers={"X-API-Key": keys["nj"]})
        cz = c.get("/observations/events", headers={"X-API-Key": keys["cz"]})
        yz = c.get("/observations/events", headers={"X-API-Key": keys["yz"]})
        assert c.get("/observations/events").status_code == 403
        assert nj.status_code == 200 and cz.status_code == 200 and yz.status_code == 200
        mine = [e for e in nj.json()["events"] if e["station_key"] == key and e["observed_at"] >= "2026-03"]
        assert len(mine) == len(HIGH_DAYS) and all(e["downstream_city"] == NANJING for e in nj.json()["events"])
        assert len([e for e in cz.json()["events"] if e["observed_at"] >= "2026-03"]) == len(HIGH_DAYS)
        assert yz.json()["events"] == []
        ack = c.post(f"/observations/events/{mine[0]['id']}/acknowledge", headers={"X-API-Key": keys["nj"]})
        assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "nj"
        assert c.post(f"/observations/events/{mine[1]['id']}/acknowledge",
                      headers={"X-API-Key": keys["yz"]}).status_code == 404
    # a correction that brings a day within target withdraws its event
    fix = tmp_path / "fix.csv"
    fix.write_text(f"station,parameter,time,value,unit\n{key},nh3n,2026-03-10 10:00,0.7,mg/L\n", encoding="utf-8")
    again = load_observation_file(settings, fix, actor=Actor(user="nj", role="steward", city=NANJING), hook=after_ingest)
    assert again.rows_updated == 1 and again.derived["events_withdrawn"] == 1
    # the command line lists them too
    env = {**os.environ, "RISKATLAS_DB_NAME": settings.db_name, "RISKATLAS_PG_PORT": str(settings.pg_port),
           "RISKATLAS_STATE_DIR": str(settings.state_dir)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "services.cli", "observations", "events", "--city", NANJING,
                           "--status", "open", "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    listed = [e for e in json.loads(done.stdout)["events"] if e["station_key"] == key and e["observed_at"] >= "2026-03"]
    assert len(listed) == len(HIGH_DAYS) - 2  # one acknowledged, one withdrawn


def test_the_months_ledger_row_is_computed_from_the_observations(chu):
    settings, key, _, report, _ = chu
    with db.transaction(settings) as conn:
        db.set_actor(conn, user="test", role="admin")
        derived = derive_section_records(conn, "2026-03", station_keys=[key])
    assert [w["station_key"] for w in derived.written] == [key]
    nh3n = (1.9 * len(HIGH_DAYS) + 0.6 * (31 - len(HIGH_DAYS))) / 31
    flow = sum(40 + d for d in range(1, 32)) / 31
    with db.connect(settings) as conn:
        row = conn.execute("SELECT * FROM riskatlas.section_record WHERE station_key = %s AND month = '2026-03-01'",
                           (key,)).fetchone()
        ledger = build_ledger(conn, month="2026-03")
    assert row["origin"] == "derived" and row["batch_id"] is None
    assert row["nh3n"] == pytest.approx(nh3n) and row["flow_m3s"] == pytest.approx(flow)
    assert row["derived"]["observations"] == {"flow": 31, "codmn": 31, "nh3n": 31, "tp": 31, "tn": 31}
    assert row["derived"]["batches"] == [report.batch_id]
    (rec,) = [r for r in ledger.records if r["station_key"] == key]
    assert rec["values_mg_l"]["NH3-N"] == pytest.approx(nh3n) and nh3n > 1.0
    assert rec["factor_classes"]["NH3-N"] == "IV" and rec["meets_target"] is False
    assert (rec["upstream_code"], rec["downstream_code"]) == (CHUZHOU, NANJING) and rec["amount_yuan"] is not None
    # deriving again from the same observations changes nothing
    with db.transaction(settings) as conn:
        db.set_actor(conn, user="test", role="admin")
        assert derive_section_records(conn, "2026-03", station_keys=[key]).unchanged == [key]
