"""Refresh the hazard flags: in full, or incrementally after a load touched some rows.

A refresh runs in one transaction under an advisory lock (two loads finishing together refresh one
after the other), first makes the derived borders current (:mod:`services.hazards.borders`), then for
each kind deletes the flags of the sources in scope and inserts them again with one set-based statement
(:mod:`services.hazards.kinds`).  Each refresh leaves a row in ``hazard_refresh``.

What a load of each layer re-examines (:func:`refresh_after_load`):

* ``risk_source`` -- every kind, for the sources the batch inserted or updated;
* ``protection_zone`` / ``protected_area`` -- that kind, for the sources near the batch's zones or areas
  and those flagged by them before (a zone that moved away releases its flags);
* ``river`` -- the upstream kind for every source (a reach anywhere changes walks everywhere);
* ``admin_area`` -- the borders, then everything (cities and neighbours may have changed).

Refreshes write derived tables, so they connect as the schema owner, like the loads of the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from layers import db
from layers.catalogue import LAYERS, SCHEMA, get_layer
from layers.settings import DatabaseSettings
from services.hazards import kinds as sql
from services.hazards.borders import ensure_borders
from services.hazards.rules import BORDER_KINDS, KINDS, HazardRules, load_rules

#: Layers whose loads change flags, and the kinds they touch.
LAYER_KINDS: dict[str, tuple[str, ...]] = {
    "risk_source": KINDS,
    "protection_zone": ("protection-zone",),
    "protected_area": ("protected-area",),
    "river": ("upstream",),
    "admin_area": KINDS,
}
_stale = {name for name, layer in LAYERS.items() if "flags" in layer.invalidates}
if set(LAYER_KINDS) != _stale:
    raise RuntimeError(f"hazard kinds are out of step with the catalogue's invalidates: {sorted(set(LAYER_KINDS) ^ _stale)}")
_FEATURE_LAYERS = {"protection_zone": "protection-zone", "protected_area": "protected-area"}
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('riskatlas.hazard_refresh'))"


@dataclass
class RefreshReport:
    """What a refresh did: mode, trigger, kinds, sources re-examined, flags deleted and written."""

    mode: str
    kinds: list[str]
    layer: str | None = None
    batch_id: int | None = None
    sources: int = 0
    flags_deleted: int = 0
    flags_written: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds_by_kind: dict[str, float] = field(default_factory=dict)
    borders: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    refresh_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refresh_full(settings: DatabaseSettings, rules: HazardRules | None = None) -> RefreshReport:
    """Recompute every flag of every source (and the borders if the boundaries changed)."""
    rules = rules or load_rules()
    with db.transaction(settings) as conn:
        return run(conn, rules, kinds=KINDS, scope=None, mode="full")


def refresh_after_load(settings: DatabaseSettings, layer: str, batch_id: int | None,
                       rules: HazardRules | None = None) -> RefreshReport | None:
    """The incremental refresh a committed load of ``layer`` calls for; None if the layer has no flags.

    Only the rows the batch inserted or updated (those carrying its ``batch_id``) count as touched.
    """
    if layer not in LAYER_KINDS or batch_id is None:
        return None
    rules = rules or load_rules()
    with db.transaction(settings) as conn:
        return refresh_batch_in(conn, rules, layer, batch_id)


def refresh_batch(settings: DatabaseSettings, batch_id: int, rules: HazardRules | None = None) -> RefreshReport | None:
    """The incremental refresh for an earlier load, found by its batch id; LookupError if unknown."""
    with db.connect(settings) as conn:
        row = conn.execute(f"SELECT layer FROM {SCHEMA}.load_batch WHERE id = %s", (batch_id,)).fetchone()
    if row is None:
        raise LookupError(f"batch {batch_id} is not a recorded load (see riskatlas.load_batch)")
    return refresh_after_load(settings, row["layer"], batch_id, rules)


def refresh_batch_in(conn: psycopg.Connection, rules: HazardRules, layer: str, batch_id: int) -> RefreshReport:
    """Incremental refresh for one batch, inside the caller's transaction."""
    kinds = LAYER_KINDS[layer]
    if get_layer(layer).load_as == "boundaries":  # cities and borders may have moved: everything is recomputed
        return run(conn, rules, kinds=kinds, scope=None, mode="full", layer=layer, batch_id=batch_id)
    if get_layer(layer).network:
        return run(conn, rules, kinds=kinds, scope=None, mode="incremental", layer=layer, batch_id=batch_id)
    if layer == "risk_source":
        if _mostly(conn, batch_id):  # a bulk load: the parallel full refresh is quicker than a scoped one
            return run(conn, rules, kinds=kinds, scope=None, mode="full", layer=layer, batch_id=batch_id)
        scope = (f"SELECT id FROM {SCHEMA}.risk_source WHERE batch_id = %(batch)s", {"batch": batch_id})
    else:
        scope = _feature_scope(layer, rules, batch_id)
    return run(conn, rules, kinds=kinds, scope=scope, mode="incremental", layer=layer, batch_id=batch_id)


def _mostly(conn: psycopg.Connection, batch_id: int) -> bool:
    """True when the batch touched at least half of the risk sources (and more than 10,000)."""
    row = conn.execute(f"""SELECT count(*) FILTER (WHERE batch_id = %s) AS touched, count(*) AS total
                           FROM {SCHEMA}.risk_source""", (batch_id,)).fetchone()
    return row["touched"] > 10_000 and 2 * row["touched"] >= row["total"]


