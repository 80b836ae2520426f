"""Backups of the project's own cluster with PostgreSQL's own tools, and point-in-time restore.

- a **base backup** is ``pg_basebackup`` (plain format, with the WAL it needs) into
  ``<backup folder>/base/<name>``; the server's ``archive_command`` (``layers.cluster``) copies every
  finished WAL segment into ``<backup folder>/wal``. Together they restore the cluster to any moment
  after the base backup ended.
- a **logical dump** is ``pg_dump -Fc`` of the database into ``<backup folder>/logical/<name>.dump``,
  for moving the data to another PostgreSQL version (physical backups only restore into the same one).
- a **restore** copies the newest base backup that ends before the target into a NEW data folder, lets
  PostgreSQL replay the archived WAL with ``restore_command`` up to ``recovery_target_time`` or
  ``recovery_target_lsn`` (``recovery_target_inclusive = false``: stop just before it) and promote,
  then switches the project's cluster to that folder; the old data folder is kept beside it.

Nothing here copies, parses or replays WAL itself: PostgreSQL does all of it.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row, tuple_row

from layers import cluster, db
from layers.cluster import ClusterError, ClusterPaths
from layers.settings import DatabaseSettings

META = "riskatlas-backup.json"
CST = timezone(timedelta(hours=8))  # times written without a zone are China Standard Time
ARCHIVE_WAIT_S = 30.0
RECOVERY_WAIT_S = 600.0


class BackupError(ClusterError):
    """A backup or a restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """Where a restore stops: just before ``lsn``, or just before the first commit at ``time``."""

    time: datetime | None = None
    lsn: str | None = None
    why: str = ""


# -- the folder ---------------------------------------------------------------------------------------


def folder_problem(settings: DatabaseSettings, need_bytes: int = 0) -> str | None:
    """Why the backup folder cannot take ``need_bytes`` more (missing, not writable, full), or None."""
    root = cluster.backup_root(settings)
    if not root.is_dir():
        return f"the backup folder {root} does not exist (is its volume mounted?)"
    probe = cluster._as_postgres(["test", "-w", str(root), "-a", "-x", str(root)])
    if probe.returncode != 0:
        return f"the backup folder {root} is not writable by the postgres user"
    free = shutil.disk_usage(root).free
    reserve = settings.backup_reserve_mb * 1024**2
    if free < need_bytes + reserve:
        return (f"the backup folder {root} is full: {_mib(free)} free, the backup needs about "
                f"{_mib(need_bytes)} plus the reserve of {_mib(reserve)} (backup_reserve_mb)")
    return None


def archive_state(settings: DatabaseSettings) -> dict[str, Any]:
    """The server's archiver statistics, and whether archiving is failing now (with the log's reason)."""
    row = _sql_row(settings, """SELECT archived_count, last_archived_wal, last_archived_time, failed_count,
        last_failed_wal, last_failed_time FROM pg_stat_archiver""")
    keys = ("archived_count", "last_archived_wal", "last_archived_time", "failed_count", "last_failed_wal",
            "last_failed_time")
    state: dict[str, Any] = dict(zip(keys, row, strict=True))
    failing = bool(state["last_failed_time"]) and (not state["last_archived_time"]
                                                 or state["last_failed_time"] > state["last_archived_time"])
    state["failing"] = failing
    if failing:
        state["reason"] = _last_archive_complaint(settings)
    return state


def _last_archive_complaint(settings: DatabaseSettings) -> str:
    log = cluster.paths(settings).log
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if "riskatlas archive:" in ln]
    except FileNotFoundError:
        return "see the server log"
    return lines[-1].split("riskatlas archive:", 1)[1].strip() if lines else "see the server log"


def wait_archived(settings: DatabaseSettings, timeout_s: float = ARCHIVE_WAIT_S) -> str:
    """Close the current WAL segment and wait until the archive holds it; return its name.

    Raises :class:`BackupError` with the archive's complaint when it does not arrive in time.
    """
    # a record first, so that there is a segment to switch (an idle server's switch is a no-op) and the
    # archive is really tried now, not judged by an earlier success
    segment = _sql_row(settings, "SELECT pg_walfile_name(pg_switch_wal()) "
                                 "FROM (SELECT pg_logical_emit_message(false, 'riskatlas', 'archive check')) m")[0]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (cluster.wal_archive(settings) / segment).exists():
            return segment
        state = archive_state(settings)
        if state["failing"] and state["last_failed_wal"] == segment:
            break
        time.sleep(0.2)
    state = archive_state(settings)
    reason = state.get("reason") or "it did not arrive in time"
    raise BackupError(f"WAL archiving is failing: {reason}. The primary keeps serving (the WAL waits in "
                      f"pg_wal and is archived once the folder is fixed), but no backup was taken: a base "
                      f"backup without the WAL after it cannot restore to a point in time")


