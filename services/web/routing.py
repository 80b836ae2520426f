"""Reads to the replica, writes to the primary, and every user reads their own writes.

:class:`ReadRouting` owns the replica's pools and watches the replica once per
``replica_check_interval_s``: is it reachable, still a standby, and how far behind the primary
(``pg_last_wal_replay_lsn()`` against the primary's ``pg_current_wal_lsn()``, in bytes and in seconds
since the primary first stood at a position the replica has not replayed). A replica that is down,
promoted, or more than ``replica_max_lag_s`` behind is out of rotation: reads go to the primary.

A response served by the replica carries ``X-Read-From: replica``.

Read-your-writes: after a write request of an identified user (:class:`ReplicaFallback` sees the
response start), the primary's WAL position is remembered for that user; their reads go to the primary
until the replica has replayed past it.

A read that fails on the replica (it was stopped between two checks) is run again on the primary by
:class:`ReplicaFallback` before anything reaches the client, and the replica is taken out of rotation
until the next check finds it healthy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.identity import Identity

log = logging.getLogger("riskatlas")

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
REPLAY_BODY_MAX = 1 << 20  # request bodies kept for a second run on the primary (analyses: small JSON)
CHECK_TIMEOUT_S = 2.0  # connecting to a server for a check; a query waits 2.5 times as long


def lsn_int(text: str | None) -> int | None:
    """A pg_lsn's text ``X/Y`` as an integer (comparable), None for None."""
    if not text:
        return None
    hi, lo = str(text).split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


