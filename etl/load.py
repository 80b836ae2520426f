"""Load a prepared table: COPY into staging, then one transaction that upserts by stable key.

The whole load commits or nothing does.  Loading the same file twice changes nothing (rows whose
values are unchanged are not touched, so no history is written).  City and county codes are
derived by point-in-polygon against ``admin_area``, never taken from the file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import shapely
from psycopg import sql

from etl.errors import InputError, LoadFailed
from etl.mapping import Mapping, load_mapping
from etl.normalise import Prepared, Reject, prepare
from etl.readers import read
from etl.report import LoadReport
from layers import db, grants
from layers.catalogue import BOUNDARY_PIECES, SCHEMA, Layer, get_layer, relation
from layers.settings import DatabaseSettings

Progress = Callable[[str, int, int], None]

# The region's envelope when admin_area is still empty (lon/lat, generous around the metro area).
DEFAULT_ENVELOPE = (114.5, 29.0, 122.5, 35.5)
# What boundary files are checked against (lon/lat): China's extent, islands of the South China Sea
# included.  Boundaries define the region, so the region's own envelope cannot bound them (it kept a
# national boundary file, or a second province, out).
CHINA_ENVELOPE = (73.0, 3.0, 135.5, 54.0)
NODE_SCALE = 1_000_000  # river nodes: endpoints snapped to 1e-6 degree (about 0.1 m)


@dataclass(frozen=True)
class Actor:
    """Who loads: a user name, a role ('admin' or 'steward') and, for a steward, the city.

    ``context`` is the signed request context the database issued for this actor (an API key's,
    from ``riskatlas.authenticate``): the load then runs as the application role and row-level
    security checks that context.  Without one the caller holds the owner's credentials (the CLI):
    an administrator's load runs as the owner, a steward's context is minted by the owner and the
    load itself still runs as the application role, so the policies apply exactly as to an upload.
    """

    user: str = "riskatlas"
    role: str = "admin"
    city: str | None = None
    context: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ("admin", "steward"):
            raise InputError(f"role was {self.role!r} but is expected to be 'admin' or 'steward'")
        if self.role == "steward" and not self.city:
            raise InputError("a steward load needs the steward's city code (--as-city)")

    @property
    def as_owner(self) -> bool:
        """True when the load runs with the owner's credentials (an administrator at the CLI)."""
        return self.context is None and self.role == "admin"


#: How long a context minted for a load at the command line lasts: its one transaction checks it at every
#: statement, and a million rows on a busy machine can take longer than the usual ten minutes.
LOAD_CONTEXT_TTL = timedelta(hours=2)


def _with_context(settings: DatabaseSettings, actor: Actor) -> Actor:
    """``actor`` with a signed context: the given one, or one minted with the owner's credentials."""
    if actor.context is not None:
        return actor
    with db.connect(settings) as owner:
        context = db.set_actor(owner, user=actor.user, role=actor.role, city=actor.city, ttl=LOAD_CONTEXT_TTL)
        owner.rollback()
    return replace(actor, context=context)


def load_file(settings: DatabaseSettings, path: str | Path, layer_name: str, *,
              mapping: str | Path | Mapping | None = None, crs: str | None = None,
              source_layer: str | None = None, dry_run: bool = False, actor: Actor = Actor(),
              progress: Progress | None = None, sandbox: bool = True) -> LoadReport:
    """Read, validate and load one file into a layer; return what happened to every row.

    ``sandbox`` parses the file in a separate unprivileged process (``etl.sandbox``); only a caller
    that wrote the file itself should turn it off.
    """
    path = Path(path)
    layer = get_layer(layer_name)
    step = progress or (lambda *_: None)
    m = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    step("read", 0, 1)
    raw = read(path, source_layer=source_layer, x=m.x, y=m.y, wkt=m.wkt, encoding=m.encoding, sandbox=sandbox)
    step("read", 1, 1)
    seconds["read"] = time.perf_counter() - t0
    as_owner = actor.as_owner
    # a client that dies (kill -9) is noticed by its backend within seconds, which then stops the load
    with db.connect(settings, "owner" if as_owner else "app",
                    options="-c client_connection_check_interval=2000") as conn:
        t0 = time.perf_counter()
        envelope = CHINA_ENVELOPE if layer.load_as == "boundaries" else region_envelope(conn)
        step("validate", 0, len(raw))
        prepared = prepare(raw, layer, m, crs=crs, envelope=envelope)
        step("validate", len(raw), len(raw))
        seconds["validate"] = time.perf_counter() - t0
        actor = _with_context(settings, actor)  # minted now, so reading and checking do not use up its time
        return _load(conn, path, prepared, dry_run=dry_run, actor=actor, step=step, as_owner=as_owner,
                     seconds=seconds)


