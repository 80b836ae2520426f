"""Load monthly records of water sections (mean flow and concentrations) from CSV.

Each row is one station and month: ``station_key``, ``month`` (YYYY-MM), ``flow_m3s`` (the month's mean
flow, m³/s) and concentrations in mg/L: ``codmn`` (CODMn), ``cod`` (COD), ``nh3n`` (NH3-N), ``tp``
(TP), ``tn`` (TN).  Chinese headers (断面编码, 月份, 流量, 高锰酸盐指数, 化学需氧量, 氨氮, 总磷, 总氮) are
recognised, and a mapping file (``etl.mapping``: ``columns:``, ``encoding:``) renames anything else.

Like every load (``etl.load``): a ``load_batch`` row, every rejected row in ``load_reject`` with its
reasons, and one transaction that upserts by (station, month); loading the same file twice changes
nothing.  Rows are rejected for: a missing or unknown station, a station that is not a water
station, a month that is not a month, no flow, a value that is not a number or is negative, no
concentration at all, and a station and month given twice.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from etl.errors import InputError, LoadFailed
from etl.load import Actor, file_sha256
from etl.mapping import Mapping, load_mapping
from etl.normalise import Reject
from etl.readers import CSV_ENCODINGS
from etl.report import LoadReport
from layers import db
from layers.catalogue import SCHEMA, relation
from layers.settings import DatabaseSettings

LAYER = "section_record"
CONCENTRATIONS = ("codmn", "cod", "nh3n", "tp", "tn")
NUMBERS = ("flow_m3s", *CONCENTRATIONS)
FIELDS = ("station_key", "month", *NUMBERS)
ALIASES = {
    "station": "station_key", "station_key": "station_key", "key": "station_key", "断面编码": "station_key",
    "站点编码": "station_key", "month": "month", "月份": "month", "flow": "flow_m3s", "flow_m3s": "flow_m3s",
    "流量": "flow_m3s", "codmn": "codmn", "高锰酸盐指数": "codmn", "cod": "cod", "化学需氧量": "cod",
    "nh3n": "nh3n", "nh3-n": "nh3n", "氨氮": "nh3n", "tp": "tp", "总磷": "tp", "tn": "tn", "总氮": "tn",
}
_MONTH = re.compile(r"^\s*(\d{4})\s*(?:[-/.年]\s*)?(\d{1,2})\s*(?:月|[-/.]\s*0?1)?\s*$")


def load_section_records(settings: DatabaseSettings, path: str | Path, *, mapping: str | Path | Mapping | None = None,
                         dry_run: bool = False, actor: Actor | None = None) -> LoadReport:
    """Read, validate and load one CSV of monthly section records; return what happened to each row."""
    path = Path(path)
    actor = actor or Actor()
    m = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    raw = read_records(path, m)
    frame, rejects = validate(raw)
    with db.connect(settings) as conn:
        return _load(conn, path, raw, frame, rejects, dry_run=dry_run, actor=actor)


def read_records(path: Path, mapping: Mapping) -> pd.DataFrame:
    """The CSV as text columns named by :data:`FIELDS`; rows numbered from 1."""
    if path.suffix.lower() not in (".csv", ".txt"):
        raise InputError(f"{path}: section records are read from CSV files, not {path.suffix or '(no suffix)'}")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    data = path.read_bytes()
    for enc in ([mapping.encoding] if mapping.encoding else CSV_ENCODINGS):
        try:
            text = data.decode(enc)
            break
        except (UnicodeDecodeError, LookupError):
            continue
    else:
        raise InputError(f"{path}: text is neither {' nor '.join(CSV_ENCODINGS)}; give the encoding in the mapping")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a well-formed CSV: {exc}") from None
    names: dict[str, str] = {}
    for col in frame.columns:
        target = mapping.columns.get(col) or ALIASES.get(str(col).strip().lower()) or ALIASES.get(str(col).strip())
        if target is None:
            continue
        if target not in FIELDS:
            raise InputError(f"mapping {mapping.name!r} maps column {col!r} to {target!r}; section records have "
                             f"the fields {list(FIELDS)}")
        if target in names.values():
            raise InputError(f"{path}: two columns give {target!r}")
        names[col] = target
    missing = [f for f in ("station_key", "month", "flow_m3s") if f not in names.values()]
    if missing:
        raise InputError(f"{path}: no column for {missing}; columns are {list(frame.columns)} (expected "
                         f"{list(FIELDS)} or their Chinese names)")
    out = frame[list(names)].rename(columns=names)
    for f in FIELDS:
        if f not in out:
            out[f] = ""
    out.index = pd.RangeIndex(1, len(out) + 1)
    return out[list(FIELDS)].apply(lambda s: s.str.strip())


def parse_month(text: str) -> str | None:
    """The first day of the month written in ``text`` (YYYY-MM, YYYYMM, YYYY/MM, YYYY年M月, YYYY-MM-01),
    as ``YYYY-MM-01``; None when it is not a month."""
    hit = _MONTH.match(text or "")
    if not hit or not 1 <= int(hit.group(2)) <= 12:
        return None
    return f"{int(hit.group(1)):04d}-{int(hit.group(2)):02d}-01"


def validate(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[Reject]]:
    """Typed rows (month as YYYY-MM-01, numbers as floats) and every reason a row cannot be loaded."""
    rejects: list[Reject] = []
    out = pd.DataFrame(index=raw.index)
    out["station_key"] = raw["station_key"].where(raw["station_key"] != "", None)
    for row_no in raw.index[out["station_key"].isna()]:
        rejects.append(Reject(int(row_no), "missing station key", "station_key"))
    out["month"] = raw["month"].map(parse_month)
    for row_no in raw.index[out["month"].isna()]:
        rejects.append(Reject(int(row_no), f"month {raw.at[row_no, 'month']!r} is not a month (expected YYYY-MM)",
                              "month"))
    for f in NUMBERS:
        given = raw[f] != ""
        values = pd.to_numeric(raw[f].where(given), errors="coerce")
        for row_no in raw.index[given & values.isna()]:
            rejects.append(Reject(int(row_no), f"field {f!r}: {raw.at[row_no, f]!r} is not a number", f))
        for row_no in raw.index[values < 0]:
            rejects.append(Reject(int(row_no), f"field {f!r} is {values[row_no]:g}; flows and concentrations "
                                               "cannot be negative", f))
        out[f] = values
    for row_no in raw.index[raw["flow_m3s"] == ""]:
        rejects.append(Reject(int(row_no), f"no flow for {raw.at[row_no, 'month'] or 'the month'}: the month's mean "
                                           "flow (m³/s) is needed to turn concentrations into loads", "flow_m3s"))
    none = (raw[list(CONCENTRATIONS)] == "").all(axis=1)
    for row_no in raw.index[none]:
        rejects.append(Reject(int(row_no), f"no concentration given (one of {list(CONCENTRATIONS)}, mg/L)", None))
    pair = out["station_key"].astype("string") + "|" + out["month"].astype("string")
    dup = pair.duplicated(keep="first") & pair.notna()
    first = {p: i for i, p in reversed(list(pair.items()))}
    for row_no in raw.index[dup]:
        rejects.append(Reject(int(row_no), f"duplicate station and month {out.at[row_no, 'station_key']} "
                                           f"{out.at[row_no, 'month'][:7]} (first at row {first[pair[row_no]]})",
                              "month"))
    return out, rejects


def _load(conn: psycopg.Connection, path: Path, raw: pd.DataFrame, frame: pd.DataFrame, rejects: list[Reject], *,
          dry_run: bool, actor: Actor) -> LoadReport:
    sha = file_sha256(path)
    report = LoadReport(file=str(path), layer=LAYER, sha256=sha, rows_in=len(raw), crs="none (no geometry)",
                        dry_run=dry_run)
    try:
        with conn.transaction(force_rollback=dry_run):
            db.set_actor(conn, user=actor.user, role=actor.role, city=actor.city)
            batch_id = conn.execute(
                f"""INSERT INTO {SCHEMA}.load_batch (layer, file_name, sha256, status, rows_in, as_city)
                    VALUES (%s, %s, %s, 'committed', %s, %s) RETURNING id""",
                (LAYER, path.name, sha, len(raw), actor.city)).fetchone()["id"]
            bad = {r.row_no for r in rejects}
            clean = frame[[i not in bad for i in frame.index]]
            _stage(conn, clean)
            rejects = rejects + _unknown_stations(conn)
            conn.execute("DELETE FROM section_stage WHERE row_no = ANY(%s)", ([r.row_no for r in rejects],))
            # a record derived from observations (migration 0010) stands: the observations are corrected instead
            kept = conn.execute(sql.SQL(
                """SELECT count(*) AS n FROM section_stage s JOIN {records} r
                   ON r.station_key = s.station_key AND r.month = s.month WHERE r.origin = 'derived'""").format(
                records=relation("section_record"))).fetchone()["n"]
            if kept:
                report.notes.append(f"{kept} records derived from observations were kept (correct the observations "
                                    "and derive again to change them)")
            row = conn.execute(
                f"""WITH up AS (
                      INSERT INTO {SCHEMA}.section_record AS t (station_key, month, flow_m3s, codmn, cod, nh3n, tp, tn,
                                                               batch_id, updated_by)
                      SELECT station_key, month, flow_m3s, codmn, cod, nh3n, tp, tn, %s, (SELECT {SCHEMA}.acting_user())
                      FROM section_stage
                      ON CONFLICT (station_key, month) DO UPDATE SET flow_m3s = EXCLUDED.flow_m3s,
                          codmn = EXCLUDED.codmn, cod = EXCLUDED.cod, nh3n = EXCLUDED.nh3n, tp = EXCLUDED.tp,
                          tn = EXCLUDED.tn, batch_id = EXCLUDED.batch_id, updated_by = EXCLUDED.updated_by,
                          updated_at = now()
                      WHERE t.origin = 'loaded' AND (t.flow_m3s, t.codmn, t.cod, t.nh3n, t.tp, t.tn)
                            IS DISTINCT FROM (EXCLUDED.flow_m3s, EXCLUDED.codmn, EXCLUDED.cod, EXCLUDED.nh3n,
                                              EXCLUDED.tp, EXCLUDED.tn)
                      RETURNING (xmax = 0) AS inserted)
                    SELECT count(*) FILTER (WHERE inserted) AS ins, count(*) FILTER (WHERE NOT inserted) AS upd
                    FROM up""", (batch_id,)).fetchone()
            staged = conn.execute("SELECT count(*) AS n FROM section_stage").fetchone()["n"]
            report.rows_inserted, report.rows_updated = int(row["ins"]), int(row["upd"])
            report.rows_unchanged = int(staged) - report.rows_inserted - report.rows_updated
            report.rejects = sorted(rejects, key=lambda r: (r.row_no, r.reason))
            report.rows_rejected = len({r.row_no for r in rejects})
            loaded = report.rows_loaded
            report.status = "rejected" if report.rows_rejected and not loaded else (
                "partial" if report.rows_rejected else "committed")
            _write_rejects(conn, batch_id, report.rejects, raw)
            conn.execute(
                f"""UPDATE {SCHEMA}.load_batch SET status = %s, finished_at = clock_timestamp(), rows_inserted = %s,
                       rows_updated = %s, rows_unchanged = %s, rows_rejected = %s WHERE id = %s""",
                (report.status if not dry_run else "dry-run", report.rows_inserted, report.rows_updated,
                 report.rows_unchanged, report.rows_rejected, batch_id))
            report.batch_id = None if dry_run else int(batch_id)
    except psycopg.Error as exc:
        message = exc.diag.message_primary or str(exc).splitlines()[0]
        _record_failure(conn, path, sha, len(raw), actor, message)
        raise LoadFailed(f"{path}: load into {LAYER} failed and was rolled back: {message}") from None
    return report


def _stage(conn: psycopg.Connection, clean: pd.DataFrame) -> None:
    """COPY the rows that passed validation into a temporary staging table."""
    conn.execute("""CREATE TEMP TABLE section_stage (row_no integer PRIMARY KEY, station_key text, month date,
                    flow_m3s float8, codmn float8, cod float8, nh3n float8, tp float8, tn float8) ON COMMIT DROP""")
    out = clean.copy()
    out.insert(0, "row_no", out.index.astype("int64"))
    with conn.cursor().copy("COPY section_stage FROM STDIN (FORMAT csv)") as copy:
        copy.write(out.to_csv(header=False, index=False, na_rep=""))


def _unknown_stations(conn: psycopg.Connection) -> list[Reject]:
    """Rows naming a station that does not exist or is not a water station."""
    rows = conn.execute(
        f"""SELECT s.row_no, s.station_key, m.medium FROM section_stage s
            LEFT JOIN {SCHEMA}.monitoring_station m ON m.key = s.station_key
            WHERE m.key IS NULL OR m.medium <> 'water' ORDER BY s.row_no""").fetchall()
    out = []
    for r in rows:
        if r["medium"] is None:
            why = f"station {r['station_key']!r} is not in monitoring_station; load the station first"
        else:
            why = f"station {r['station_key']!r} is an {r['medium']} station; section records belong to water stations"
        out.append(Reject(int(r["row_no"]), why, "station_key"))
    return out


def _write_rejects(conn: psycopg.Connection, batch_id: int, rejects: list[Reject], raw: pd.DataFrame) -> None:
    seen: set[tuple[int, str]] = set()
    with conn.cursor().copy(f"COPY {SCHEMA}.load_reject (batch_id, row_no, reason, field, record) FROM STDIN") as copy:
        for r in rejects:
            if (r.row_no, r.reason) in seen:
                continue
            seen.add((r.row_no, r.reason))
            record = json.dumps({k: (v or None) for k, v in raw.loc[r.row_no].items()}, ensure_ascii=False)
            copy.write_row((batch_id, r.row_no, r.reason, r.field, record))


def _record_failure(conn: psycopg.Connection, path: Path, sha: str, rows_in: int, actor: Actor, message: str) -> None:
    """Keep an audit row of the failed attempt; the records are untouched."""
    try:
        with conn.transaction():
            conn.execute(
                f"""INSERT INTO {SCHEMA}.load_batch (layer, file_name, sha256, status, rows_in, as_city, finished_at,
                        message) VALUES (%s, %s, %s, 'failed', %s, %s, clock_timestamp(), %s)""",
                (LAYER, path.name, sha, rows_in, actor.city, message[:2000]))
    except psycopg.Error:
        conn.rollback()
