"""The demo's year of synthetic observations: loaded through the loader, labelled, with its two episodes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.sources.demo.observations import AIR_FILE, WATER_FILE, YEAR, air_frame
from layers import db
from layers.settings import DatabaseSettings
from tests.conftest import DEMO_REPORTS

NANJING, CHUZHOU = "320100", "341100"


def test_the_demo_year_is_loaded_labelled_and_complete(demo_db: DatabaseSettings) -> None:
    loads = {e["file"]: e for e in DEMO_REPORTS[demo_db.db_name].loads if e["layer"] == "observation"}
    assert set(loads) == {AIR_FILE, WATER_FILE}
    assert all(e["rows_rejected"] == 0 and e["rows_in"] > 0 for e in loads.values())
    assert any("China Standard Time" in n for n in loads[AIR_FILE]["notes"])
    with db.connect(demo_db) as conn:
        counts = conn.execute(
            """SELECT m.medium, o.parameter, count(DISTINCT o.station_key) AS stations, count(*) AS n,
                      bool_and(m.synthetic) AS synthetic
               FROM riskatlas.observation o JOIN riskatlas.monitoring_station m ON m.key = o.station_key
               GROUP BY 1, 2""").fetchall()
        n_air = conn.execute("SELECT count(*) AS n FROM riskatlas.monitoring_station WHERE medium = 'air'"
                             ).fetchone()["n"]
    by = {(c["medium"], c["parameter"]): c for c in counts}
    assert {p for m, p in by if m == "air"} == {"pm25", "pm10", "so2", "no2", "o3", "o3_8h", "co"}
    assert by[("air", "pm25")]["stations"] == n_air and by[("air", "pm25")]["n"] == n_air * 8760
    assert {"flow", "codmn", "nh3n", "tp", "tn", "do", "ph"} <= {p for m, p in by if m == "water"}
    assert all(c["synthetic"] for c in counts)


def test_the_winter_pm25_episode_and_the_chu_river_exceedance(demo_db: DatabaseSettings) -> None:
    with db.connect(demo_db) as conn:
        daily = pd.DataFrame(conn.execute(
            """SELECT (observed_at AT TIME ZONE 'Asia/Shanghai')::date AS day, avg(value) AS pm25
               FROM riskatlas.observation WHERE parameter = 'pm25' AND observed_at < '2025-03-01'
               GROUP BY 1 ORDER BY 1""").fetchall())
        chu = conn.execute("""SELECT key FROM riskatlas.monitoring_station WHERE kind = 'cross-border-section'
                              AND name LIKE '%%滁河%%' ORDER BY key LIMIT 1""").fetchone()["key"]
        events = conn.execute(
            """SELECT count(*) AS n, min(observed_at) AS first, bool_and(downstream_city = %s) AS to_nanjing,
                      bool_and(upstream_city = %s) AS from_chuzhou
               FROM riskatlas.observation_event WHERE station_key = %s AND parameter = 'nh3n'""",
            (NANJING, CHUZHOU, chu)).fetchone()
        others = conn.execute("SELECT count(*) AS n FROM riskatlas.observation_event WHERE station_key <> %s",
                              (chu,)).fetchone()["n"]
        record = conn.execute("""SELECT nh3n, origin, derived FROM riskatlas.section_record
                                 WHERE station_key = %s AND month = %s""", (chu, f"{YEAR}-02-01")).fetchone()
    peak = daily["pm25"].max()
    assert peak > 150 and peak > 3 * daily["pm25"].median()  # heavy pollution over the regional mean
    assert str(daily.loc[daily["pm25"].idxmax(), "day"]).startswith(f"{YEAR}-01-1")
    assert events["n"] >= 5 and events["to_nanjing"] and events["from_chuzhou"]
    assert events["first"].month == 2
    assert others < events["n"]  # the episode, not noise, is what raises events
    assert record["origin"] == "derived" and record["nh3n"] > 1.0 and record["derived"]["observations"]["nh3n"] == 28


def test_the_same_seed_gives_the_same_data() -> None:
    a = air_frame(["A", "B"], np.random.default_rng([7, 13]))
    b = air_frame(["A", "B"], np.random.default_rng([7, 13]))
    c = air_frame(["A", "B"], np.random.default_rng([8, 13]))
    assert a.to_csv(index=False) == b.to_csv(index=False) != c.to_csv(index=False)
    assert (a["synthetic"] == "true").all()