# -- taking backups -----------------------------------------------------------------------------------


def base_backup(settings: DatabaseSettings) -> dict[str, Any]:
    """Take a base backup with ``pg_basebackup`` into the backup folder; return what was written."""
    _require_managed(settings)
    size = int(_sql_row(settings, "SELECT sum(pg_database_size(oid)) FROM pg_database")[0])
    if problem := folder_problem(settings, size):
        raise BackupError(problem)
    keep = cluster.wal_archive(settings) / ".keep"  # from now on the archive keeps WAL (layers.cluster)
    if not keep.exists() and cluster._as_postgres(["touch", str(keep)]).returncode != 0:
        raise BackupError(f"the WAL archive folder {keep.parent} is missing or not writable by the postgres user")
    wait_archived(settings)  # the archive works now: the backup will be restorable to later points
    name = _stamp()
    base = cluster.backup_root(settings) / "base"
    _mkdir_postgres(base)
    partial = base / f"{name}.partial"
    p = cluster.paths(settings)
    started = datetime.now(UTC)
    done = cluster._as_postgres([str(cluster.bin_dir(settings) / "pg_basebackup"), "-D", str(partial), "-Fp",
                                 "-X", "stream", "-c", "fast", "-h", str(p.socket_dir), "-p", str(settings.pg_port),
                                 "-U", "postgres", "-w", "-l", f"riskatlas {name}"])
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no message"
        if "No space left" in done.stderr:
            raise BackupError(f"the backup folder {base} is full: pg_basebackup stopped ({message}); "
                              "the partial backup was removed")
        raise BackupError(f"pg_basebackup failed: {message}; the partial backup was removed")
    manifest = json.loads((partial / "backup_manifest").read_text())
    wal = manifest["WAL-Ranges"][0]
    meta = {"kind": "base", "name": name, "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(), "timeline": int(wal["Timeline"]),
            "start_lsn": wal["Start-LSN"], "end_lsn": wal["End-LSN"], "pg_version": settings.pg_version,
            "system_identifier": _system_identifier(settings)}
    (partial / META).write_text(json.dumps(meta, indent=2))
    final = base / name
    partial.rename(final)
    removed = prune(settings)
    return {**meta, "path": str(final), "bytes": _size(final), "removed": removed}


def prune(settings: DatabaseSettings) -> list[str]:
    """Keep the newest ``backup_keep`` base backups; remove older ones and, with ``pg_archivecleanup``,
    the archived WAL from before the oldest one kept. Returns the base backups removed."""
    backups = base_backups(settings)
    old, kept = backups[:-settings.backup_keep], backups[-settings.backup_keep:]
    for b in old:
        shutil.rmtree(b["path"], ignore_errors=True)
    if kept:
        oldest = kept[0]
        lsn = _lsn(oldest["start_lsn"])
        first = f"{oldest['timeline']:08X}{lsn >> 32:08X}{(lsn & 0xFFFFFFFF) >> 24:08X}"
        done = cluster._as_postgres([str(cluster.bin_dir(settings) / "pg_archivecleanup"),
                                     str(cluster.wal_archive(settings)), first])
        if done.returncode != 0:
            raise BackupError(f"pg_archivecleanup failed: {done.stderr.strip()}")
    return [b["name"] for b in old]


def logical_dump(settings: DatabaseSettings) -> dict[str, Any]:
    """Dump the database with ``pg_dump -Fc`` (for another PostgreSQL version); return what was written."""
    _require_managed(settings)
    size = int(_sql_row(settings, "SELECT pg_database_size(current_database())", db=settings.db_name)[0])
    if problem := folder_problem(settings, size):
        raise BackupError(problem)
    folder = cluster.backup_root(settings) / "logical"
    _mkdir_postgres(folder)
    name = f"{_stamp()}-{settings.db_name}"
    target = folder / f"{name}.dump"
    p = cluster.paths(settings)
    started = datetime.now(UTC)
    done = cluster._as_postgres([str(cluster.bin_dir(settings) / "pg_dump"), "-Fc", "-f", str(target),
                                 "-h", str(p.socket_dir), "-p", str(settings.pg_port), "-U", "postgres", "-w",
                                 settings.db_name])
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no message"
        full = " (the folder is full)" if "No space left" in done.stderr else ""
        raise BackupError(f"pg_dump failed{full}: {message}; the partial dump was removed")
    return {"kind": "logical", "name": name, "database": settings.db_name, "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(), "path": str(target), "bytes": target.stat().st_size,
            "pg_version": settings.pg_version,
            "restore_with": f"pg_restore --create -d postgres {target}"}


