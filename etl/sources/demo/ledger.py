"""A year of synthetic monthly records for the demo's cross-border sections, so the ledger has pairs.

Written after the demo's rivers and stations are loaded: for each synthetic water station of kind
``cross-border-section`` (by key), the mean flow of the reach it lies on (the nearest within
``SNAP_M``) sets the section's flow, and concentrations of CODMn, NH3-N, TP and TN are drawn around
the GB 3838 limits of the station's target class, with a season (more water and lower NH3-N in the
summer months) and month-to-month noise.  Some sections and months are over their target, most under
it, so every scheme of ``layers/data/section_compensation.yaml`` has something to compute.  Sections on
the Yangtze main stem stay under their target in every factor: at ~29 000 m³/s an excess of 0.01 mg/L
is ~750 t a month, tens of millions of yuan per factor under a per-tonne scheme, which would drown
every other pair of the demo without showing anything more.

Every row is labelled: the file is ``section_record_synthetic.csv``, each row carries
``synthetic=true`` and ``source`` (columns the loader does not keep), and the stations the rows belong
to are themselves labelled ``synthetic``, which the ledger reports per record and pair.  The same
seed gives the same file, so loading the demo again changes nothing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
from psycopg import sql

from etl.load import Actor
from etl.section_records import load_section_records
from layers import db
from layers.catalogue import SCHEMA_SQL
from layers.settings import DatabaseSettings
from layers.substances import CLASSES, water_limits

YEAR = 2025
SNAP_M = 2000.0
FILE_NAME = "section_record_synthetic.csv"
HEADER = ["station_key", "month", "flow_m3s", "codmn", "nh3n", "tp", "tn", "synthetic", "source"]
# Relative flow of each month (plum rains and summer floods in the lower Yangtze); mean 1.
FLOW_SEASON = (0.6, 0.6, 0.8, 0.9, 1.1, 1.4, 1.6, 1.4, 1.1, 0.9, 0.8, 0.8)
# Relative NH3-N of each month: higher in the cold months (slower nitrification), diluted in summer.
NH3N_SEASON = (1.3, 1.25, 1.1, 1.0, 0.9, 0.8, 0.75, 0.8, 0.9, 1.0, 1.1, 1.2)
# The highest ratio to its target limit a factor reaches on the Yangtze main stem (see above).
YANGTZE_CAP = 0.9


def section_rows(settings: DatabaseSettings, seed: int) -> list[dict[str, Any]]:
    """The year's rows for the demo's synthetic cross-border sections, from the loaded rivers and stations."""
    with db.connect(settings) as conn:
        stations = conn.execute(
            sql.SQL("""SELECT m.key, coalesce(m.target_class, 'III') AS target_class, r.flow_m3s, r.river_class
                FROM {schema}.monitoring_station m
                CROSS JOIN LATERAL (
                    SELECT r.flow_m3s, r.river_class FROM {schema}.river r
                    WHERE ST_DWithin(r.geom::geography, m.geom::geography, %(snap)s)
                    ORDER BY ST_Distance(r.geom::geography, m.geom::geography), r.key LIMIT 1) r
                WHERE m.medium = 'water' AND m.kind = 'cross-border-section' AND m.synthetic
                ORDER BY m.key""").format(schema=SCHEMA_SQL), {"snap": SNAP_M}).fetchall()
    limits = water_limits()
    rng = np.random.default_rng(seed)
    source = f"riskatlas synthetic demo (seed {seed})"
    rows = []
    for st in stations:
        target = CLASSES.index(st["target_class"])
        # A section's character: how close to its target each factor runs (1.0 = at the limit).
        level = {"CODMn": rng.uniform(0.55, 1.1), "NH3-N": rng.uniform(0.45, 1.2), "TP": rng.uniform(0.5, 1.15),
                 "TN": rng.uniform(0.8, 1.6)}
        base_flow = float(st["flow_m3s"] or 50.0)
        cap = YANGTZE_CAP if st["river_class"] == "yangtze-main" else None
        for month in range(12):
            noise = rng.lognormal(0.0, 0.15, size=4)
            ratio = {f: level[f] * n for f, n in zip(level, noise)}
            ratio["NH3-N"] *= NH3N_SEASON[month]
            if cap is not None:
                ratio = {f: min(r, cap) for f, r in ratio.items()}
            conc = {f: limits[f].limits[target] * r for f, r in ratio.items()}
            flow = base_flow * FLOW_SEASON[month] * rng.lognormal(0.0, 0.1)
            rows.append({"station_key": st["key"], "month": f"{YEAR}-{month + 1:02d}", "flow_m3s": round(flow, 1),
                         "codmn": round(conc["CODMn"], 2), "nh3n": round(conc["NH3-N"], 3),
                         "tp": round(conc["TP"], 3), "tn": round(conc["TN"], 2), "synthetic": "true",
                         "source": source})
    return rows


def write_section_records(settings: DatabaseSettings, folder: Path, seed: int) -> tuple[Path, int]:
    """Write the synthetic records as CSV into ``folder``; return the file and its row count."""
    rows = section_rows(settings, seed)
    buf = io.StringIO()
    w = csv.DictWriter(buf, HEADER, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path = Path(folder) / FILE_NAME
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path, len(rows)


def load_demo_ledger(settings: DatabaseSettings, folder: Path, *, seed: int) -> dict[str, Any]:
    """Write and load the demo's synthetic section records; a summary shaped like the demo's other loads."""
    path, _ = write_section_records(settings, folder, seed)
    report = load_section_records(settings, path, actor=Actor(user="demo")).to_dict()
    keys = ("status", "rows_in", "rows_inserted", "rows_updated", "rows_unchanged", "rows_rejected", "exit_code",
            "batch_id")
    return {"file": path.name, "layer": "section_record", **{k: report[k] for k in keys if k in report}}
