"""Observations from files and pushes: read, validate, then one set-based upsert in one transaction.

Files are CSV (UTF-8 or GB18030) in one of two forms, told apart by their header:

* long: ``station,parameter,time,value,unit[,flag]`` — one observation per row;
* wide: ``station,time,<param>[,<param>...][,flag]`` — one row per station and time, a column per
  parameter; a column may carry its unit, ``co(μg/m3)`` or ``CO [mg/m³]``; without one the value is
  in the parameter's canonical unit.

Chinese headers are recognised (站点编码, 监测时间, 监测项目, 监测值, 单位, 标识) and parameters by code, HJ 633
or GB 3838 name or Chinese name (``PM2.5``, ``NH3-N``, ``氨氮``).  Every observation is checked: a known
station of the loading city, a known parameter of the station's medium, a unit accepted for it
(converted to the canonical unit: CO in μg/m³ becomes mg/m³), a number, not negative for a
concentration, inside the parameter's plausible range, a time that parses and is not in the future, a
known quality flag, and not a second value for the same station, parameter and time in the same file.
Rejected observations are reported with their reasons (``load_reject``); the rest load.  Times without
a zone are China Standard Time (UTC+08:00) and the report says how many there were.

Loading is idempotent by station + parameter + time: a resent identical value changes nothing, a
changed value or flag is a correction (the old row goes to ``observation_history`` by the trigger of
migration 0010).  The batch is recorded in ``load_batch``; everything commits together or not at all.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql

from etl.errors import InputError, LoadFailed
from etl.load import Actor, file_sha256
from etl.normalise import Reject
from etl.parse import decode_text
from etl.report import LoadReport
from layers import db
from layers.catalogue import relation
from layers.obs_parameters import aliases, normalise_unit, parameters
from layers.settings import DatabaseSettings

LAYER = "observation"
CST = timedelta(hours=8)  # China Standard Time, no daylight saving
FUTURE_TOLERANCE = timedelta(minutes=10)  # station clocks drift; later than this is a future time
FLAGS = {"": "valid", "valid": "valid", "v": "valid", "有效": "valid", "estimated": "estimated", "e": "estimated",
         "估算": "estimated", "suspect": "suspect", "s": "suspect", "可疑": "suspect", "invalid": "invalid",
         "i": "invalid", "无效": "invalid", "calibration": "calibration", "c": "calibration", "校准": "calibration",
         "maintenance": "maintenance", "m": "maintenance", "维护": "maintenance"}
COLUMNS = {
    "station": ("station", "station_key", "station_code", "站点编码", "站点", "测站编码", "断面编码", "断面", "站点代码"),
    "time": ("time", "observed_at", "datetime", "timestamp", "date", "时间", "监测时间", "采样时间", "日期"),
    "parameter": ("parameter", "param", "pollutant", "factor", "监测项目", "参数", "指标", "污染物"),
    "value": ("value", "concentration", "监测值", "数值", "浓度", "值"),
    "unit": ("unit", "units", "单位"),
    "flag": ("flag", "quality", "quality_flag", "标识", "数据标识", "数据标记", "标记"),
}
IGNORED = {"synthetic", "source", "name", "station_name", "站点名称", "断面名称", "city", "城市", "remark", "remarks", "备注", "note"}
_UNIT_IN_HEADER = re.compile(r"^\s*(.+?)\s*[\(\[（【]\s*(.*?)\s*[\)\]）】]\s*$")
_ZONE = re.compile(r"(?:[zZ]|[+-]\d\d(?::?\d\d)?|UTC|GMT)$")

Hook = Callable[[psycopg.Connection, int, "Batch"], dict[str, Any]]


@dataclass
class Batch:
    """Observations as given (one row each, text), numbered as their source numbers them.

    ``obs`` columns: row_no (the file row or push item), station, parameter, time, value, unit, flag;
    ``field`` names the wide column an observation came from (None in long form); ``records`` gives
    the source row of a row number as it was read (for ``load_reject``)."""

    obs: pd.DataFrame
    records: Callable[[int], dict[str, Any]]
    form: str
    notes: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


@dataclass
class Checked:
    """Observations that passed every check, in canonical units and UTC, and why the others did not."""

    frame: pd.DataFrame  # row_no, station_key, parameter, t_ns (UTC, ns since the epoch), value, flag, owner_city
    rejects: list[Reject]
    notes: list[str]


# --------------------------------------------------------------------------------------------- reading

#: A workbook's parts may expand to at most this many bytes (a zip bomb is refused before it is parsed).
WORKBOOK_MAX_BYTES = 512 * 1024 * 1024


def read_file(path: Path, *, encoding: str | None = None) -> Batch:
    """Read a long or wide observation CSV, or the first sheet of an Excel workbook (.xlsx), into a
    :class:`Batch` (header errors are ``InputError``)."""
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise InputError(f"file {path.name}: the old Excel format (.xls) is not read; save it as .xlsx or CSV")
    if suffix not in (".csv", ".txt", ".xlsx"):
        raise InputError(f"file {path.name}: observations are read from CSV files or Excel workbooks (.xlsx), "
                         f"not {path.suffix or '(no suffix)'}")
    if not path.exists():
        raise InputError(f"file {path.name}: no such file")
    if suffix == ".xlsx":
        frame = _read_workbook(path)
        used = "xlsx"
    else:
        text, used = decode_text(path.read_bytes(), encoding, f"file {path.name}")
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"file {path.name}: not a well-formed CSV: {str(exc).splitlines()[0][:200]}") from None
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    batch = from_frame(frame, label=f"file {path.name}")
    if used == "xlsx":
        batch.notes.append("read from the workbook's first sheet")
    elif used != "utf-8-sig":
        batch.notes.append(f"read as {used.upper()}")
    return batch


def _read_workbook(path: Path) -> pd.DataFrame:
    """The first sheet as text cells (openpyxl, through defusedxml; no formulas evaluated, cached values
    read); a workbook that is not one, or whose parts would expand past WORKBOOK_MAX_BYTES, is refused."""
    data = path.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            expanded = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile:
        raise InputError(f"file {path.name}: not an Excel workbook (.xlsx is a zip package)") from None
    if expanded > WORKBOOK_MAX_BYTES:
        raise InputError(f"file {path.name}: the workbook expands to {expanded / 2**20:.0f} MiB, more than "
                         f"{WORKBOOK_MAX_BYTES // 2**20} MiB; split it or save it as CSV")
    try:
        frame = pd.read_excel(io.BytesIO(data), sheet_name=0, dtype=str, keep_default_na=False, engine="openpyxl")
    except Exception as exc:  # noqa: BLE001 (openpyxl raises many kinds for a damaged package)
        raise InputError(f"file {path.name}: not a readable Excel workbook: {str(exc).splitlines()[0][:200]}") from None
    return frame.fillna("").astype(str)


def from_frame(frame: pd.DataFrame, *, label: str) -> Batch:
    """A text frame (rows numbered from 1) in long or wide form as a :class:`Batch`."""
    roles = _roles(frame.columns, label)
    missing = [r for r in ("station", "time") if r not in roles]
    if missing:
        raise InputError(f"{label}: no column for {missing}; columns are {list(frame.columns)[:20]} (long form: "
                         "station,parameter,time,value,unit[,flag]; wide form: station,time,<parameter>...)")
    stripped = frame.apply(lambda s: s.str.strip())

    def records(row_no: int) -> dict[str, Any]:
        return {str(k): (v or None) for k, v in frame.loc[row_no].items()}

    flag = stripped[roles["flag"]] if "flag" in roles else pd.Series("", index=frame.index)
    if "parameter" in roles or "value" in roles:
        lacking = [r for r in ("parameter", "value") if r not in roles]
        if lacking:
            raise InputError(f"{label}: long form needs a {lacking[0]!r} column; columns are {list(frame.columns)[:20]}")
        obs = pd.DataFrame({
            "row_no": frame.index.to_numpy(dtype="int64"), "station": stripped[roles["station"]].to_numpy(),
            "parameter": stripped[roles["parameter"]].to_numpy(), "time": stripped[roles["time"]].to_numpy(),
            "value": stripped[roles["value"]].to_numpy(),
            "unit": (stripped[roles["unit"]] if "unit" in roles else pd.Series("", index=frame.index)).to_numpy(),
            "flag": flag.to_numpy(), "field": None})
        return Batch(obs, records, "long")
    params = [c for c in frame.columns if c not in roles.values() and _plain(c) not in IGNORED]
    if not params:
        raise InputError(f"{label}: wide form needs at least one parameter column besides station and time; "
                         f"columns are {list(frame.columns)[:20]}")
    parts = []
    notes = []
    for col in params:
        name, unit = _header_unit(col)
        values = stripped[col]
        given = values != ""
        parts.append(pd.DataFrame({
            "row_no": frame.index.to_numpy(dtype="int64")[given.to_numpy()],
            "station": stripped[roles["station"]][given].to_numpy(), "parameter": name,
            "time": stripped[roles["time"]][given].to_numpy(), "value": values[given].to_numpy(), "unit": unit,
            "flag": flag[given].to_numpy(), "field": str(col)}))
        if unit:
            notes.append(f"column {col!r}: values in {unit}")
    obs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return Batch(obs, records, "wide", notes=notes)


def _plain(name: object) -> str:
    return re.sub(r"\s+", "", str(name)).lower()


def _roles(columns: pd.Index, label: str) -> dict[str, str]:
    lookup = {a: role for role, names in COLUMNS.items() for a in names}
    roles: dict[str, str] = {}
    for col in columns:
        role = lookup.get(_plain(col))
        if role is None:
            continue
        if role in roles:
            raise InputError(f"{label}: two columns give the {role}: {roles[role]!r} and {col!r}")
        roles[role] = str(col)
    return roles


def _header_unit(col: object) -> tuple[str, str]:
    """``'CO(μg/m3)'`` -> ``('CO', 'μg/m3')``; a header without a unit -> (header, '')."""
    hit = _UNIT_IN_HEADER.match(str(col))
    if hit and normalise_unit(hit.group(2)) not in ("1h", "8h", "8-h", "1-h"):
        return hit.group(1), hit.group(2)
    return str(col).strip(), ""


# ------------------------------------------------------------------------------------------- validation

NAT = np.iinfo(np.int64).min  # pandas' NaT as int64 nanoseconds
EARLIEST_NS = 0  # 1970-01-01T00:00Z: the partitions start there


def parse_times(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """UTC times as int64 nanoseconds since the epoch (:data:`NAT` where a text does not parse), and which
    texts had no zone (read as UTC+08:00).

    Each distinct text is parsed once (a file repeats its times across parameters and stations)."""
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    u = pd.Series(uniques, dtype=object).astype(str).str.strip().str.replace("/", "-", regex=False)
    u = u.str.replace("T", " ", regex=False).str.replace(r"\s+", " ", regex=True)
    zoned = u.str.contains(_ZONE, regex=True).to_numpy()
    ns = np.full(len(u), NAT, dtype=np.int64)
    if zoned.any():
        z = u[zoned].str.replace(r"\s*(UTC|GMT)$", "+00:00", regex=True).str.replace(" ", "T", n=1, regex=False)
        parsed = pd.DatetimeIndex(pd.to_datetime(z, errors="coerce", utc=True, format="ISO8601"))
        ns[zoned] = parsed.as_unit("ns").asi8
    if (~zoned).any():
        local = pd.DatetimeIndex(pd.to_datetime(u[~zoned], errors="coerce", format="ISO8601")).as_unit("ns").asi8
        ns[~zoned] = np.where(local == NAT, NAT, local - int(CST / timedelta(microseconds=1)) * 1000)
    times = np.append(ns, NAT)[codes]
    zoneless = np.append(~zoned, False)[codes]
    return times, zoneless


def check(batch: Batch, stations: dict[str, dict[str, Any]], actor: Actor, *, now: datetime | None = None) -> Checked:
    """Every check of the module docstring; ``stations`` maps each key named in the batch that exists to
    its row (owner_city, medium, kind, target_class).  Work is vectorised; a reason is written only for
    an observation that fails."""
    obs = batch.obs
    now = now or datetime.now(UTC)
    notes = list(batch.notes)
    if obs.empty:
        return Checked(_empty(), list(batch.rejects), notes)
    n = len(obs)
    cat = parameters()
    names = aliases()
    failed = np.zeros(n, dtype=bool)
    found: list[tuple[np.ndarray, Callable[[int], str], str]] = []

    def fail(mask: np.ndarray, why: Callable[[int], str], fld: str) -> None:
        nonlocal failed
        mask = np.asarray(mask, dtype=bool)
        found.append((mask, why, fld))
        failed = failed | mask

    par, sta, val, unit_t, tim, flg = (obs[c] for c in ("parameter", "station", "value", "unit", "time", "flag"))
    pkey = _map_unique(par, lambda s: names.get(_plain(s)))
    unknown = pkey.isna().to_numpy()
    fail(unknown, lambda i: f"unknown parameter {par.iat[i]!r}; known: {', '.join(cat)}" if par.iat[i]
         else "no parameter", "parameter")
    known = sta.isin(stations.keys()).to_numpy()
    fail(~known, lambda i: f"station {sta.iat[i]!r} is not in monitoring_station; load the station first"
         if sta.iat[i] else "no station key", "station")
    owner = _map_unique(sta, lambda s: stations.get(s, {}).get("owner_city"))
    medium = _map_unique(sta, lambda s: stations.get(s, {}).get("medium"))
    if actor.role == "steward":
        fail(known & (owner != actor.city).to_numpy(),
             lambda i: f"station {sta.iat[i]!r} belongs to city {owner.iat[i]} (not {actor.city}): only the "
                       "station's owner city writes its observations", "station")
    pmedium = _map_unique(pkey, lambda c: cat[c].medium)
    fail(known & ~unknown & (pmedium != medium).to_numpy(),
         lambda i: f"parameter {pkey.iat[i]!r} is measured in {pmedium.iat[i]}, but station {sta.iat[i]!r} is "
                   f"a{'n' if medium.iat[i] == 'air' else ''} {medium.iat[i]} station", "parameter")
    # unit: one factor per (parameter, unit) pair
    pair = pkey.fillna("") + "\x1f" + unit_t.astype(str)
    factors = _map_unique(pair, lambda k: _factor(*k.split("\x1f", 1))).astype(float)
    bad_unit = ~unknown & np.isnan(factors.to_numpy())
    fail(bad_unit, lambda i: f"unit {unit_t.iat[i]!r} is not accepted for {pkey.iat[i]}; accepted: "
                             f"{', '.join(cat[pkey.iat[i]].accepted_units)}", "unit")
    # value
    value = pd.to_numeric(val, errors="coerce").astype(float)
    nan = ~np.isfinite(value.to_numpy())
    fail(nan, lambda i: f"value {val.iat[i]!r} is not a number", "value")
    canonical = value * factors
    lo = _map_unique(pkey, lambda c: cat[c].min_value).astype(float).to_numpy()
    hi = _map_unique(pkey, lambda c: cat[c].max_value).astype(float).to_numpy()
    usable = ~nan & ~bad_unit & ~unknown
    negative = usable & (value.to_numpy() < 0) & (lo >= 0)
    fail(negative, lambda i: f"{pkey.iat[i]} is {val.iat[i]}: a concentration cannot be negative", "value")
    cv = canonical.to_numpy()
    fail(usable & ~negative & ((cv < lo) | (cv > hi)),
         lambda i: f"{pkey.iat[i]} = {cv[i]:g} {cat[pkey.iat[i]].unit} is outside the plausible range "
                   f"{lo[i]:g}–{hi[i]:g} {cat[pkey.iat[i]].unit}", "value")
    # time
    times, zoneless = parse_times(tim)
    no_time = times == NAT
    fail(no_time, lambda i: f"time {tim.iat[i]!r} is not a time (expected e.g. 2026-01-05 08:00 or "
                            "2026-01-05T00:00Z)", "time")
    fail(~no_time & (times < EARLIEST_NS), lambda i: f"time {tim.iat[i]!r} is before 1970: not a measurement this "
                                                    "store keeps", "time")
    limit = int((now + FUTURE_TOLERANCE).timestamp() * 1_000_000) * 1000
    fail(~no_time & (times > limit),
         lambda i: f"time {tim.iat[i]!r} is in the future (now is {now.astimezone(UTC):%Y-%m-%d %H:%M}Z)", "time")
    # flag
    flag = _map_unique(flg, lambda f: FLAGS.get(str(f).strip().lower()))
    fail(flag.isna().to_numpy(), lambda i: f"flag {flg.iat[i]!r} is not one of {sorted(set(FLAGS.values()))}",
         "flag")

    rejects = list(batch.rejects)
    rows = obs["row_no"].to_numpy()
    fields = obs["field"].to_numpy()
    for mask, why, fld in found:
        for i in np.flatnonzero(mask):
            rejects.append(Reject(int(rows[i]), _prefix(fields[i], why(int(i))), fields[i] or fld))
    # duplicates among the rest: the same station, parameter and time (after zones) given twice
    ok = ~failed
    key = pd.DataFrame({"s": sta.to_numpy(), "p": pkey.to_numpy(), "t": times})[ok]
    dup = key.duplicated(keep="first")
    if dup.any():
        first = key[~dup].reset_index().set_index(["s", "p", "t"])["index"]
        for i in dup[dup].index:
            j = int(first.loc[(key.at[i, "s"], key.at[i, "p"], key.at[i, "t"])])
            same = "the same value" if cv[i] == cv[j] else f"another value ({val.iat[j]})"
            rejects.append(Reject(int(rows[i]), _prefix(fields[i], (
                f"duplicate: {sta.iat[i]} {pkey.iat[i]} at {tim.iat[i]} was given at row {rows[j]} with {same}; "
                "the first is kept")), fields[i] or "time"))
        ok[np.flatnonzero(ok)[dup.to_numpy()]] = False
    clean = pd.DataFrame({"row_no": rows[ok], "station_key": sta.to_numpy()[ok], "parameter": pkey.to_numpy()[ok],
                          "t_ns": times[ok], "value": cv[ok], "flag": flag.to_numpy()[ok],
                          "owner_city": owner.to_numpy()[ok]})
    zl = int((zoneless & ok).sum())
    if zl:
        notes.append(f"{zl} observations had times without a zone: read as China Standard Time (UTC+08:00)")
    converted = ok & (factors.to_numpy() != 1.0)
    if converted.any():
        for (code, u), k in pd.DataFrame({"p": pkey[converted], "u": unit_t[converted]}).value_counts().items():
            notes.append(f"{k} {code} values converted from {u} to {cat[code].unit}")
    return Checked(clean, rejects, notes)


def _map_unique(series: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """``series.map(fn)`` computing ``fn`` once per distinct value (None/NaN stay None)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.array([fn(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=series.index, dtype=object)


def _factor(code: str, unit: str) -> float:
    p = parameters().get(code)
    f = p.factor(unit) if p is not None else None
    return np.nan if f is None else f


def _prefix(column: str | None, text: str) -> str:
    return f"column {column!r}: {text}" if column else text


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"row_no": pd.Series(dtype="int64"), "station_key": pd.Series(dtype=object),
                         "parameter": pd.Series(dtype=object), "t_ns": pd.Series(dtype="int64"),
                         "value": pd.Series(dtype=float), "flag": pd.Series(dtype=object),
                         "owner_city": pd.Series(dtype=object)})


