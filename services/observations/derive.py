"""Monthly section records derived from observations, for the compensation ledger (DESIGN 8.8, 12).

For each cross-border water section (kind ``cross-border-section``, the sections of the compensation
ledger) with observations in a month — the month in China Standard Time — the record holds the arithmetic mean of the month's valid
and estimated samples of flow (m³/s) and of CODMn, COD, NH3-N, TP and TN (mg/L).  A record needs the
month's flow (loads are concentration × flow) and at least one concentration; a section lacking either
is reported, not written.  The record is marked ``origin = 'derived'`` and ``derived`` says how many
samples each mean came from, which load batches brought them and the span of their times.

A record typed in (``origin = 'loaded'``) for the same section and month is kept unless the caller
asks to replace it (``replace_loaded``); the report names the ones kept.  Deriving again from the
same observations changes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from layers.catalogue import relation
from services.errors import InvalidParameter

FACTORS = ("flow", "codmn", "cod", "nh3n", "tp", "tn")  # observation parameter = section_record column
CONCENTRATIONS = FACTORS[1:]
COLUMN = {"flow": "flow_m3s"}
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass
class DeriveReport:
    """What a derivation wrote and why some sections have no record."""

    month: str
    written: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"month": self.month, "records_written": len(self.written), "records_unchanged": len(self.unchanged),
                "written": self.written, "unchanged": self.unchanged, "skipped": self.skipped}


def parse_month(text: str) -> str:
    """``YYYY-MM`` checked, or a 400 naming the expected form."""
    if not _MONTH.match(text or ""):
        raise InvalidParameter(f"`month` was {str(text)[:20]!r} but is expected to be YYYY-MM, e.g. 2025-03")
    return text


def derive_section_records(conn: psycopg.Connection, month: str, *, station_keys: list[str] | None = None,
                           replace_loaded: bool = False) -> DeriveReport:
    """Write the derived records of ``month`` (YYYY-MM) for every section with observations in it (or
    those of ``station_keys``), in the caller's transaction; see the module docstring for the rules."""
    month = parse_month(month)
    first = f"{month}-01"
    rows = conn.execute(sql.SQL(
        """WITH span AS (
               SELECT %(first)s::timestamp AT TIME ZONE 'Asia/Shanghai' AS t0,
                      (%(first)s::timestamp + interval '1 month') AT TIME ZONE 'Asia/Shanghai' AS t1
           ), st AS (
               SELECT key FROM {stations} WHERE medium = 'water'
                 AND kind = 'cross-border-section'
                 AND (%(keys)s::text[] IS NULL OR key = ANY(%(keys)s::text[]))
           ), o AS (
               SELECT o.station_key, o.parameter, avg(o.value) AS mean, count(*) AS n,
                      array_agg(DISTINCT o.batch_id) FILTER (WHERE o.batch_id IS NOT NULL) AS batches,
                      min(o.observed_at) AS t_first, max(o.observed_at) AS t_last
               FROM {obs} o JOIN st ON st.key = o.station_key CROSS JOIN span
               WHERE o.observed_at >= span.t0 AND o.observed_at < span.t1 AND o.parameter = ANY(%(factors)s)
                 AND o.flag IN ('valid', 'estimated')
               GROUP BY o.station_key, o.parameter
           ), b AS (
               SELECT o.station_key, array_agg(DISTINCT x ORDER BY x) AS batches FROM o, unnest(o.batches) x
               GROUP BY o.station_key
           )
           SELECT o.station_key, jsonb_object_agg(o.parameter, o.mean) AS means,
                  jsonb_object_agg(o.parameter, o.n) AS counts, b.batches,
                  min(o.t_first) AS t_first, max(o.t_last) AS t_last, r.origin AS existing_origin
           FROM o LEFT JOIN b ON b.station_key = o.station_key
           LEFT JOIN {records} r ON r.station_key = o.station_key AND r.month = %(first)s::date
           GROUP BY o.station_key, b.batches, r.origin ORDER BY o.station_key""").format(
        stations=relation("monitoring_station"), obs=relation("observation"), records=relation("section_record")),
        {"first": first, "keys": station_keys, "factors": list(FACTORS)}).fetchall()
    report = DeriveReport(month)
    for r in rows:
        means, counts = r["means"], r["counts"]
        key = r["station_key"]
        if "flow" not in means:
            report.skipped.append({"station_key": key, "reason": f"no flow observed in {month}: the month's mean flow "
                                   "is needed to turn concentrations into loads"})
            continue
        if not any(c in means for c in CONCENTRATIONS):
            report.skipped.append({"station_key": key, "reason": f"no concentration ({', '.join(CONCENTRATIONS)}) "
                                   f"observed in {month}"})
            continue
        if r["existing_origin"] == "loaded" and not replace_loaded:
            report.skipped.append({"station_key": key, "reason": f"a record typed in for {month} is kept (derive with "
                                   "replace_loaded to put the observations' means in its place)"})
            continue
        derived = {"observations": {k: counts[k] for k in FACTORS if k in counts}, "batches": r["batches"] or [],
                   "from": r["t_first"].isoformat(), "to": r["t_last"].isoformat(),
                   "rule": "arithmetic mean of the month's valid and estimated samples (month in UTC+08:00)"}
        values = [means.get(f) for f in FACTORS]
        changed = conn.execute(sql.SQL(
            """INSERT INTO {records} AS t (station_key, month, flow_m3s, codmn, cod, nh3n, tp, tn, batch_id, origin,
                                           derived, updated_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, 'derived', %s, (SELECT riskatlas.acting_user()))
               ON CONFLICT (station_key, month) DO UPDATE SET flow_m3s = EXCLUDED.flow_m3s, codmn = EXCLUDED.codmn,
                   cod = EXCLUDED.cod, nh3n = EXCLUDED.nh3n, tp = EXCLUDED.tp, tn = EXCLUDED.tn, batch_id = NULL,
                   origin = 'derived', derived = EXCLUDED.derived, updated_by = EXCLUDED.updated_by, updated_at = now()
               WHERE (t.flow_m3s, t.codmn, t.cod, t.nh3n, t.tp, t.tn, t.origin, t.derived -> 'observations')
                     IS DISTINCT FROM (EXCLUDED.flow_m3s, EXCLUDED.codmn, EXCLUDED.cod, EXCLUDED.nh3n, EXCLUDED.tp,
                                       EXCLUDED.tn, EXCLUDED.origin, EXCLUDED.derived -> 'observations')""").format(
            records=relation("section_record")), (key, first, *values, json.dumps(derived))).rowcount
        if changed:
            report.written.append({"station_key": key, **{f: means.get(f) for f in FACTORS}, "derived": derived})
        else:
            report.unchanged.append(key)
    return report


def months_with_observations(conn: psycopg.Connection, year: int) -> list[str]:
    """The months (YYYY-MM, UTC+08:00) of ``year`` in which some section has a flow observation."""
    rows = conn.execute(sql.SQL(
        """SELECT DISTINCT to_char(o.observed_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS m
           FROM {obs} o JOIN {st} s ON s.key = o.station_key
           WHERE s.kind = 'cross-border-section' AND o.parameter = 'flow'
             AND o.observed_at >= (%(y)s || '-01-01')::timestamp AT TIME ZONE 'Asia/Shanghai'
             AND o.observed_at < ((%(y)s + 1) || '-01-01')::timestamp AT TIME ZONE 'Asia/Shanghai'
           ORDER BY 1""").format(obs=relation("observation"), st=relation("monitoring_station")),
        {"y": year}).fetchall()
    return [r["m"] for r in rows]
