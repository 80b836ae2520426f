"""The project's own PostgreSQL + PostGIS cluster: install, initdb, start, stop, status.

The cluster runs as the ``postgres`` system user (PostgreSQL refuses root) in a data folder of the
project, listens on a unix socket in that folder and on 127.0.0.1 at a configurable port, and
authenticates TCP clients by scram passwords kept in a 0600 file beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from layers.settings import DatabaseSettings

PG_PACKAGES = ("postgresql-{v}", "postgresql-{v}-postgis-3")


class ClusterError(RuntimeError):
    """The local cluster could not be installed, created or started; the message says why."""


class DatabaseNotRunning(ClusterError, psycopg.OperationalError):
    """The project's own database is not running, or was never started, in this state folder.

    Also a ``psycopg.OperationalError``, so that code treating "cannot connect" as an outage keeps
    doing so; the message names the state folder and says how to start it.
    """


def not_running(settings: DatabaseSettings, why: str) -> DatabaseNotRunning:
    """The error for a database that is not there, naming the state folder and the way to start it."""
    return DatabaseNotRunning(
        f"no riskatlas database is running for the state folder {settings.state_dir} ({why}); "
        f"start it with `RISKATLAS_PG_PORT={settings.pg_port} riskatlas db start`, or point "
        f"RISKATLAS_HOME at the folder of an existing one")


@dataclass(frozen=True)
class ClusterPaths:
    """Where the cluster's files live."""

    state: Path
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "postgresql.log"

    @property
    def secrets(self) -> Path:
        return self.state / "secrets.json"


def bin_dir(settings: DatabaseSettings) -> Path:
    return Path(f"/usr/lib/postgresql/{settings.pg_version}/bin")


def paths(settings: DatabaseSettings) -> ClusterPaths:
    """The cluster folder: inside the state folder when the postgres user can reach it.

    A checkout under a private home (``/root``) is not traversable by ``postgres``; the cluster then
    lives under ``/var/lib/riskatlas/<hash of the state folder>`` and the state folder remembers it.
    """
    state = settings.state_dir.resolve()
    inside = state / "pg"
    if _postgres_can_reach(state.parent):
        return ClusterPaths(state, inside)
    digest = hashlib.sha256(str(state).encode()).hexdigest()[:12]
    return ClusterPaths(state, Path("/var/lib/riskatlas") / digest)


def _postgres_can_reach(folder: Path) -> bool:
    try:
        pg = pwd.getpwnam("postgres")
    except KeyError:
        return False
    for part in [folder, *folder.parents]:
        try:
            st = part.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == pg.pw_uid:
            continue
        if not st.st_mode & 0o001:
            return False
    return True


def ensure_installed(settings: DatabaseSettings) -> None:
    """Install Debian's PostgreSQL and PostGIS packages when they are missing (needs root)."""
    postgis = Path(f"/usr/share/postgresql/{settings.pg_version}/extension/postgis.control")
    if (bin_dir(settings) / "initdb").exists() and postgis.exists():
        return
    if os.geteuid() != 0:
        raise ClusterError(
            f"PostgreSQL {settings.pg_version} with PostGIS is not installed and riskatlas is not root: "
            f"run `apt-get install {' '.join(p.format(v=settings.pg_version) for p in PG_PACKAGES)}`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    pkgs = [p.format(v=settings.pg_version) for p in PG_PACKAGES]
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *pkgs]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-800:]}")


def _as_postgres(args: list[str], **kw) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, **kw)