class ReadRouting:
    """Chooses the pool of each read and watches the replica."""

    def __init__(self, replica_url: str, *, max_lag_s: float, interval_s: float, pool_max: int,
                 heavy_max: int, pool_timeout_s: float, options: dict[str, Any], reset: Any) -> None:
        self.replica_url = replica_url
        self.max_lag_s = max_lag_s
        self.interval_s = interval_s
        # A replica can vanish under its pooled connections: each is checked as it is lent (a round trip)
        # and a dead one replaced, rather than failing a read. No background reconnection loop against a
        # replica that is down: the pool grows again on demand once the watcher puts it back in rotation.
        check = AsyncConnectionPool.check_connection
        self.pool = AsyncConnectionPool(replica_url, min_size=1, max_size=pool_max, open=False, kwargs=options,
                                        reset=reset, timeout=pool_timeout_s, reconnect_timeout=0, check=check)
        self.heavy_pool = AsyncConnectionPool(replica_url, min_size=1, max_size=heavy_max, open=False,
                                              kwargs=options, reset=reset, timeout=pool_timeout_s,
                                              reconnect_timeout=0, check=check)
        self.up = False
        self.in_recovery: bool | None = None
        self.replay_lsn: int | None = None
        self.primary_lsn: int | None = None
        self.lag_bytes: int | None = None
        self.lag_s: float | None = None
        self.error: str | None = None
        self.checked_at: float | None = None
        self._samples: deque[tuple[float, int]] = deque()
        self._writes: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._primary_conn: psycopg.AsyncConnection | None = None
        self._replica_conn: psycopg.AsyncConnection | None = None
        self._wake = asyncio.Event()

    # -- choosing -------------------------------------------------------------------------------------

    @property
    def in_rotation(self) -> bool:
        """True when reads may go to the replica: reachable, a standby, within the lag limit."""
        return bool(self.up and self.in_recovery and self.lag_s is not None and self.lag_s <= self.max_lag_s)

    def serves(self, identity: Identity) -> bool:
        """True when ``identity``'s next read may go to the replica (in rotation, past their last write)."""
        if not self.in_rotation:
            return False
        pending = self._writes.get(identity.user) if identity.context is not None else None
        if pending is None:
            return True
        if self.replay_lsn is not None and self.replay_lsn >= pending:
            self._writes.pop(identity.user, None)
            return True
        return False

    async def note_write(self, primary: AsyncConnectionPool, identity: Identity) -> None:
        """Remember where the primary's WAL stands after ``identity``'s write (read-your-writes)."""
        try:
            async with primary.connection(timeout=2) as conn:
                cur = await conn.execute("SELECT pg_current_wal_lsn()::text")
                row = await cur.fetchone()
        except (psycopg.Error, PoolTimeout) as exc:  # the response goes out; this user's reads may be stale
            log.warning("could not note %s's write position: %s", identity.user, exc)
            return
        lsn = lsn_int(row[0] if row else None)
        if lsn is not None:
            self._writes[identity.user] = max(lsn, self._writes.get(identity.user, 0))
            if len(self._writes) > 100_000:  # bounded: the oldest entries are long replayed
                self._writes.pop(next(iter(self._writes)))

    def suspect(self) -> None:
        """Check the replica now rather than at the next interval (a read found no connection in time)."""
        self._wake.set()

    def failed(self, why: str) -> None:
        """A read failed on the replica: out of rotation until the next check finds it healthy."""
        if self.up:
            log.warning("replica out of rotation: %s", why)
        self.up = False
        self.error = why
        self._wake.set()

    # -- watching -------------------------------------------------------------------------------------

    async def open(self, primary: AsyncConnectionPool) -> None:
        """Open the replica's pools without waiting for it, and start watching it."""
        await self.pool.open(wait=False)
        await self.heavy_pool.open(wait=False)
        await self.check(primary)
        self._task = asyncio.create_task(self._watch(primary))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for conn in (self._primary_conn, self._replica_conn):
            if conn is not None:
                await conn.close()
        await self.pool.close()
        await self.heavy_pool.close()

    async def _watch(self, primary: AsyncConnectionPool) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.check(primary)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failed check
                log.exception("replica check failed")

    async def check(self, primary: AsyncConnectionPool) -> None:
        """Measure the replica now: reachable, standby, replayed position, lag behind the primary.

        Both servers are asked on connections of the watcher's own (kept open between checks), so that a
        saturated pool or a slow handshake under load is not taken for a replica that is down.
        """
        now = time.monotonic()
        try:
            self._primary_conn = await self._alive(self._primary_conn, primary.conninfo, primary.kwargs)
            row = await self._ask(self._primary_conn, "SELECT pg_current_wal_lsn()::text")
            self.primary_lsn = lsn_int(row[0] if row else None)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            self._primary_conn, self.primary_lsn = None, None
            log.info("primary not reachable for the replica check: %s", exc)
        try:
            self._replica_conn = await self._alive(self._replica_conn, self.replica_url, {})
            row = await self._ask(self._replica_conn, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
        except (psycopg.Error, OSError, TimeoutError) as exc:
            if self._replica_conn is not None:
                await self._replica_conn.close()
            self._replica_conn = None
            self.up, self.error, self.checked_at = False, str(exc).splitlines()[0] if str(exc) else "down", now
            return
        assert row is not None
        self.in_recovery, self.replay_lsn = bool(row[0]), lsn_int(row[1])
        if self.primary_lsn is not None:
            if not self._samples or self._samples[-1][1] != self.primary_lsn:
                self._samples.append((now, self.primary_lsn))
        while self._samples and self.replay_lsn is not None and self._samples[0][1] <= self.replay_lsn:
            self._samples.popleft()
        self.lag_s = round(now - self._samples[0][0], 3) if self._samples else 0.0
        self.lag_bytes = (max(0, self.primary_lsn - self.replay_lsn)
                          if self.primary_lsn is not None and self.replay_lsn is not None else None)
        was = self.in_rotation
        self.up, self.error, self.checked_at = True, None, now
        if not self.in_recovery:
            self.error = "promoted: no longer a standby"
        elif self.lag_s > self.max_lag_s:
            self.error = f"{self.lag_s:.1f} s behind the primary (limit {self.max_lag_s} s)"
        if was != self.in_rotation:
            log.warning("replica %s rotation: %s", "back in" if self.in_rotation else "out of",
                        self.error or "healthy")

    @staticmethod
    async def _alive(conn: psycopg.AsyncConnection | None, conninfo: str,
                     kwargs: dict[str, Any]) -> psycopg.AsyncConnection:
        """``conn`` when it is usable, else a new autocommit connection."""
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            await conn.close()
        options = {k: v for k, v in kwargs.items() if k == "options"}
        return await psycopg.AsyncConnection.connect(conninfo, connect_timeout=CHECK_TIMEOUT_S, autocommit=True,
                                                     **options)

    @staticmethod
    async def _ask(conn: psycopg.AsyncConnection, query: str) -> tuple[Any, ...] | None:
        """One row of ``query``, or TimeoutError after ``CHECK_TIMEOUT_S`` (a server that hangs is down)."""
        async def run() -> tuple[Any, ...] | None:
            cur = await conn.execute(query)
            return await cur.fetchone()

        return await asyncio.wait_for(run(), CHECK_TIMEOUT_S * 2.5)

    def health(self) -> dict[str, Any]:
        """The replica as ``/health`` reports it."""
        state = ("serving reads" if self.in_rotation else "down" if not self.up
                 else "promoted" if not self.in_recovery else "lagging")
        return {"state": state, "in_rotation": self.in_rotation, "lag_seconds": self.lag_s,
                "lag_bytes": self.lag_bytes, "max_lag_seconds": self.max_lag_s, "error": self.error,
                "checked_seconds_ago": (round(time.monotonic() - self.checked_at, 2)
                                        if self.checked_at is not None else None)}


class ReplicaFallback:
    """Runs a read again on the primary when it failed on the replica, and notes users' writes.

    A request served from the replica that ends in a database failure (a 503 of the error map with
    ``database_failed`` set) has its response held back and is run a second time with
    ``force_primary``: the client sees the primary's answer, never the replica's failure. Write
    requests of identified users note the primary's WAL position before their response starts.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or getattr(scope["app"].state, "routing", None) is None:
            await self.app(scope, receive, send)
            return
        routing: ReadRouting = scope["app"].state.routing
        kept: list[Message] = []
        size = 0

        async def recording() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size <= REPLAY_BODY_MAX:
                kept.append(message)
            return message

        first_state: dict[str, Any] = dict(scope.get("state") or {})
        first = {**scope, "state": first_state}
        held: list[Message] = []
        retry = False

        async def sending(message: Message) -> None:
            nonlocal retry
            if message["type"] == "http.response.start":
                if (message["status"] == 503 and first_state.get("read_from") == "replica"
                        and first_state.get("database_failed") and size <= REPLAY_BODY_MAX):
                    retry = True
                    if first_state["database_failed"] == "down":
                        routing.failed("a read failed on the replica")
                    else:  # no connection within the wait: a full pool, or a replica that vanished
                        routing.suspect()
                    return
                identity = first_state.get("identity")
                if (scope["method"] not in SAFE_METHODS and message["status"] < 400 and identity is not None
                        and identity.context is not None):
                    await routing.note_write(scope["app"].state.pool, identity)
                if first_state.get("read_from") == "replica":  # says where the answer came from
                    message = {**message, "headers": [*message.get("headers", []), (b"x-read-from", b"replica")]}
            if retry:
                held.append(message)
                return
            await send(message)

        await self.app(first, recording, sending)
        if not retry:
            return
        replay = list(kept)

        async def replaying() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        second = {**scope, "state": {**dict(scope.get("state") or {}), "force_primary": True}}
        await self.app(second, replaying, send)