# -- what exists --------------------------------------------------------------------------------------


def inventory(settings: DatabaseSettings) -> dict[str, Any]:
    """The base backups, logical dumps and WAL archive in the backup folder: how old, how big."""
    root = cluster.backup_root(settings)
    now = datetime.now(UTC)
    backups: list[dict[str, Any]] = []
    for meta in base_backups(settings):
        finished = datetime.fromisoformat(meta["finished"])
        backups.append({**meta, "age_hours": round((now - finished).total_seconds() / 3600, 2)})
    for dump in sorted((root / "logical").glob("*.dump")) if (root / "logical").is_dir() else []:
        st = dump.stat()
        finished = datetime.fromtimestamp(st.st_mtime, UTC)
        backups.append({"kind": "logical", "name": dump.stem, "path": str(dump), "bytes": st.st_size,
                        "finished": finished.isoformat(),
                        "age_hours": round((now - finished).total_seconds() / 3600, 2)})
    backups.sort(key=lambda b: b["finished"])
    wal = sorted(f for f in cluster.wal_archive(settings).glob("*") if not f.name.endswith(".part")) \
        if cluster.wal_archive(settings).is_dir() else []
    segments = [f for f in wal if re.fullmatch(r"[0-9A-F]{24}", f.name)]
    return {
        "folder": str(root),
        "backups": backups,
        "wal_archive": {"path": str(cluster.wal_archive(settings)), "files": len(wal),
                        "bytes": sum(f.stat().st_size for f in wal),
                        "oldest": segments[0].name if segments else None,
                        "newest": segments[-1].name if segments else None,
                        "newest_at": (datetime.fromtimestamp(segments[-1].stat().st_mtime, UTC).isoformat()
                                      if segments else None)},
        "free_bytes": shutil.disk_usage(root).free if root.is_dir() else None,
    }


def base_backups(settings: DatabaseSettings) -> list[dict[str, Any]]:
    """The finished base backups (oldest first), each with its metadata, path and size."""
    base = cluster.backup_root(settings) / "base"
    out = []
    for folder in sorted(base.glob("*")) if base.is_dir() else []:
        meta_file = folder / META
        if folder.suffix == ".partial" or not meta_file.exists():
            continue
        meta = json.loads(meta_file.read_text())
        out.append({**meta, "path": str(folder), "bytes": _size(folder)})
    return out


# -- restore ------------------------------------------------------------------------------------------


def batch_target(settings: DatabaseSettings, batch_id: int) -> Target:
    """Just before load batch ``batch_id`` began: its recorded WAL position (or, for a batch recorded
    before positions were kept, its start time)."""
    from layers import db

    with db.connect(settings) as conn:
        row: dict[str, Any] | None = conn.cursor(row_factory=dict_row).execute(
            "SELECT start_lsn::text AS lsn, started_at, file_name, layer FROM riskatlas.load_batch WHERE id = %s",
            (batch_id,)).fetchone()
    if row is None:
        raise BackupError(f"load batch {batch_id} is not in riskatlas.load_batch of {settings.db_name}")
    why = f"before load batch {batch_id} ({row['file_name']} into {row['layer']}, started {row['started_at']})"
    if row["lsn"] is None:
        return Target(time=row["started_at"], why=why)
    return Target(lsn=row["lsn"], time=row["started_at"], why=why)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is China Standard Time (+08:00)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BackupError(f"--to was {text!r} but is expected to be an ISO 8601 time such as "
                          "2026-12-01T16:30:00+08:00") from None
    return value if value.tzinfo else value.replace(tzinfo=CST)


