"""The FastAPI application, built by ``create_app(settings)``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from layers import db
from layers.settings import DatabaseSettings
from services import accounts
from services.incidents.settings import DeliverySettings
from services.incidents.worker import Worker
from services.tiles import TileCache
from services.web import docs, errors, limits, ogc
from services.web.auth import Authenticator
from services.web.ogc.execute import register_public_pool
from services.web.routers import (
    analysis_emergency,
    analysis_grading,
    analysis_hazards,
    analysis_overlay,
    changes,
    health,
    incidents,
    inspections,
    mobile,
    nearby,
    observations_features,
    observations_push,
    observations_read,
    uploads,
    web,
)
from services.web.routing import ReadRouting, ReplicaFallback
from services.web.settings import APISettings


async def _reset(conn: psycopg.AsyncConnection) -> None:
    """Give a connection back to the pool as it was lent: default rows, no session settings.

    The pool hands it over idle; RESET ALL runs in autocommit (in a transaction it would start one,
    and a rollback would undo it), and the connection goes back with autocommit off.
    """
    conn.row_factory = tuple_row
    await conn.set_autocommit(True)
    await conn.execute("RESET ALL")
    await conn.set_autocommit(False)


def _reset_sync(conn: psycopg.Connection) -> None:
    conn.row_factory = dict_row
    conn.autocommit = True
    conn.execute("RESET ALL")
    conn.autocommit = False


def create_app(db_settings: DatabaseSettings | None = None, api_settings: APISettings | None = None,
               delivery_settings: DeliverySettings | None = None) -> FastAPI:
    """An application over one database; the pools open with the app and close with it.

    Three pools of the application role: the main one for items, tiles, nearby and ``/health``; a
    small one for heavy analyses (overlay, border hazards), so they cannot starve the main one; and a
    small synchronous one for the analyses written against synchronous psycopg (river walks, plume,
    grading), which run in worker threads. With a read replica, :class:`ReadRouting` adds its own
    main and heavy pools and sends read-only requests there (``services.web.routing``).
    """
    db_settings = db_settings or DatabaseSettings()
    api_settings = api_settings or APISettings()
    delivery_settings = delivery_settings or DeliverySettings()
    options = {"options": f"-c statement_timeout={db_settings.statement_timeout_ms}"}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if api_settings.api_keys_file is not None:
            await asyncio.to_thread(_import_keys, db_settings, api_settings)
        url = db.url(db_settings, "app")
        pool = AsyncConnectionPool(url, min_size=api_settings.pool_min, max_size=api_settings.pool_max,
                                   open=False, kwargs=options, reset=_reset, timeout=api_settings.pool_timeout_s)
        heavy = AsyncConnectionPool(url, min_size=1, max_size=api_settings.heavy_pool_max, open=False,
                                    kwargs=options, reset=_reset, timeout=api_settings.pool_timeout_s)
        heavy_sync = ConnectionPool(url, min_size=1, max_size=api_settings.heavy_pool_max, open=False,
                                    kwargs={**options, "row_factory": dict_row}, reset=_reset_sync,
                                    timeout=api_settings.pool_timeout_s)
        # anonymous reads: autocommit, read-only, the public budget as the session's (see register_public_pool)
        public = AsyncConnectionPool(
            url, min_size=1, max_size=api_settings.pool_max, open=False, timeout=api_settings.pool_timeout_s,
            kwargs={"autocommit": True, "options": f"-c statement_timeout={api_settings.statement_timeout_public_ms}"
                                                   " -c default_transaction_read_only=on"})
        await pool.open(wait=True, timeout=30)
        await public.open(wait=True, timeout=30)
        register_public_pool(pool, public)
        await heavy.open(wait=True, timeout=30)
        await asyncio.to_thread(heavy_sync.open, True, 30.0)
        app.state.pool, app.state.heavy_pool, app.state.heavy_sync_pool = pool, heavy, heavy_sync
        replica_url = _replica_url(db_settings, api_settings)
        routing = None
        if replica_url is not None:
            routing = ReadRouting(replica_url, max_lag_s=api_settings.replica_max_lag_s,
                                  interval_s=api_settings.replica_check_interval_s, pool_max=api_settings.pool_max,
                                  heavy_max=api_settings.heavy_pool_max, pool_timeout_s=REPLICA_POOL_TIMEOUT_S,
                                  options=options, reset=_reset)
            await routing.open(pool)
        app.state.routing = routing
        worker = None
        if delivery_settings.worker:  # notices go out by e-mail and webhook (services.incidents)
            worker = Worker(db_settings, delivery_settings)
            worker.start()
        app.state.delivery_worker = worker
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            if routing is not None:
                await routing.close()
            await pool.close()
            await public.close()
            await heavy.close()
            await asyncio.to_thread(heavy_sync.close)

    app = FastAPI(title=api_settings.title, description=api_settings.description, version="0.1.0",
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.db_settings = db_settings
    app.state.api_settings = api_settings
    app.state.delivery_settings = delivery_settings
    app.state.auth = Authenticator(api_settings.key_cache_seconds)
    app.state.tile_cache = TileCache(db_settings.state_dir / "tile-cache" / db_settings.db_name,
                                     api_settings.tile_cache_mb * 1024 * 1024)
    app.state.routing = None
    errors.install(app)
    # observations_features before ogc: its /collections/observations would otherwise be a catalogue id
    for router in (health.router, observations_features.router, ogc.router, nearby.router, uploads.router,
                   analysis_hazards.router,
                   analysis_overlay.router, analysis_emergency.router, analysis_grading.router, web.router,
                   mobile.router, observations_push.router, observations_read.router, inspections.router,
                   incidents.router, changes.router):
        app.include_router(router)
    docs.install(app)
    app.add_middleware(ReplicaFallback)  # innermost: a retried read passes the limits once
    limits.install(app, api_settings)
    return app


#: How long a read waits for a replica connection before it goes to the primary instead.
REPLICA_POOL_TIMEOUT_S = 1.0


def _replica_url(db_settings: DatabaseSettings, api_settings: APISettings) -> str | None:
    """The replica the API reads from: ``RISKATLAS_REPLICA_URL``, else the local replica when it runs as
    the API starts (``riskatlas db replica start``), else none (every read goes to the primary)."""
    from layers import cluster, replica

    if not api_settings.read_replica:
        return None
    if db_settings.replica_url:
        return db_settings.replica_url
    if db_settings.managed and cluster.is_running(replica.paths(db_settings)):
        return replica.app_url(db_settings)
    return None


def _import_keys(db_settings: DatabaseSettings, api_settings: APISettings) -> None:
    """Import the configured JSON key file into the database (the file is an import, not the store)."""
    assert api_settings.api_keys_file is not None
    with db.connect(db_settings) as conn:
        accounts.import_key_file(conn, api_settings.api_keys_file)


def app_from_env() -> FastAPI:
    """The application configured from the environment (``riskatlas serve``)."""
    return create_app()