# ---------------------------------------------------------------------------------------------- loading

def load_observation_file(settings: DatabaseSettings, path: str | Path, *, actor: Actor | None = None,
                          encoding: str | None = None, dry_run: bool = False, hook: Hook | None = None,
                          now: datetime | None = None) -> ObservationReport:
    """Read, check and load one observation CSV; return what happened to every observation.

    An administrator at the command line (no context) loads as the schema owner; a steward (or a
    caller holding a context) loads as the application role, so row-level security applies as to a push.
    ``hook(conn, batch_id, batch)`` runs inside the transaction after the upsert (events, for instance)
    and its result is added to the report's notes."""
    path = Path(path)
    batch = read_file(path, encoding=encoding)
    return ingest(settings, batch, source=path.name, sha256=file_sha256(path), actor=actor or Actor(), dry_run=dry_run,
                  hook=hook, now=now)


def ingest(settings: DatabaseSettings, batch: Batch, *, source: str, sha256: str, actor: Actor | None = None,
           dry_run: bool = False, hook: Hook | None = None, all_or_nothing: bool = False,
           now: datetime | None = None) -> ObservationReport:
    """Check ``batch`` and upsert what passes in one transaction (see :func:`load_observation_file`).

    With ``all_or_nothing`` a batch with any rejected observation loads nothing (status 'rejected')."""
    actor = actor or Actor()
    as_owner = actor.as_owner
    if not as_owner and actor.context is None:
        with db.connect(settings) as owner:
            context = db.set_actor(owner, user=actor.user, role=actor.role, city=actor.city)
            owner.rollback()
        actor = replace(actor, context=context)
    with db.connect(settings, "owner" if as_owner else "app") as conn:
        return _ingest(conn, batch, source=source, sha256=sha256, actor=actor, dry_run=dry_run, hook=hook,
                       all_or_nothing=all_or_nothing, now=now)