def region_envelope(conn: psycopg.Connection) -> tuple[float, float, float, float]:
    """The bounding box of the loaded cities, 0.3° wider; a default box before boundaries exist."""
    row = conn.execute(sql.SQL("""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
        FROM (SELECT ST_Expand(ST_Extent(geom)::geometry, 0.3) AS e FROM {areas}
              WHERE level = 'city') s""").format(areas=relation("admin_area"))).fetchone()
    vals = list(row.values()) if isinstance(row, dict) else list(row or [])
    if not vals or vals[0] is None:
        return DEFAULT_ENVELOPE
    return tuple(float(v) for v in vals)  # type: ignore[return-value]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load(conn: psycopg.Connection, path: Path, p: Prepared, *, dry_run: bool, actor: Actor,
          step: Progress, as_owner: bool = False, seconds: dict[str, float] | None = None) -> LoadReport:
    layer = p.layer
    t0 = time.perf_counter()
    sha = file_sha256(path)
    report = LoadReport(file=str(path), layer=layer.name, sha256=sha, rows_in=p.rows_in, crs=p.crs,
                        repaired=p.repaired, repairs=list(p.repairs), notes=list(p.notes), dry_run=dry_run,
                        seconds=dict(seconds or {}))

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        report.seconds[name] = round(report.seconds.get(name, 0.0) + now - t0, 3)
        t0 = now
    try:
        with conn.transaction():
            db.act_as(conn, actor.context)
            batch_id = conn.execute(
                sql.SQL("""INSERT INTO {batches} (layer, file_name, sha256, status, rows_in, as_city)
                    VALUES (%s, %s, %s, 'committed', %s, %s) RETURNING id""").format(batches=relation("load_batch")),
                (layer.name, path.name, sha, p.rows_in, actor.city)).fetchone()["id"]
            conn.execute("SELECT set_config('riskatlas.batch_id', %s, true)", (str(batch_id),))
            step("stage", 0, len(p.frame))
            columns = _stage(conn, p)
            step("stage", len(p.frame), len(p.frame))
            lap("stage")
            rejects = list(p.rejects)
            if layer.jurisdiction:
                rejects += _assign_jurisdiction(conn, layer, actor, report, p)
                lap("jurisdiction")
            step("upsert", 0, 1)
            if layer.load_as == "boundaries":
                inserted, updated = _upsert_boundaries(conn, layer)
            else:
                with _bulk_indexes(conn, layer, as_owner):
                    inserted, updated = _upsert(conn, layer, columns)
            step("upsert", 1, 1)
            lap("upsert")
            staged = conn.execute("SELECT count(*) AS n FROM stage").fetchone()["n"]
            report.batch_id = batch_id
            report.rows_inserted, report.rows_updated = inserted, updated
            report.rows_unchanged = staged - inserted - updated
            report.rejects = sorted(rejects, key=lambda r: (r.row_no, r.reason))
            report.rows_rejected = len({r.row_no for r in rejects})
            report.status = _status(report)
            _write_rejects(conn, batch_id, report.rejects, p)
            conn.execute(
                sql.SQL("""UPDATE {batches} SET status = %s, finished_at = clock_timestamp(),
                       rows_inserted = %s, rows_updated = %s, rows_unchanged = %s, rows_rejected = %s
                    WHERE id = %s""").format(batches=relation("load_batch")),
                (report.status if not dry_run else "dry-run", inserted, updated, report.rows_unchanged,
                 report.rows_rejected, batch_id))
            if dry_run:
                raise _DryRun
    except _DryRun:
        report.batch_id = None
        lap("bookkeeping")
        return report
    except psycopg.Error as exc:
        conn.rollback()
        message = exc.diag.message_primary or str(exc).splitlines()[0]
        _record_failure(conn, layer, path, sha, p.rows_in, actor, message)
        raise LoadFailed(f"file {path.name}: load into {layer.name} failed and was rolled back: {message}") from None
    lap("bookkeeping")  # the rejects, the batch row and the commit
    conn.execute(sql.SQL("ANALYZE {}").format(relation(layer.name)))
    conn.commit()
    lap("analyze")
    return report


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back after counting."""


def _status(report: LoadReport) -> str:
    loaded = report.rows_inserted + report.rows_updated + report.rows_unchanged
    if report.rows_rejected and loaded == 0:
        return "rejected"
    return "partial" if report.rows_rejected else "committed"


def _record_failure(conn: psycopg.Connection, layer: Layer, path: Path, sha: str, rows_in: int,
                    actor: Actor, message: str) -> None:
    """Keep an audit row of the failed attempt; the data tables are untouched."""
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("""INSERT INTO {batches} (layer, file_name, sha256, status, rows_in, as_city,
                        finished_at, message) VALUES (%s, %s, %s, 'failed', %s, %s, clock_timestamp(), %s)"""
                        ).format(batches=relation("load_batch")),
                (layer.name, path.name, sha, rows_in, actor.city, message[:2000]))
    except psycopg.Error:
        conn.rollback()


def _stage_columns(layer: Layer, frame: pd.DataFrame) -> list[tuple[str, str]]:
    cols = [("key", "text")]
    for f in layer.fields:
        if f.name != "key" and f.name in frame and not f.derived:
            cols.append((f.name, f.sql_type))
    return cols


def _stage(conn: psycopg.Connection, p: Prepared) -> list[str]:
    """COPY the clean rows into a temporary staging table; return the layer columns staged."""
    cols = _stage_columns(p.layer, p.frame)
    ddl = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in cols)
    conn.execute(sql.SQL("CREATE TEMP TABLE stage (row_no integer PRIMARY KEY, {}, geom geometry(Geometry, 4326)) "
                         "ON COMMIT DROP").format(ddl))
    arrays = {"row_no": pa.array(p.frame.index.to_numpy(dtype="int64"))}
    for c, t in cols:
        s = p.frame[c]
        if t == "jsonb":
            s = s.map(lambda v: json.dumps(v, ensure_ascii=False) if v is not None else None,
                      na_action="ignore")
            arrays[c] = pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.string())
        else:
            arrays[c] = pa.array(s, from_pandas=True)
    geoms = shapely.set_srid(p.geometry.astype(object), 4326)
    arrays["geom"] = pa.array(shapely.to_wkb(geoms, hex=True, include_srid=True) if len(geoms) else [],
                              type=pa.string())
    table = pa.table(arrays)
    copy_sql = sql.SQL("COPY stage ({}) FROM STDIN (FORMAT csv)").format(
        sql.SQL(", ").join(map(sql.Identifier, table.column_names)))
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    with conn.cursor().copy(copy_sql) as copy:
        for start in range(0, table.num_rows, 200_000):
            buf = pa.BufferOutputStream()
            pa_csv.write_csv(table.slice(start, 200_000), buf, options)
            copy.write(buf.getvalue().to_pybytes())
    conn.execute("ANALYZE stage")
    return [c for c, _ in cols]


def _assign_jurisdiction(conn: psycopg.Connection, layer: Layer, actor: Actor, report: LoadReport,
                         p: Prepared) -> list[Reject]:
    """Derive city and county by point-in-polygon; reject rows a steward may not write."""
    point = "geom" if layer.geometry_type == "Point" else "ST_PointOnSurface(geom)"
    probe = sql.SQL(point.replace("geom", "s.geom"))
    stated_owner = "owner_city" in _staged(conn)
    # A row's owner is the city it lies in. Only an administrator may record another owner (a joint
    # arrangement, e.g. a city's water-source zone that reaches into its neighbour); a steward's file
    # cannot place a row in another city's care, nor claim a row lying in another city.
    owner = sql.SQL("coalesce(s.owner_city, k.city_code)" if stated_owner and actor.role == "admin"
                    else "k.city_code")
    # One set-based join against the subdivided counties, driven from the pieces through an index on
    # the staged geometries so PostGIS reuses each piece's prepared geometry; a point on a shared edge
    # takes the lower code.
    conn.execute(sql.SQL("CREATE INDEX ON stage USING gist (({}))").format(sql.SQL(point)))
    conn.execute("ANALYZE stage")
    conn.execute(sql.SQL("""CREATE TEMP TABLE juris ON COMMIT DROP AS
        SELECT s.row_no, k.county_code, k.city_code, {owner} AS owner_city
        FROM stage s LEFT JOIN (
            SELECT DISTINCT ON (s.row_no) s.row_no, p.code AS county_code, a.parent_code AS city_code
            FROM stage s
            JOIN {pieces} p ON p.level = 'county' AND ST_Intersects(p.geom, {probe})
            JOIN {areas} a ON a.code = p.code
            ORDER BY s.row_no, p.code) k USING (row_no)""").format(
        owner=owner, probe=probe, pieces=relation(BOUNDARY_PIECES), areas=relation("admin_area")))
    conn.execute("ALTER TABLE juris ADD PRIMARY KEY (row_no)")
    outside = conn.execute("SELECT count(*) AS n FROM juris WHERE county_code IS NULL").fetchone()["n"]
    if outside:
        report.notes.append(f"{outside} rows lie in no county of the region; their city and county codes "
                            "are empty")
    if stated_owner:
        differ = conn.execute("""SELECT s.row_no, s.owner_city AS file_says, j.city_code AS lies_in
            FROM stage s JOIN juris j USING (row_no)
            WHERE s.owner_city IS NOT NULL AND s.owner_city IS DISTINCT FROM j.city_code
            ORDER BY s.row_no""").fetchall()
        for r in differ:
            report.disagreements.append({"row_no": int(r["row_no"]), "field": "owner_city",
                                         "file_says": r["file_says"], "location_in": r["lies_in"]})
        if differ and actor.role == "admin":
            report.notes.append(f"{len(differ)} rows are owned by another city than the one they lie in, as the "
                                "file states (an administrator's joint arrangement)")
        elif differ:
            report.notes.append(f"{len(differ)} rows state an owner city other than the city they lie in; a "
                                "steward's rows belong to the city they lie in")
    rejects: list[Reject] = []
    if actor.role == "steward":
        rows = conn.execute(sql.SQL("""SELECT s.row_no, j.owner_city AS city, t.owner_city AS existing
            FROM stage s JOIN juris j USING (row_no) LEFT JOIN {table} t ON t.key = s.key
            WHERE j.owner_city IS DISTINCT FROM %s OR t.owner_city IS DISTINCT FROM NULL
              AND t.owner_city <> %s""").format(table=relation(layer.name)), (actor.city, actor.city)).fetchall()
        for r in rows:
            if r["existing"] and r["existing"] != actor.city:
                why = f"key exists in city {r['existing']}'s inventory; a steward of {actor.city} may not change it"
            else:
                why = (f"row belongs to city {r['city'] or '(none)'}; a steward of {actor.city} may only load "
                       f"{actor.city}'s rows")
            rejects.append(Reject(r["row_no"], why, "owner_city"))
        if rows:
            gone = [r["row_no"] for r in rows]
            conn.execute("DELETE FROM stage WHERE row_no = ANY(%s)", (gone,))
    if p.claimed_city is not None and len(p.claimed_city):
        claimed = pd.DataFrame({"row_no": p.claimed_city.index.astype("int64"),
                                "code": p.claimed_city.to_numpy()})
        found = conn.execute("SELECT row_no, city_code, county_code FROM juris WHERE row_no = ANY(%s)",
                             (claimed["row_no"].tolist(),)).fetchall()
        derived = {r["row_no"]: (r["city_code"], r["county_code"]) for r in found}
        for row_no, code in zip(claimed["row_no"], claimed["code"]):
            if code is None or pd.isna(code) or row_no not in derived:
                continue
            code = str(code).strip()
            if code and code not in derived[row_no]:
                report.disagreements.append(
                    {"row_no": int(row_no), "file_says": code, "location_in": derived[row_no][1]})
    return rejects


def _staged(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("""SELECT attname FROM pg_attribute WHERE attrelid = 'pg_temp.stage'::regclass
                           AND attnum > 0 AND NOT attisdropped""").fetchall()
    return {r["attname"] for r in rows}


def _upsert(conn: psycopg.Connection, layer: Layer, columns: list[str]) -> tuple[int, int]:
    """One set-based upsert by key; unchanged rows are left alone.  Returns (inserted, updated)."""
    ident = sql.Identifier
    data = [c for c in columns if c not in ("key", "owner_city")]
    target = ["key", *data]
    select: list[sql.Composable] = [sql.SQL("s.{}").format(ident(c)) for c in target]
    source = sql.SQL("stage s")
    if layer.jurisdiction:
        target += ["city_code", "county_code"]
        select += [sql.SQL("j.city_code"), sql.SQL("j.county_code")]
        source = sql.SQL("stage s JOIN juris j USING (row_no)")
    if layer.owned:
        target.append("owner_city")
        select.append(sql.SQL("j.owner_city" if layer.jurisdiction else "s.owner_city"))
    if layer.network:
        target += ["from_node", "to_node"]
        select += [sql.SQL(_node_sql("ST_StartPoint(s.geom)")), sql.SQL(_node_sql("ST_EndPoint(s.geom)"))]
    target += ["geom", "batch_id", "updated_by"]
    select += [sql.SQL("ST_Multi(s.geom)" if layer.geometry_type == "MultiPolygon" else "s.geom"),
               sql.SQL("current_setting('riskatlas.batch_id')::bigint"),
               sql.SQL("(SELECT {}.acting_user())").format(ident(SCHEMA))]  # once, not per row
    compare = [c for c in target if c not in ("key", "batch_id", "updated_by")]
    # An UPDATE of the rows that changed, then an INSERT of the new keys, rather than INSERT .. ON
    # CONFLICT: the application role may not read the restricted columns of the table (nor, through
    # EXCLUDED, write-compare them), so the current values are read through the view that shows
    # them to the verified actor, and each row's change is decided before it is written.
    table = relation(layer.name)
    current = relation(f"{layer.name}_visible") if layer.name in grants.restricted_columns() else table
    named = sql.SQL(", ").join(sql.SQL("{} AS {}").format(e, ident(c)) for e, c in zip(select, target))
    cols = sql.SQL(", ").join(map(ident, target))

    def listed(alias: str) -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL("{}.{}").format(ident(alias), ident(c)) for c in compare)

    conn.execute(sql.SQL("CREATE TEMP TABLE upsert_rows ON COMMIT DROP AS SELECT {} FROM {}").format(named, source))
    conn.execute("CREATE UNIQUE INDEX ON upsert_rows (key)")
    conn.execute("ANALYZE upsert_rows")
    sets = sql.SQL(", ").join(sql.SQL("{c} = u.{c}").format(c=ident(c)) for c in target if c != "key")
    updated = conn.execute(sql.SQL("""UPDATE {table} AS t SET {sets}, updated_at = now()
        FROM upsert_rows u WHERE t.key = u.key AND NOT EXISTS (
            SELECT 1 FROM {current} v WHERE v.key = u.key AND ({old}) IS NOT DISTINCT FROM ({new}))""").format(
        table=table, sets=sets, current=current, old=listed("v"), new=listed("u"))).rowcount
    inserted = conn.execute(sql.SQL("""INSERT INTO {table} ({cols}) SELECT {cols} FROM upsert_rows u
        WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.key = u.key)""").format(table=table, cols=cols)).rowcount
    return int(inserted), int(updated)


BULK_ROWS = 50_000


@contextmanager
def _bulk_indexes(conn: psycopg.Connection, layer: Layer, as_owner: bool) -> Iterator[None]:
    """Into an empty table, a large load drops the secondary indexes and builds them once after.

    Building an index over a million rows is several times faster than maintaining it row by row.
    It runs inside the load's transaction, so a failure restores the indexes with everything else.
    """
    staged = conn.execute("SELECT count(*) AS n FROM stage").fetchone()["n"]
    empty = conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {}) AS e").format(relation(layer.name))
                         ).fetchone()["e"]
    if not as_owner or staged < BULK_ROWS or not empty:
        yield
        return
    with db.indexes_rebuilt_after(conn, layer.table):
        yield


def _node_sql(point: str) -> str:
    return (f"(round(ST_X({point}) * {NODE_SCALE})::bigint * 100000000"
            f" + round(ST_Y({point}) * {NODE_SCALE})::bigint)")


def _upsert_boundaries(conn: psycopg.Connection, layer: Layer) -> tuple[int, int]:
    """Upsert boundaries by their id field (the code) and rebuild the subdivided pieces used for point-in-polygon."""
    conn.execute("SET CONSTRAINTS ALL DEFERRED")
    others = [f.name for f in layer.input_fields if f.name != layer.id_field]
    target = [layer.id_field, *others, "geom"]
    table = relation(layer.name)
    ident = sql.Identifier
    row = conn.execute(sql.SQL("""WITH up AS (
            INSERT INTO {table} AS t ({target})
            SELECT s.key, {others_s}, ST_Multi(s.geom) FROM stage s
            ON CONFLICT ({id}) DO UPDATE SET {assign}, updated_at = now()
            WHERE ({t_cols}) IS DISTINCT FROM ({x_cols})
            RETURNING (xmax = 0) AS inserted)
        SELECT count(*) FILTER (WHERE inserted) AS ins, count(*) FILTER (WHERE NOT inserted) AS upd
        FROM up""").format(
        table=table, target=sql.SQL(", ").join(map(ident, target)), id=ident(layer.id_field),
        others_s=sql.SQL(", ").join(sql.SQL("s.{}").format(ident(c)) for c in others),
        assign=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=ident(c)) for c in [*others, "geom"]),
        t_cols=sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in [*others, "geom"]),
        x_cols=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(ident(c)) for c in [*others, "geom"]),
    )).fetchone()
    if row["ins"] or row["upd"]:
        pieces = relation(BOUNDARY_PIECES)
        conn.execute(sql.SQL("DELETE FROM {}").format(pieces))
        conn.execute(sql.SQL("INSERT INTO {pieces} (code, level, geom) SELECT {id}, level, ST_Subdivide(geom, 64) "
                             "FROM {table}").format(pieces=pieces, id=ident(layer.id_field), table=table))
        conn.execute(sql.SQL("ANALYZE {}").format(pieces))
    return int(row["ins"]), int(row["upd"])


def _write_rejects(conn: psycopg.Connection, batch_id: int, rejects: list[Reject], p: Prepared) -> None:
    if not rejects:
        return
    src = p.source_records
    seen: set[tuple[int, str]] = set()
    copy_sql = sql.SQL("COPY {} (batch_id, row_no, reason, field, record) FROM STDIN").format(relation("load_reject"))
    with conn.cursor().copy(copy_sql) as copy:
        for r in rejects:
            if (r.row_no, r.reason) in seen:
                continue
            seen.add((r.row_no, r.reason))
            record = None
            if src is not None and r.row_no in src.index:
                record = json.dumps({k: _jsonable(v) for k, v in src.loc[r.row_no].items()}, ensure_ascii=False)
            copy.write_row((batch_id, r.row_no, r.reason, r.field, record))


def _jsonable(v: object) -> object:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (str, int, float, bool, list, dict)):
        return v
    return str(v)