def _feature_scope(layer: str, rules: HazardRules, batch_id: int) -> tuple[str, dict[str, Any]]:
    """Sources near the batch's features now, and sources flagged by those features before."""
    kind = _FEATURE_LAYERS[layer]
    return (f"""
        SELECT s.id
        FROM {SCHEMA}.risk_source s
        JOIN {SCHEMA}.{layer} f ON f.batch_id = %(batch)s
             AND ST_DWithin(s.geom::geography, f.geom::geography, %(max_m)s)
        UNION
        SELECT h.source_id
        FROM {SCHEMA}.hazard_flag h
        JOIN {SCHEMA}.{layer} f ON f.batch_id = %(batch)s AND f.key = h.feature_key
        WHERE h.kind = %(kind)s""", {"batch": batch_id, "max_m": rules.max_threshold(kind), "kind": kind})


def run(conn: psycopg.Connection, rules: HazardRules, *, kinds: tuple[str, ...],
        scope: tuple[str, dict[str, Any]] | None, mode: str, layer: str | None = None,
        batch_id: int | None = None) -> RefreshReport:
    """Recompute ``kinds`` for the sources selected by ``scope`` (SQL returning ids; None: all sources).

    Runs inside the caller's transaction; the temporary tables it creates are dropped at commit.
    """
    started = time.perf_counter()
    conn.execute(_LOCK)
    conn.execute("SET LOCAL work_mem = '256MB'")  # the per-kind sorts of a full refresh stay in memory
    report = RefreshReport(mode=mode, kinds=list(kinds), layer=layer, batch_id=batch_id)
    if any(k in BORDER_KINDS for k in kinds):
        report.borders = [asdict(b) for b in ensure_borders(conn, rules.border_snap_tolerance_m,
                                                            rules.border_piece_vertices)]
    scoped = scope is not None
    if scoped:
        conn.execute("DROP TABLE IF EXISTS hz_scope")
        conn.execute(f"CREATE TEMP TABLE hz_scope ON COMMIT DROP AS SELECT DISTINCT id FROM ({scope[0]}) x",
                     scope[1])
        conn.execute("ALTER TABLE hz_scope ADD PRIMARY KEY (id)")
        conn.execute("ANALYZE hz_scope")
        report.sources = _count(conn, "SELECT count(*) AS n FROM hz_scope")
    else:
        report.sources = _count(conn, f"SELECT count(*) AS n FROM {SCHEMA}.risk_source")
    report.flags_deleted = _delete(conn, kinds, scoped)
    if report.sources:
        deg_per_m = sql.prepare(conn, kinds)
        with _bulk(conn, enabled=not scoped and set(kinds) == set(KINDS)):
            for kind in kinds:
                t0 = time.perf_counter()
                n = _insert_kind(conn, sql.params(rules, kind, batch_id, deg_per_m), kind, scoped)
                report.by_kind[kind] = n
                report.seconds_by_kind[kind] = round(time.perf_counter() - t0, 3)
                report.flags_written += n
    conn.execute(f"ANALYZE {SCHEMA}.hazard_flag")
    report.seconds = round(time.perf_counter() - started, 3)
    report.refresh_id = conn.execute(
        f"""INSERT INTO {SCHEMA}.hazard_refresh (mode, layer, batch_id, kinds, sources, flags_deleted,
                flags_written, rules_sha256, finished_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp()) RETURNING id""",
        (mode, layer, batch_id, list(kinds), report.sources, report.flags_deleted, report.flags_written,
         rules.sha256)).fetchone()["id"]
    return report


def _insert_kind(conn: psycopg.Connection, p: dict[str, Any], kind: str, scoped: bool) -> int:
    """A kind's statements into temporary tables first (they may run in parallel; an INSERT into
    hazard_flag never does), then the flags from its candidates."""
    if kind == "upstream":
        sql.prepare_upstream(conn, p, scoped)
    for step in sql.steps(kind, scoped):
        sql.run_step(conn, step, p)
    return conn.execute(sql.insert_flags(kind, "hz_candidate"), p).rowcount


@contextmanager
def _bulk(conn: psycopg.Connection, enabled: bool) -> Iterator[None]:
    """Into the emptied table of a full refresh: drop the secondary indexes and foreign keys, then
    rebuild them once after the inserts (several times faster than maintaining them row by row).

    Inside the refresh's transaction, so a failure restores them with everything else.
    """
    if not enabled:
        yield
        return
    with db.indexes_rebuilt_after(conn, f"{SCHEMA}.hazard_flag"):
        yield


def _delete(conn: psycopg.Connection, kinds: tuple[str, ...], scoped: bool) -> int:
    """Remove the flags about to be recomputed; a full refresh of every kind truncates."""
    if scoped:
        return conn.execute(f"""DELETE FROM {SCHEMA}.hazard_flag f USING hz_scope sc
                                WHERE f.source_id = sc.id AND f.kind = ANY(%s)""", (list(kinds),)).rowcount
    if set(kinds) == set(KINDS):
        n = _count(conn, f"SELECT count(*) AS n FROM {SCHEMA}.hazard_flag")
        conn.execute(f"TRUNCATE {SCHEMA}.hazard_flag")
        return n
    return conn.execute(f"DELETE FROM {SCHEMA}.hazard_flag WHERE kind = ANY(%s)", (list(kinds),)).rowcount


def _count(conn: psycopg.Connection, query: str) -> int:
    return int(conn.execute(query).fetchone()["n"])