def _ingest(conn: psycopg.Connection, batch: Batch, *, source: str, sha256: str, actor: Actor, dry_run: bool,
            hook: Hook | None, all_or_nothing: bool, now: datetime | None) -> ObservationReport:
    report = ObservationReport(file=source, layer=LAYER, sha256=sha256, rows_in=len(batch.obs), crs="none (no geometry)",
                        dry_run=dry_run)
    try:
        with conn.transaction():
            db.act_as(conn, actor.context)
            batch_id = conn.execute(
                sql.SQL("""INSERT INTO {} (layer, file_name, sha256, status, rows_in, as_city)
                           VALUES (%s, %s, %s, 'committed', %s, %s) RETURNING id""").format(relation("load_batch")),
                (LAYER, source, sha256, len(batch.obs), actor.city)).fetchone()["id"]
            conn.execute("SELECT set_config('riskatlas.batch_id', %s, true)", (str(batch_id),))
            keys = [k for k in batch.obs["station"].unique().tolist() if k] if not batch.obs.empty else []
            stations = {r["key"]: r for r in conn.execute(
                sql.SQL("""SELECT key, owner_city, medium, kind, target_class FROM {}
                           WHERE key = ANY(%s)""").format(relation("monitoring_station")), (keys,)).fetchall()}
            checked = check(batch, stations, actor, now=now)
            report.notes = checked.notes
            if all_or_nothing and checked.rejects:
                checked = Checked(_empty(), checked.rejects, checked.notes)
                report.notes.append("all or nothing: an observation was rejected, so none was loaded")
            inserted, updated = _upsert(conn, checked.frame, batch_id)
            report.batch_id = batch_id
            report.rows_inserted, report.rows_updated = inserted, updated
            report.rows_unchanged = len(checked.frame) - inserted - updated
            report.rejects = sorted(checked.rejects, key=lambda r: (r.row_no, r.reason))
            report.rows_rejected = len(batch.obs) - len(checked.frame) if not batch.obs.empty else len(
                {r.row_no for r in checked.rejects})
            report.status = ("rejected" if report.rows_rejected and not report.rows_loaded
                             else "partial" if report.rows_rejected else "committed")
            if hook is not None and len(checked.frame):
                report.derived = hook(conn, batch_id, batch)
            _write_rejects(conn, batch_id, report.rejects, batch)
            conn.execute(
                sql.SQL("""UPDATE {} SET status = %s, finished_at = clock_timestamp(), rows_inserted = %s,
                           rows_updated = %s, rows_unchanged = %s, rows_rejected = %s, message = %s
                           WHERE id = %s""").format(relation("load_batch")),
                (report.status if not dry_run else "dry-run", inserted, updated, report.rows_unchanged,
                 report.rows_rejected, "; ".join(report.notes)[:2000] or None, batch_id))
            if dry_run:
                raise _DryRun
    except _DryRun:
        report.batch_id = None
        return report
    except psycopg.Error as exc:
        conn.rollback()
        message = exc.diag.message_primary or str(exc).splitlines()[0]
        _record_failure(conn, source, sha256, len(batch.obs), actor, message)
        raise LoadFailed(f"{source}: load into {LAYER} failed and was rolled back: {message}") from None
    return report


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back after counting."""


@dataclass
class ObservationReport(LoadReport):
    """A load report (rows are observations) with what the hook derived (events, for instance)."""

    derived: dict[str, Any] = field(default_factory=dict)


STAGE = "obs_stage"


def _upsert(conn: psycopg.Connection, frame: pd.DataFrame, batch_id: int) -> tuple[int, int]:
    """COPY ``frame`` into a temporary stage, make its months' partitions, then one upsert.

    A row whose value and flag are unchanged is not touched (no history, no new batch id)."""
    conn.execute(sql.SQL("""CREATE TEMP TABLE {} (row_no integer, station_key text, parameter text, t_us bigint,
                            value float8, flag text, owner_city text) ON COMMIT DROP""").format(sql.Identifier(STAGE)))
    if frame.empty:
        return 0, 0
    t_us = frame["t_ns"].to_numpy() // 1000
    table = pa.table({"row_no": frame["row_no"].to_numpy(), "station_key": frame["station_key"].to_numpy(),
                      "parameter": frame["parameter"].to_numpy(), "t_us": t_us, "value": frame["value"].to_numpy(),
                      "flag": frame["flag"].to_numpy(), "owner_city": frame["owner_city"].to_numpy()})
    buf = pa.BufferOutputStream()
    pa_csv.write_csv(table, buf, pa_csv.WriteOptions(include_header=False))
    with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(sql.Identifier(STAGE))) as copy:
        copy.write(buf.getvalue().to_pybytes())
    first = datetime.fromtimestamp(int(t_us.min()) / 1e6, UTC).date()
    last = datetime.fromtimestamp(int(t_us.max()) / 1e6, UTC).date()
    conn.execute("SELECT riskatlas.ensure_observation_partitions(%s, %s)", (first, last))
    # a partitioned table returns no xmax, so corrections are counted by the history rows they made
    before = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) AS id FROM {}").format(
        relation("observation_history"))).fetchone()["id"]
    written = conn.execute(sql.SQL(
        """INSERT INTO {obs} AS t (station_key, parameter, observed_at, value, flag, owner_city, batch_id,
                                   updated_at, updated_by)
           SELECT station_key, parameter, timestamptz 'epoch' + t_us * interval '1 microsecond', value, flag,
                  owner_city, %(batch)s, clock_timestamp(), (SELECT riskatlas.acting_user())
           FROM {stage}
           ON CONFLICT (station_key, parameter, observed_at) DO UPDATE
               SET value = EXCLUDED.value, flag = EXCLUDED.flag, batch_id = EXCLUDED.batch_id,
                   updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
               WHERE (t.value, t.flag) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.flag)""").format(
        obs=relation("observation"), stage=sql.Identifier(STAGE)), {"batch": batch_id}).rowcount
    updated = conn.execute(sql.SQL("SELECT count(*) AS n FROM {} WHERE id > %s AND batch_id = %s").format(
        relation("observation_history")), (before, batch_id)).fetchone()["n"]
    return int(written) - int(updated), int(updated)


def _write_rejects(conn: psycopg.Connection, batch_id: int, rejects: list[Reject], batch: Batch) -> None:
    seen: set[tuple[int, str]] = set()
    with conn.cursor().copy(sql.SQL("COPY {} (batch_id, row_no, reason, field, record) FROM STDIN").format(
            relation("load_reject"))) as copy:
        for r in rejects:
            if (r.row_no, r.reason) in seen:
                continue
            seen.add((r.row_no, r.reason))
            copy.write_row((batch_id, r.row_no, r.reason, r.field,
                            json.dumps(batch.records(r.row_no), ensure_ascii=False, default=str)))


def _record_failure(conn: psycopg.Connection, source: str, sha: str, rows_in: int, actor: Actor, message: str) -> None:
    """Keep an audit row of the failed attempt; the observations are untouched."""
    try:
        with conn.transaction():
            db.act_as(conn, actor.context)
            conn.execute(sql.SQL("""INSERT INTO {} (layer, file_name, sha256, status, rows_in, as_city, finished_at,
                                    message) VALUES (%s, %s, %s, 'failed', %s, %s, clock_timestamp(), %s)""").format(
                relation("load_batch")), (LAYER, source, sha, rows_in, actor.city, message[:2000]))
    except psycopg.Error:
        conn.rollback()
