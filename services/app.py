"""The FastAPI application, built by ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from layers import db
from layers.settings import DatabaseSettings
from services import docs, errors, limits
from services.identity import load_keys
from services import ogc
from services.routers import (analysis_emergency, analysis_grading, analysis_hazards, analysis_overlay, health,
                              nearby, uploads, web)
from services.settings import APISettings


def create_app(db_settings: DatabaseSettings | None = None, api_settings: APISettings | None = None) -> FastAPI:
    """An application over one database; the pool opens with the app and closes with it."""
    db_settings = db_settings or DatabaseSettings()
    api_settings = api_settings or APISettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(db.url(db_settings, "app"), min_size=api_settings.pool_min,
                                   max_size=api_settings.pool_max, open=False, timeout=api_settings.pool_timeout_s,
                                   kwargs={"options": f"-c statement_timeout={db_settings.statement_timeout_ms}"})
        await pool.open(wait=True, timeout=30)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title=api_settings.title, description=api_settings.description, version="0.1.0",
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.db_settings = db_settings
    app.state.api_settings = api_settings
    app.state.api_keys = load_keys(api_settings.api_keys_file)
    errors.install(app)
    for router in (health.router, ogc.router, nearby.router, uploads.router, analysis_hazards.router,
                   analysis_overlay.router, analysis_emergency.router, analysis_grading.router, web.router):
        app.include_router(router)
    docs.install(app)
    limits.install(app, api_settings)
    return app


def app_from_env() -> FastAPI:
    """The application configured from the environment (``riskatlas serve``)."""
    return create_app()
