"""A year of synthetic observations for the demo's stations, loaded through the observation loader.

Written after the demo's rivers and stations are loaded (it reads them back):

* ``observations_air_synthetic.csv`` — hourly, for every synthetic air-quality station: PM2.5, PM10,
  SO2, NO2, O3 (1-h), O3 (8-h moving mean of the 1-h values) and CO, wide form, times in China Standard
  Time without a zone (the load report says so).  A regional weather signal shared by all stations
  (an AR(1) in log space), a season (more particles, SO2 and CO in winter, more ozone in summer), the
  daily cycle (rush hours for NO2 and CO, afternoon sun for ozone), a character per station, and a
  **winter PM2.5 episode** (:data:`EPISODE`): a stagnant week in January when PM2.5 climbs to heavy and
  severe pollution (HJ 633 AQI > 200) across the region.
* ``observations_water_synthetic.csv`` — daily at 10:00, for every synthetic water station: flow (from
  the nearest reach's mean flow and the month), CODMn, COD, NH3-N, TP, TN, DO, pH and temperature.
  Concentrations run at a share of the station's target-class limit (GB 3838), with a season and daily
  noise, and stay within target except for an **NH3-N exceedance** (:data:`NH3N_EPISODE`) at the
  Chu River (滁河) cross-border section in February: an upstream discharge lifts NH3-N to class IV–V
  and worse for two weeks, enough to put the month's mean over the section's class III limit.

Every row says ``synthetic=true`` (a column the loader ignores), the file names say so, and the
stations are themselves labelled synthetic.  The same seed gives byte-identical files.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from psycopg import sql

from layers import db
from layers.catalogue import SCHEMA_SQL
from layers.settings import DatabaseSettings
from layers.substances import CLASSES, water_limits

YEAR = 2025
SNAP_M = 2000.0
AIR_FILE = "observations_air_synthetic.csv"
WATER_FILE = "observations_water_synthetic.csv"
AIR_COLUMNS = ("pm25", "pm10", "so2", "no2", "o3", "o3_8h", "co(mg/m³)")
WATER_COLUMNS = ("flow", "codmn", "cod", "nh3n", "tp", "tn", "do", "ph", "temp")
#: The winter PM2.5 episode: first day, days, peak multiple of the usual level.
EPISODE = (date(YEAR, 1, 9), 8, 4.5)
#: The NH3-N exceedance at the Chu River section: first day, days, NH3-N as a multiple of the class III limit.
NH3N_EPISODE = (date(YEAR, 2, 5), 18, 2.4)
FLOW_SEASON = (0.6, 0.6, 0.8, 0.9, 1.1, 1.4, 1.6, 1.4, 1.1, 0.9, 0.8, 0.8)
NH3N_SEASON = (1.3, 1.25, 1.1, 1.0, 0.9, 0.8, 0.75, 0.8, 0.9, 1.0, 1.1, 1.2)


def write_observation_files(settings: DatabaseSettings, folder: Path, seed: int) -> list[Path]:
    """Write the air and water files for the loaded synthetic stations; return their paths (air first)."""
    with db.connect(settings) as conn:
        air = [r["key"] for r in conn.execute(sql.SQL(
            """SELECT key FROM {s}.monitoring_station WHERE medium = 'air' AND synthetic ORDER BY key""").format(
            s=SCHEMA_SQL)).fetchall()]
        water = conn.execute(sql.SQL(
            """SELECT m.key, m.name, m.kind, coalesce(m.target_class, 'III') AS target_class, r.flow_m3s,
                      r.river_class
               FROM {s}.monitoring_station m
               LEFT JOIN LATERAL (
                   SELECT r.flow_m3s, r.river_class FROM {s}.river r
                   WHERE ST_DWithin(r.geom::geography, m.geom::geography, %(snap)s)
                   ORDER BY ST_Distance(r.geom::geography, m.geom::geography), r.key LIMIT 1) r ON true
               WHERE m.medium = 'water' AND m.synthetic ORDER BY m.key""").format(s=SCHEMA_SQL),
            {"snap": SNAP_M}).fetchall()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 13])
    paths = [folder / AIR_FILE, folder / WATER_FILE]
    _write(air_frame(air, rng), paths[0])
    _write(water_frame(water, rng), paths[1])
    return paths


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.write_text(frame.to_csv(index=False, lineterminator="\n"), encoding="utf-8")


def _hours() -> pd.DatetimeIndex:
    return pd.date_range(f"{YEAR}-01-01 00:00", f"{YEAR}-12-31 23:00", freq="h")


def air_frame(stations: list[str], rng: np.random.Generator) -> pd.DataFrame:
    """The hourly air rows (one per station and hour, wide), values rounded as monitors report them."""
    hours = _hours()
    n = len(hours)
    doy = hours.day_of_year.to_numpy()
    hod = hours.hour.to_numpy()
    winter = np.cos(2 * np.pi * (doy - 15) / 365.0)          # +1 mid-January, -1 mid-July
    summer = -winter
    # regional weather: AR(1) in log space, hourly, ~3-day memory
    weather = np.empty(n)
    w, phi = 0.0, np.exp(-1 / 72)
    shocks = rng.normal(0.0, 0.09, n)
    for i in range(n):
        w = phi * w + shocks[i]
        weather[i] = w
    start, days, peak = EPISODE
    t0 = (pd.Timestamp(start) - hours[0]) / pd.Timedelta(hours=1)
    t = np.arange(n)
    span = days * 24
    episode = 1 + (peak - 1) * np.clip(np.sin(np.pi * (t - t0) / span), 0, None) * ((t >= t0) & (t < t0 + span))
    traffic = 1 + 0.35 * np.exp(-((hod - 8) ** 2) / 4) + 0.3 * np.exp(-((hod - 19) ** 2) / 5)
    night = 1 + 0.15 * np.cos(2 * np.pi * (hod - 2) / 24)      # particles settle into the night inversion
    sun = np.clip(np.sin(np.pi * (hod - 6) / 14), 0, None) * (hod >= 6) * (hod <= 20)
    frames = []
    for key in stations:
        char = rng.lognormal(0.0, 0.12, 4)
        noise = rng.normal(0.0, 0.12, (6, n))
        base = np.exp(weather + noise[0])
        pm25 = (38 + 22 * winter) * char[0] * night * base * episode
        pm10 = pm25 * (1.55 + 0.15 * summer) * np.exp(noise[1] * 0.5)
        so2 = (9 + 5 * winter) * char[1] * np.exp(noise[2]) * (1 + 0.3 * (episode - 1) / peak)
        no2 = (32 + 10 * winter) * char[2] * traffic * np.exp(noise[3] + 0.5 * weather) * (1 + 0.4 * (episode - 1) / peak)
        o3 = np.clip((25 + 45 * (1 + summer) * sun) * char[3] * np.exp(noise[4]) / np.sqrt(episode), 2, None)
        o3_8h = pd.Series(o3).rolling(8, min_periods=6).mean().to_numpy()
        co = (0.55 + 0.3 * winter) * traffic * np.exp(noise[5] * 0.6 + 0.4 * weather) + 0.004 * (pm25 - 30).clip(0)
        frames.append(pd.DataFrame({
            "station": key, "time": hours.strftime("%Y-%m-%d %H:%M"), "pm25": np.rint(pm25).astype(int),
            "pm10": np.rint(pm10).astype(int), "so2": np.rint(so2).astype(int), "no2": np.rint(no2).astype(int),
            "o3": np.rint(o3).astype(int), "o3_8h": pd.Series(np.rint(o3_8h)).astype("Int64"),
            "co(mg/m³)": np.round(co, 1), "synthetic": "true"}))
    return pd.concat(frames, ignore_index=True)


def water_frame(stations: list[dict[str, Any]], rng: np.random.Generator) -> pd.DataFrame:
    """The daily water rows (one per station and day at 10:00 CST, wide)."""
    limits = water_limits()
    days = pd.date_range(f"{YEAR}-01-01", f"{YEAR}-12-31", freq="D")
    n = len(days)
    month = days.month.to_numpy() - 1
    doy = days.day_of_year.to_numpy()
    chu = next((s["key"] for s in stations if s["kind"] == "cross-border-section" and "滁河" in s["name"]), None)
    frames = []
    for st in stations:
        target = CLASSES.index(st["target_class"])
        level = {"CODMn": rng.uniform(0.4, 0.7), "NH3-N": rng.uniform(0.3, 0.55), "TP": rng.uniform(0.4, 0.7),
                 "TN": rng.uniform(0.4, 0.65)}
        ratio = {f: lv * rng.lognormal(0.0, 0.1, n) for f, lv in level.items()}
        ratio["NH3-N"] = ratio["NH3-N"] * np.asarray(NH3N_SEASON)[month]
        conc = {f: limits[f].limits[target] * r for f, r in ratio.items()}
        if st["key"] == chu:
            first, length, multiple = NH3N_EPISODE
            k0 = (pd.Timestamp(first) - days[0]).days
            bump = np.sin(np.pi * (np.arange(n) - k0 + 0.5) / length).clip(0) * ((np.arange(n) >= k0)
                                                                                 & (np.arange(n) < k0 + length))
            limit = limits["NH3-N"].limits[target]
            conc["NH3-N"] = np.maximum(conc["NH3-N"], limit * multiple * bump * rng.lognormal(0.0, 0.05, n))
        base_flow = float(st["flow_m3s"] or 50.0)
        flow = base_flow * np.asarray(FLOW_SEASON)[month] * rng.lognormal(0.0, 0.08, n)
        temp = 17.5 - 10.5 * np.cos(2 * np.pi * (doy - 20) / 365.0) + rng.normal(0, 0.6, n)
        do = np.clip(14.2 - 0.22 * temp + rng.normal(0, 0.3, n), 3.0, None)  # near saturation
        frames.append(pd.DataFrame({
            "station": st["key"], "time": days.strftime("%Y-%m-%d 10:00"), "flow": np.round(flow, 1),
            "codmn": np.round(conc["CODMn"], 2), "cod": np.round(conc["CODMn"] * 3.0, 1),
            "nh3n": np.round(conc["NH3-N"], 3), "tp": np.round(conc["TP"], 3), "tn": np.round(conc["TN"], 2),
            "do": np.round(do, 2), "ph": np.round(7.6 + rng.normal(0, 0.2, n), 2), "temp": np.round(temp, 1),
            "synthetic": "true"}))
    return pd.concat(frames, ignore_index=True)


def episode_days() -> dict[str, list[str]]:
    """The days of the two episodes, for the demo's report."""
    out = {}
    for name, (first, length, _) in (("pm25_winter_episode", EPISODE), ("nh3n_chu_river_exceedance", NH3N_EPISODE)):
        out[name] = [(first + timedelta(days=i)).isoformat() for i in (0, length - 1)]
    return out
