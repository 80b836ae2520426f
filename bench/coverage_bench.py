"""Monitoring coverage benchmark: ``/analysis/coverage`` for water and air on the demo region.

    .venv/bin/python -m bench.coverage_bench --runs 5

Runs :func:`services.coverage.source_gaps` (what the endpoint runs) on the project's database as it
is (``riskatlas demo`` first) and prints the median time of each medium against the goal of issue 17
(< 500 ms for water on the demo).  The water answer snaps every source to the river network
(``services.river.snap_points``), which once took 6-9 s here: each row built the local transverse
Mercator anew from its PROJ string (about 12 ms a call).  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

from layers import db
from layers.settings import DatabaseSettings
from services.coverage import source_gaps

GOAL_S = {"water": 0.5, "air": 0.5}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    settings = DatabaseSettings()
    with db.connect(settings, "app") as conn:
        for medium in ("water", "air"):
            times, gaps = [], 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                with conn.transaction(force_rollback=True):
                    gaps = source_gaps(conn, medium, limit=1)["numberMatched"]
                times.append(time.perf_counter() - t0)
            median = statistics.median(times)
            print(f"coverage {medium:5s}: median {median * 1000:7.1f} ms of {args.runs} runs, {gaps} gaps; "
                  f"goal < {GOAL_S[medium] * 1000:.0f} ms ({median / GOAL_S[medium]:.2f}x the goal)")


if __name__ == "__main__":
    main()