def _secrets(p: ClusterPaths, settings: DatabaseSettings, create: bool = False) -> dict[str, str]:
    """The roles' passwords; only :func:`start` creates them (``create``), a read never does."""
    if p.secrets.exists():
        values: dict[str, str] = json.loads(p.secrets.read_text())
        if create and settings.replication_role not in values:  # a folder made before replication existed
            values[settings.replication_role] = secrets.token_urlsafe(18)
            tmp = p.secrets.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(values, fh)
            os.replace(tmp, p.secrets)
        return values
    if not create:
        raise not_running(settings, f"{p.secrets} does not exist")
    p.state.mkdir(parents=True, exist_ok=True)
    values = {
        settings.owner_role: secrets.token_urlsafe(18),
        settings.app_role: secrets.token_urlsafe(18),
        settings.replication_role: secrets.token_urlsafe(18),
    }
    fd = os.open(p.secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    return values


def replication_password(settings: DatabaseSettings) -> str:
    """The password of the replication role (streaming replicas and their base backups)."""
    return _secrets(paths(settings), settings)[settings.replication_role]


def owner_url(settings: DatabaseSettings) -> str:
    """The connection URL of the schema owner."""
    if settings.database_url:
        return settings.database_url
    pw = _secrets(paths(settings), settings)[settings.owner_role]
    return (f"postgresql://{settings.owner_role}:{pw}@127.0.0.1:{settings.pg_port}/{settings.db_name}")


def app_url(settings: DatabaseSettings) -> str:
    """The connection URL of the least-privileged application role."""
    if settings.app_database_url:
        return settings.app_database_url
    if settings.database_url:
        return settings.database_url
    pw = _secrets(paths(settings), settings)[settings.app_role]
    return f"postgresql://{settings.app_role}:{pw}@127.0.0.1:{settings.pg_port}/{settings.db_name}"


def running_port(settings: DatabaseSettings) -> int | None:
    """The port the cluster of this state folder listens on, or None when it is not running."""
    p = paths(settings)
    if _running_pid(p) is None:
        return None
    try:
        return int((p.data / "postmaster.pid").read_text().splitlines()[3])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def unreachable(settings: DatabaseSettings) -> DatabaseNotRunning | None:
    """Why the cluster of this state folder cannot be what answers on ``pg_port``, if it cannot."""
    port = running_port(settings)
    if port is None:
        return not_running(settings, "its cluster is stopped")
    if port != settings.pg_port:
        return DatabaseNotRunning(
            f"the riskatlas database of the state folder {settings.state_dir} listens on port {port}, "
            f"not {settings.pg_port}: set RISKATLAS_PG_PORT={port}")
    return None


def status(settings: DatabaseSettings) -> dict[str, object]:
    """What the cluster is doing: running or not, where, on which port."""
    p = paths(settings)
    running = _running_pid(p) is not None
    return {
        "managed": True,
        "running": running,
        "state_dir": str(p.state),
        "data_dir": str(p.data),
        "port": settings.pg_port,
        "socket_dir": str(p.socket_dir),
        "log": str(p.log),
        "initialised": (p.data / "PG_VERSION").exists(),
    }


def _running_pid(p: ClusterPaths) -> int | None:
    """The postmaster's pid when it runs; a pid file left by a crash counts as not running."""
    pidfile = p.data / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return None
    return pid if comm in ("postgres", "postmaster") else None


def start(settings: DatabaseSettings) -> dict[str, object]:
    """Start the cluster, creating it first if needed; a no-op when it already runs."""
    ensure_installed(settings)
    p = paths(settings)
    if _running_pid(p) is not None:
        return {**status(settings), "action": "already running"}
    _secrets(p, settings, create=True)
    pg = pwd.getpwnam("postgres")
    created = False
    if not (p.data / "PG_VERSION").exists():
        p.root.mkdir(parents=True, exist_ok=True)
        p.data.mkdir(parents=True, exist_ok=True)
        for d in (p.root, p.data):
            os.chown(d, pg.pw_uid, pg.pw_gid)
        os.chmod(p.data, 0o700)
        done = _as_postgres([str(bin_dir(settings) / "initdb"), "-D", str(p.data), "-U", "postgres",
                             "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=peer",
                             "--auth-host=scram-sha-256"])
        if done.returncode != 0:
            raise ClusterError(f"initdb failed in {p.data}: {done.stderr.strip()[-800:]}")
        _write_conf(p)
        created = True
    # every start, so that a cluster created before archiving and replication existed takes them up
    set_conf(p.data, archive_settings(settings))
    launch(settings, p, settings.pg_port)
    bootstrap(settings)
    return {**status(settings), "action": "created and started" if created else "started"}


def launch(settings: DatabaseSettings, p: ClusterPaths, port: int, listen: str = "127.0.0.1",
           wait_s: int = 60) -> None:
    """``pg_ctl start`` the data folder of ``p`` on ``port`` (socket in ``p.socket_dir``, log in ``p.log``).

    ``listen`` '' keeps TCP closed (a cluster being restored takes no clients until it is switched in).
    """
    pg = pwd.getpwnam("postgres")
    p.socket_dir.mkdir(parents=True, exist_ok=True)
    os.chown(p.socket_dir, pg.pw_uid, pg.pw_gid)
    stale = p.data / "postmaster.pid"
    if stale.exists():  # left by a crash: _running_pid saw no live postmaster behind it
        stale.unlink()
    if not p.log.exists():
        p.log.touch()
    os.chown(p.log, pg.pw_uid, pg.pw_gid)
    opts = f"-p {port} -k {p.socket_dir} -c listen_addresses='{listen}'"
    done = _as_postgres([str(bin_dir(settings) / "pg_ctl"), "-D", str(p.data), "-l", str(p.log),
                         "-o", opts, "-w", "-t", str(wait_s), "start"])
    if done.returncode != 0:
        tail = p.log.read_text(errors="replace")[-1200:] if p.log.exists() else ""
        raise ClusterError(f"pg_ctl start failed on port {port}: {done.stderr.strip()} {tail}")


def halt(settings: DatabaseSettings, p: ClusterPaths, mode: str = "fast") -> bool:
    """``pg_ctl stop`` the data folder of ``p``; False when it was not running."""
    if _running_pid(p) is None:
        return False
    done = _as_postgres([str(bin_dir(settings) / "pg_ctl"), "-D", str(p.data), "-m", mode, "-w", "stop"])
    if done.returncode != 0:
        raise ClusterError(f"pg_ctl stop failed in {p.data}: {done.stderr.strip()}")
    return True


def is_running(p: ClusterPaths) -> bool:
    """True when a postmaster runs on the data folder of ``p``."""
    return _running_pid(p) is not None


def _write_conf(p: ClusterPaths) -> None:
    conf = p.data / "postgresql.auto.conf"
    extra = (
        "shared_buffers = '512MB'\n"
        "work_mem = '64MB'\n"
        "maintenance_work_mem = '1GB'\n"
        "max_wal_size = '4GB'\n"
        "checkpoint_timeout = '15min'\n"
        "jit = off\n"
        "max_connections = 200\n"
    )
    with conf.open("a") as fh:
        fh.write(extra)


def backup_root(settings: DatabaseSettings) -> Path:
    """The backup folder: ``backup_dir``, else ``backups`` beside the cluster's data folder."""
    return settings.backup_dir or paths(settings).root / "backups"


def wal_archive(settings: DatabaseSettings) -> Path:
    """Where ``archive_command`` copies every finished WAL segment (and timeline history file)."""
    return backup_root(settings) / "wal"


ARCHIVE_SCRIPT = """#!/bin/sh
# archive-wal SOURCE NAME FOLDER RESERVE_KB: PostgreSQL's archive_command for riskatlas.
# Copies one finished WAL file into FOLDER, atomically (a .part file renamed when flushed), or exits
# non-zero with the reason on stderr (the server log): PostgreSQL then keeps the file in pg_wal, keeps
# serving, and tries again. Refuses when FOLDER is missing (an unmounted volume) or when copying would
# leave less than RESERVE_KB free on its disk. A file already archived with the same bytes is success
# (a retry after a crash); different bytes are refused, never overwritten.
# Until the first base backup starts (it leaves FOLDER/.keep behind) no restore could use the WAL, and
# none is kept: a cluster that is never backed up does not fill a disk with WAL.
src=$1; name=$2; dir=$3; reserve_kb=$4
if [ ! -d "$dir" ]; then
    echo "riskatlas archive: the WAL archive folder $dir is missing" >&2; exit 1
fi
if [ ! -f "$dir/.keep" ]; then exit 0; fi
if [ -f "$dir/$name" ]; then
    if cmp -s "$src" "$dir/$name"; then exit 0; fi
    echo "riskatlas archive: $dir/$name already exists with other content; not overwritten" >&2; exit 1
fi
need_kb=$(( $(stat -c %s "$src") / 1024 + reserve_kb ))
free_kb=$(df -Pk "$dir" | awk 'NR == 2 {print $4}')
if [ "$free_kb" -lt "$need_kb" ]; then
    echo "riskatlas archive: the WAL archive folder $dir is full (${free_kb} KiB free, ${need_kb} KiB needed)" >&2
    exit 1
fi
if ! cp "$src" "$dir/$name.part" 2>/dev/null || ! sync "$dir/$name.part"; then
    rm -f "$dir/$name.part"
    echo "riskatlas archive: cannot write $dir/$name (folder not writable or disk full)" >&2; exit 1
fi
mv "$dir/$name.part" "$dir/$name"
"""


def archive_settings(settings: DatabaseSettings) -> dict[str, str]:
    """Server settings for continuous archiving and streaming replicas (taken up at each start).

    Writes the archive script beside the data folder and creates the archive folder when missing.
    """
    p = paths(settings)
    pg = pwd.getpwnam("postgres")
    script = p.root / "archive-wal.sh"
    script.write_text(ARCHIVE_SCRIPT)
    os.chmod(script, 0o755)
    archive = wal_archive(settings)
    for folder in (archive.parent, archive):
        if not folder.exists():
            folder.mkdir(parents=True)
            os.chown(folder, pg.pw_uid, pg.pw_gid)
            os.chmod(folder, 0o750)
    reserve_kb = settings.backup_reserve_mb * 1024
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f'"{script}" "%p" "%f" "{archive}" {reserve_kb}',
        "archive_timeout": "300s",
        "max_wal_senders": "10",
        "wal_keep_size": "256MB",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
    }


