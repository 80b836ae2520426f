"""The delivery worker of a running service: an asyncio task that runs delivery rounds
(:func:`services.incidents.delivery.run_once`) when the database announces new deliveries
(``NOTIFY riskatlas_delivery``) and every ``poll_s`` seconds (retries, overdue notices)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg

from layers import db
from layers.settings import DatabaseSettings
from services.incidents import delivery
from services.incidents.settings import DeliverySettings

log = logging.getLogger("riskatlas.incidents")


class Worker:
    """Start with :meth:`start`, stop with :meth:`stop` (the app's lifespan does both)."""

    def __init__(self, db_settings: DatabaseSettings, settings: DeliverySettings) -> None:
        self.db_settings = db_settings
        self.settings = settings
        self.task: asyncio.Task[None] | None = None
        self.rounds = 0
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskatlas-delivery")
        self.running: Future[Any] | None = None  # the round under way, in the worker's thread

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="riskatlas-delivery")

    async def stop(self) -> None:
        """Stop listening, and let a round under way finish (it holds rows locked and a connection)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.running is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(self.running)
        self.pool.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(db.url(self.db_settings), autocommit=True)
            except psycopg.Error as exc:
                log.warning("delivery worker: cannot connect (%s); trying again in %s s", exc, self.settings.poll_s)
                await asyncio.sleep(self.settings.poll_s)
                continue
            try:
                await conn.execute("LISTEN riskatlas_delivery")
                while True:
                    try:
                        self.running = self.pool.submit(delivery.run_once, self.db_settings, self.settings)
                        await asyncio.wrap_future(self.running)
                    except (psycopg.Error, OSError, ValueError) as exc:
                        log.warning("delivery round failed: %s", exc)
                    self.rounds += 1
                    async for _ in conn.notifies(timeout=self.settings.poll_s, stop_after=1):
                        pass
            except psycopg.OperationalError as exc:
                log.warning("delivery worker: connection lost (%s)", exc)
            finally:
                await conn.close()