def restore(settings: DatabaseSettings, target: Target) -> dict[str, Any]:
    """Restore the cluster to just before ``target`` in a new data folder and switch the project to it.

    The newest base backup that ends before the target is copied into ``<cluster>/data.restored-<stamp>``;
    PostgreSQL replays the archive up to the target and promotes (a new timeline); then the running
    primary is stopped, its folder renamed ``data.replaced-<stamp>`` (kept, not deleted) and the restored
    folder takes its place and starts on the project's port.
    """
    _require_managed(settings, running=False)  # a stopped (or broken) primary is the common case
    p = cluster.paths(settings)
    running = cluster.is_running(p)
    if running:
        wait_archived(settings)  # everything written so far is in the archive
        timeline = int(_sql_row(settings, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")[0], 16)
    else:
        timeline = _newest_timeline(settings)
    chosen = _choose_base(settings, target)
    stamp = _stamp()
    restored = ClusterPaths(p.state, p.root / f"restore-{stamp}")
    restored.root.mkdir(parents=True)
    pg = pwd.getpwnam("postgres")
    os.chown(restored.root, pg.pw_uid, pg.pw_gid)
    copy = cluster._as_postgres(["cp", "-a", chosen["path"], str(restored.data)])
    if copy.returncode != 0:
        raise BackupError(f"copying the base backup {chosen['name']} failed: {copy.stderr.strip()}")
    for leftover in ("standby.signal", META, "backup_manifest"):
        (restored.data / leftover).unlink(missing_ok=True)
    if not running:
        _copy_unarchived_wal(settings, p, restored)
    recovery: dict[str, str | None] = {
        "restore_command": f'cp "{cluster.wal_archive(settings)}/%f" "%p"',
        "recovery_target_timeline": str(timeline),
        "recovery_target_inclusive": "false",
        "recovery_target_action": "promote",
        "recovery_target_lsn": target.lsn,
        "recovery_target_time": None if target.lsn else target.time.isoformat() if target.time else None,
        "primary_conninfo": None,
    }
    cluster.set_conf(restored.data, recovery)
    signal_file = restored.data / "recovery.signal"
    signal_file.touch()
    os.chown(signal_file, pg.pw_uid, pg.pw_gid)
    try:
        cluster.launch(settings, restored, _free_port(), listen="")
        _wait_promoted(settings, restored)
        new_timeline = _promoted_timeline(settings, restored)
        cluster.halt(settings, restored)
    except Exception as exc:
        cluster.halt(settings, restored, "immediate")
        tail = _recovery_failure(restored)
        raise BackupError(f"the restore to {target.why or target} did not complete: {tail or exc}; the "
                          f"project's cluster was not changed (the attempt is in {restored.root})") from exc
    for key in recovery:
        recovery[key] = None
    cluster.set_conf(restored.data, recovery)
    old = p.root / f"data.replaced-{stamp}"
    cluster.halt(settings, p)
    if p.data.exists():
        p.data.rename(old)
    restored.data.rename(p.data)
    shutil.move(str(restored.log), str(p.root / f"restore-{stamp}.log"))
    shutil.rmtree(restored.root, ignore_errors=True)
    cluster.start(settings)
    _new_tile_epoch(settings)
    return {"restored_to": target.why or (target.lsn or str(target.time)),
            "recovery_target_lsn": target.lsn,
            "recovery_target_time": None if target.lsn or not target.time else target.time.isoformat(),
            "base_backup": chosen["name"], "timeline": new_timeline, "data_dir": str(p.data),
            "previous_data_dir": str(old) if old.exists() else None,
            "note": (f"the previous data folder is kept at {old}: delete it when the restore is confirmed; "
                     "take a new base backup (riskatlas db backup) so later restores start from this timeline")}


def _new_tile_epoch(settings: DatabaseSettings) -> None:
    """Tell the tile cache that the data went back in time: tiles cached before are not to be trusted."""
    with db.connect(settings) as conn:
        row = conn.cursor(row_factory=tuple_row).execute(
            "SELECT to_regprocedure('riskatlas.new_tile_epoch()') IS NOT NULL").fetchone()
        if row and row[0]:
            conn.execute("SELECT riskatlas.new_tile_epoch()")


def _copy_unarchived_wal(settings: DatabaseSettings, old: ClusterPaths, new: ClusterPaths) -> None:
    """The stopped cluster's WAL that never reached the archive (its last, unfinished segment), into the
    restored ``pg_wal``, as PostgreSQL's recovery procedure says: replay then reaches up to the stop."""
    source = old.data / "pg_wal"
    if not source.is_dir():
        return
    archived = {f.name for f in cluster.wal_archive(settings).glob("*")}
    for f in sorted(source.glob("*")):
        if re.fullmatch(r"[0-9A-F]{24}", f.name) and f.name not in archived:
            done = cluster._as_postgres(["cp", "-a", str(f), str(new.data / "pg_wal" / f.name)])
            if done.returncode != 0:
                raise BackupError(f"copying the unarchived WAL {f.name} failed: {done.stderr.strip()}")


def _choose_base(settings: DatabaseSettings, target: Target) -> dict[str, Any]:
    """The newest base backup that ends before the target (recovery must be consistent before it stops)."""
    backups = base_backups(settings)
    if not backups:
        raise BackupError(f"no base backup in {cluster.backup_root(settings) / 'base'}: take one with "
                          "`riskatlas db backup` (a restore starts from a base backup)")
    if target.lsn:
        fits = [b for b in backups if _lsn(b["end_lsn"]) <= _lsn(target.lsn)]
    else:
        assert target.time is not None
        fits = [b for b in backups if datetime.fromisoformat(b["finished"]) < target.time]
    if not fits:
        oldest = backups[0]
        raise BackupError(f"no base backup ends before the target ({target.why or target.lsn or target.time}); "
                          f"the oldest, {oldest['name']}, ends at {oldest['finished']} (LSN {oldest['end_lsn']})")
    return fits[-1]


def _wait_promoted(settings: DatabaseSettings, p: ClusterPaths) -> None:
    deadline = time.monotonic() + RECOVERY_WAIT_S
    while time.monotonic() < deadline:
        if not cluster.is_running(p):
            raise BackupError("the server stopped during recovery")
        done = cluster._as_postgres(["psql", "-X", "-At", "-h", str(p.socket_dir), "-p", _port_of(p), "-d",
                                     "postgres", "-c", "SELECT pg_is_in_recovery()"])
        if done.returncode == 0 and done.stdout.strip() == "f":
            return
        time.sleep(0.2)
    raise BackupError(f"recovery did not finish within {RECOVERY_WAIT_S:.0f} s")


def _promoted_timeline(settings: DatabaseSettings, p: ClusterPaths) -> int:
    """The new timeline, once its history file is in the archive (later restores follow it from there)."""
    port = _port_of(p)
    done = cluster._as_postgres(["psql", "-X", "-At", "-h", str(p.socket_dir), "-p", port, "-d", "postgres", "-c",
                                 "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"])
    timeline = int(done.stdout.strip(), 16)
    history = cluster.wal_archive(settings) / f"{timeline:08X}.history"
    deadline = time.monotonic() + ARCHIVE_WAIT_S
    while not history.exists():
        if time.monotonic() > deadline:
            raise BackupError(f"the new timeline's history file {history.name} was not archived")
        time.sleep(0.1)
    return timeline


def _recovery_failure(p: ClusterPaths) -> str:
    try:
        lines = p.log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    fatal = [ln for ln in lines if "FATAL" in ln or "PANIC" in ln]
    return fatal[-1].split(":  ", 1)[-1] if fatal else ""


def _newest_timeline(settings: DatabaseSettings) -> int:
    histories = [int(f.name[:8], 16) for f in cluster.wal_archive(settings).glob("*.history")]
    return max(histories, default=1)


# -- helpers ------------------------------------------------------------------------------------------


def _require_managed(settings: DatabaseSettings, running: bool = True) -> None:
    if not settings.managed:
        raise BackupError("DATABASE_URL is set: back up that server with its own tools (pg_basebackup, "
                          "pgBackRest); riskatlas backs up the cluster it runs itself")
    if running and not cluster.is_running(cluster.paths(settings)):
        raise cluster.not_running(settings, "its cluster is stopped")


def _sql_row(settings: DatabaseSettings, query: str, db: str = "postgres") -> list[str]:
    """One row of ``query`` as the cluster superuser (fields as text)."""
    out = cluster.psql_admin(settings, query, db=db).strip().splitlines()
    return out[0].split("|") if out else []


def _system_identifier(settings: DatabaseSettings) -> str:
    return _sql_row(settings, "SELECT system_identifier FROM pg_control_system()")[0]


def _port_of(p: ClusterPaths) -> str:
    return (p.data / "postmaster.pid").read_text().splitlines()[3]


def _lsn(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _mkdir_postgres(folder: Path) -> None:
    if folder.is_dir():
        return
    done = cluster._as_postgres(["mkdir", "-p", "-m", "750", str(folder)])
    if done.returncode != 0:
        raise BackupError(f"cannot create {folder}: {done.stderr.strip()}")


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _mib(n: int) -> str:
    return f"{n / 1024**2:,.0f} MiB"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