def set_conf(data: Path, values: Mapping[str, str | None]) -> None:
    """Set (or, with None, remove) settings in ``postgresql.auto.conf`` of a stopped data folder.

    The file ALTER SYSTEM writes; other lines are kept. Values are quoted as ALTER SYSTEM quotes them.
    """
    conf = data / "postgresql.auto.conf"
    lines = conf.read_text().splitlines() if conf.exists() else []
    kept = [ln for ln in lines if ln.split("=", 1)[0].strip() not in values]
    for key, value in values.items():
        if value is not None:
            kept.append(f"{key} = '{value.replace(chr(39), chr(39) * 2)}'")
    st = conf.stat() if conf.exists() else None
    conf.write_text("\n".join(kept) + "\n")
    if st is not None:
        os.chown(conf, st.st_uid, st.st_gid)


def stop(settings: DatabaseSettings) -> dict[str, object]:
    """Stop the cluster (fast shutdown); a no-op when it is not running."""
    if not halt(settings, paths(settings)):
        return {**status(settings), "action": "not running"}
    return {**status(settings), "action": "stopped"}


def psql_admin(settings: DatabaseSettings, sql: str, db: str = "postgres") -> str:
    """Run SQL as the cluster superuser over the unix socket; raise with psql's message on error."""
    p = paths(settings)
    done = _as_postgres(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(p.socket_dir),
                         "-p", str(settings.pg_port), "-d", db, "-c", sql])
    if done.returncode != 0:
        raise ClusterError(f"psql on {db} failed: {done.stderr.strip()}")
    return done.stdout


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def bootstrap(settings: DatabaseSettings, db_name: str | None = None) -> None:
    """Create the roles, the database and the postgis extension when missing (idempotent)."""
    db = db_name or settings.db_name
    pw = _secrets(paths(settings), settings)
    for role, login in ((settings.owner_role, pw[settings.owner_role]),
                        (settings.app_role, pw[settings.app_role])):
        psql_admin(settings, f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(role)}) THEN
                CREATE ROLE "{role}" LOGIN PASSWORD {_literal(login)} NOSUPERUSER NOCREATEDB NOCREATEROLE;
            END IF; END $$;""")
    if settings.replication_role in pw:  # streams WAL to replicas; reads no table
        role = settings.replication_role
        psql_admin(settings, f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(role)}) THEN
                CREATE ROLE "{role}" LOGIN REPLICATION PASSWORD {_literal(pw[role])} NOSUPERUSER;
            END IF; END $$;""")
    exists = psql_admin(settings, f"SELECT 1 FROM pg_database WHERE datname = {_literal(db)}").strip()
    if not exists:
        psql_admin(settings, f'CREATE DATABASE "{db}" OWNER "{settings.owner_role}"')
    psql_admin(settings, f"""CREATE EXTENSION IF NOT EXISTS postgis;
        CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;
        CREATE SCHEMA IF NOT EXISTS riskatlas AUTHORIZATION "{settings.owner_role}";
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
        GRANT CONNECT ON DATABASE "{db}" TO "{settings.app_role}";
        ALTER ROLE "{settings.app_role}" RESET ALL;
        ALTER ROLE "{settings.app_role}" IN DATABASE "{db}" RESET ALL;
        ALTER ROLE "{settings.app_role}" IN DATABASE "{db}" SET statement_timeout = {settings.statement_timeout_ms};""",
               db=db)


def clone_database(settings: DatabaseSettings, source: str, target: str) -> None:
    """Create ``target`` as a file copy of ``source`` (which nobody may be connected to), with its grants.

    Database-level grants and per-database role settings are not part of the copy; ``bootstrap``
    restores them. Tests clone a migrated template instead of rebuilding a database each time.
    """
    psql_admin(settings, f'CREATE DATABASE "{target}" TEMPLATE "{source}" OWNER "{settings.owner_role}" '
                         f"STRATEGY = FILE_COPY")
    bootstrap(settings, target)


def drop_database(settings: DatabaseSettings, db_name: str) -> None:
    """Drop a database of the managed cluster (used for throw-away test databases)."""
    psql_admin(settings, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def remove(settings: DatabaseSettings) -> None:
    """Stop the cluster and delete its files (tests use this on throw-away state folders)."""
    stop(settings)
    p = paths(settings)
    shutil.rmtree(p.root, ignore_errors=True)
