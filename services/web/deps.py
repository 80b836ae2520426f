"""Typed dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import psycopg
from fastapi import Depends, Header, Request
from psycopg_pool import AsyncConnectionPool

from layers.settings import DatabaseSettings
from services.identity import Identity, present
from services.web.auth import presented_key
from services.web.settings import APISettings


async def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def get_heavy_pool(request: Request) -> AsyncConnectionPool:
    """The small pool of heavy analyses, so they cannot starve items, tiles and ``/health``."""
    return request.app.state.heavy_pool


async def get_api_settings(request: Request) -> APISettings:
    return request.app.state.api_settings


async def get_db_settings(request: Request) -> DatabaseSettings:
    return request.app.state.db_settings


async def get_identity(request: Request, x_api_key: Annotated[str | None, Header()] = None,
                       authorization: Annotated[str | None, Header()] = None) -> Identity:
    """The caller, verified by the database from the presented key (anonymous without one)."""
    key = presented_key(x_api_key, authorization)
    identity = await request.app.state.auth.identify(request.app.state.pool, key)
    request.state.identity = identity  # read-your-writes (services.web.routing) notes who wrote
    return identity


def _read_pool(request: Request, identity: Identity, heavy: bool) -> AsyncConnectionPool:
    """The replica's pool when it may serve this caller's read (services.web.routing), else the primary's."""
    routing = request.app.state.routing
    if routing is not None and not getattr(request.state, "force_primary", False) and routing.serves(identity):
        request.state.read_from = "replica"
        return routing.heavy_pool if heavy else routing.pool
    return request.app.state.heavy_pool if heavy else request.app.state.pool


async def get_read_pool(request: Request, identity: Annotated[Identity, Depends(get_identity)]) -> AsyncConnectionPool:
    """The pool of a read-only request (items, tiles, nearby): the replica's when it is in rotation and
    has replayed the caller's last write, else the primary's."""
    return _read_pool(request, identity, heavy=False)


async def get_heavy_read_pool(request: Request,
                              identity: Annotated[Identity, Depends(get_identity)]) -> AsyncConnectionPool:
    """The heavy pool of a read-only analysis (overlay, border hazards), on the replica when it may serve."""
    return _read_pool(request, identity, heavy=True)


@asynccontextmanager
async def connection(pool: AsyncConnectionPool, identity: Identity) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled connection in a transaction that presents ``identity``'s context (when it has one)."""
    async with pool.connection() as conn:
        await present(conn, identity)
        yield conn


PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
HeavyPoolDep = Annotated[AsyncConnectionPool, Depends(get_heavy_pool)]
ReadPoolDep = Annotated[AsyncConnectionPool, Depends(get_read_pool)]
HeavyReadPoolDep = Annotated[AsyncConnectionPool, Depends(get_heavy_read_pool)]
APISettingsDep = Annotated[APISettings, Depends(get_api_settings)]
DBSettingsDep = Annotated[DatabaseSettings, Depends(get_db_settings)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
