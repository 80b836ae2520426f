"""A streaming read replica of the project's own cluster, and promoting it by hand.

The replica is PostgreSQL's own hot standby: ``pg_basebackup -R`` copies the primary into a second
data folder (``<cluster>/replica/data``) and writes ``primary_conninfo`` and ``standby.signal``; the
standby then streams WAL from the primary as the replication role, and falls back to the WAL archive
(``restore_command``) when it fell too far behind to stream. On another host the same is done with
that host's PostgreSQL; the API reads from it through ``RISKATLAS_REPLICA_URL``.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from layers import cluster
from layers.cluster import ClusterError, ClusterPaths
from layers.settings import DatabaseSettings

PROMOTE_WAIT_S = 60


def paths(settings: DatabaseSettings) -> ClusterPaths:
    """The replica's folders: ``replica/`` beside the primary's data folder."""
    p = cluster.paths(settings)
    return ClusterPaths(p.state, p.root / "replica")


def app_url(settings: DatabaseSettings) -> str:
    """The application role's URL on the replica (``replica_url``, else the local replica's port)."""
    if settings.replica_url:
        return settings.replica_url
    primary = cluster.app_url(settings)
    return primary.replace(f"@127.0.0.1:{settings.pg_port}/", f"@127.0.0.1:{settings.replica_pg_port}/", 1)


def start(settings: DatabaseSettings) -> dict[str, Any]:
    """Start the local replica, creating it from the running primary first if it does not exist."""
    _require_managed(settings)
    p = paths(settings)
    if cluster.is_running(p):
        return {**status(settings), "action": "already running"}
    created = False
    if not (p.data / "PG_VERSION").exists():
        if not cluster.is_running(cluster.paths(settings)):
            raise cluster.not_running(settings, "a replica is copied from a running primary")
        shutil.rmtree(p.root, ignore_errors=True)
        done = cluster._as_postgres(["mkdir", "-p", "-m", "700", str(p.root)])
        if done.returncode != 0:
            raise ClusterError(f"cannot create {p.root}: {done.stderr.strip()}")
        conninfo = (f"host=127.0.0.1 port={settings.pg_port} user={settings.replication_role} "
                    f"password={cluster.replication_password(settings)} application_name=riskatlas_replica")
        done = cluster._as_postgres([str(cluster.bin_dir(settings) / "pg_basebackup"), "-D", str(p.data), "-R",
                                     "-X", "stream", "-c", "fast", "-d", conninfo])
        if done.returncode != 0:
            shutil.rmtree(p.data, ignore_errors=True)
            raise ClusterError(f"pg_basebackup of the replica failed: {done.stderr.strip()[-600:]}")
        # when streaming cannot serve what it missed (stopped longer than wal_keep_size), read the archive
        cluster.set_conf(p.data, {"restore_command": f'cp "{cluster.wal_archive(settings)}/%f" "%p"'})
        created = True
    cluster.launch(settings, p, settings.replica_pg_port)
    return {**status(settings), "action": "created and started" if created else "started"}


def stop(settings: DatabaseSettings) -> dict[str, Any]:
    """Stop the local replica (its folder is kept; ``start`` resumes streaming where it stopped)."""
    _require_managed(settings)
    stopped = cluster.halt(settings, paths(settings))
    return {**status(settings), "action": "stopped" if stopped else "not running"}


def remove(settings: DatabaseSettings) -> None:
    """Stop the local replica and delete its folder."""
    p = paths(settings)
    if cluster.is_running(p):
        cluster.halt(settings, p, "immediate")
    shutil.rmtree(p.root, ignore_errors=True)


def status(settings: DatabaseSettings) -> dict[str, Any]:
    """Is the replica running, replaying, how far behind the primary (bytes and the primary's view)."""
    p = paths(settings)
    state: dict[str, Any] = {"data_dir": str(p.data), "port": settings.replica_pg_port,
                             "running": cluster.is_running(p), "initialised": (p.data / "PG_VERSION").exists()}
    if not state["running"]:
        return state
    row = _replica_sql(settings, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(), "
                                 "pg_last_xact_replay_timestamp()")
    state.update(in_recovery=row[0] == "t", replay_lsn=row[1] or None, last_replayed_commit_at=row[2] or None)
    if cluster.is_running(cluster.paths(settings)) and state["replay_lsn"]:
        out = cluster.psql_admin(settings, f"""SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{state["replay_lsn"]}'),
            (SELECT state || '|' || coalesce(replay_lag::text, '') FROM pg_stat_replication
              WHERE application_name = 'riskatlas_replica' LIMIT 1)""").strip().split("|")
        state["lag_bytes"] = max(0, int(float(out[0])))
        state["streaming"] = out[1] == "streaming"
        state["replay_lag"] = out[2] if len(out) > 2 and out[2] else None
    return state


def promote(settings: DatabaseSettings) -> dict[str, Any]:
    """Turn the replica into a primary (``pg_promote``), after fencing the old primary.

    The old primary is stopped first when it still runs here, so that it can never take writes beside
    the promoted one; its data folder is left as it is (rebuild it as a replica before using it again).
    """
    _require_managed(settings)
    p = paths(settings)
    if not cluster.is_running(p):
        raise ClusterError("the replica is not running: start it (riskatlas db replica start) before promoting")
    fenced = cluster.halt(settings, cluster.paths(settings))
    row = _replica_sql(settings, f"SELECT pg_promote(true, {PROMOTE_WAIT_S})")
    if row[0] != "t":
        raise ClusterError(f"pg_promote did not finish within {PROMOTE_WAIT_S} s; see {p.log}")
    deadline = time.monotonic() + PROMOTE_WAIT_S
    while _replica_sql(settings, "SELECT pg_is_in_recovery()")[0] == "t":
        if time.monotonic() > deadline:
            raise ClusterError(f"the replica is still in recovery after pg_promote; see {p.log}")
        time.sleep(0.1)
    return {"promoted": True, "port": settings.replica_pg_port, "data_dir": str(p.data),
            "old_primary_stopped": fenced,
            "next": (f"point the API at port {settings.replica_pg_port}: RISKATLAS_PG_PORT="
                     f"{settings.replica_pg_port} with RISKATLAS_REPLICA_URL unset (or, with DATABASE_URL, "
                     "that host), then restart riskatlas serve; an API whose write URL lists both hosts "
                     "with target_session_attrs=read-write follows by itself. Do not start the old primary "
                     "again: rebuild it as a replica of the new one")}


def _replica_sql(settings: DatabaseSettings, query: str) -> list[str]:
    p = paths(settings)
    done = cluster._as_postgres(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(p.socket_dir),
                                 "-p", str(settings.replica_pg_port), "-d", "postgres", "-c", query])
    if done.returncode != 0:
        raise ClusterError(f"psql on the replica failed: {done.stderr.strip()}")
    return done.stdout.strip().split("|")


def _require_managed(settings: DatabaseSettings) -> None:
    if not settings.managed:
        raise ClusterError("DATABASE_URL is set: run the replica on that server's side (pg_basebackup -R) "
                           "and give the API its URL in RISKATLAS_REPLICA_URL")
