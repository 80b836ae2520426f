"""Typed dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from psycopg_pool import AsyncConnectionPool

from layers.settings import DatabaseSettings
from services.identity import Identity, identify
from services.settings import APISettings


def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


def get_api_settings(request: Request) -> APISettings:
    return request.app.state.api_settings


def get_db_settings(request: Request) -> DatabaseSettings:
    return request.app.state.db_settings


def get_identity(request: Request, x_api_key: Annotated[str | None, Header()] = None,
                 authorization: Annotated[str | None, Header()] = None) -> Identity:
    return identify(request.app.state.api_keys, x_api_key, authorization)


PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
APISettingsDep = Annotated[APISettings, Depends(get_api_settings)]
DBSettingsDep = Annotated[DatabaseSettings, Depends(get_db_settings)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
