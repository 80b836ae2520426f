"""Domain errors and their one map to HTTP statuses and OGC exception bodies.

Code below the routers raises these, never ``HTTPException``; clients never see SQL or tracebacks.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import PoolTimeout
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("riskatlas")


class RiskAtlasError(Exception):
    """Base of every error a client may see; ``status`` and ``code`` travel to the response."""

    status = 400
    code = "InvalidParameterValue"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidParameter(RiskAtlasError):
    status = 400
    code = "InvalidParameterValue"


class NotFound(RiskAtlasError):
    status = 404
    code = "NotFound"


class Forbidden(RiskAtlasError):
    status = 403
    code = "Forbidden"


class Unauthorized(RiskAtlasError):
    status = 401
    code = "Unauthorized"


class Conflict(RiskAtlasError):
    status = 409
    code = "Conflict"


class PayloadTooLarge(RiskAtlasError):
    status = 413
    code = "PayloadTooLarge"


class Unavailable(RiskAtlasError):
    status = 503
    code = "ServiceUnavailable"


def _body(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"code": code, "description": description}, status_code=status)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into an OGC exception JSON body."""

    @app.exception_handler(RiskAtlasError)
    async def _domain(_: Request, exc: RiskAtlasError) -> JSONResponse:
        return _body(exc.status, exc.code, exc.description)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body", "path"))
            parts.append(f"{where or 'request'}: {e.get('msg')}")
        return _body(400, "InvalidParameterValue", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed", 406: "NotAcceptable"}.get(exc.status_code, "Error")
        return _body(exc.status_code, code, str(exc.detail))

    @app.exception_handler(psycopg.errors.InvalidAuthorizationSpecification)
    async def _context_refused(_: Request, exc: psycopg.errors.InvalidAuthorizationSpecification) -> JSONResponse:
        # the database refused the request's context: its key was revoked or expired meanwhile
        return _body(401, "Unauthorized", "the API key is no longer valid")

    @app.exception_handler(psycopg.errors.InsufficientPrivilege)
    async def _not_allowed(_: Request, exc: psycopg.errors.InsufficientPrivilege) -> JSONResponse:
        log.warning("refused by the database: %s", exc.diag.message_primary)
        return _body(403, "Forbidden", "this key may not do that (refused by row-level security)")

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def _timeout(_: Request, exc: psycopg.errors.QueryCanceled) -> JSONResponse:
        return _body(503, "ServiceUnavailable", "the query took longer than the statement time limit; "
                                                "narrow it with bbox, filter or limit")

    @app.exception_handler(PoolTimeout)
    async def _busy(_: Request, exc: PoolTimeout) -> JSONResponse:
        # every connection of the pool is lent: the service is busy, not down
        response = _body(503, "ServiceUnavailable", "the service is busy; try again in a few seconds")
        response.headers["Retry-After"] = "2"
        return response

    @app.exception_handler(psycopg.OperationalError)
    async def _db_down(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return _body(503, "ServiceUnavailable", "the database is not reachable")

    @app.exception_handler(Exception)
    async def _any(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _body(500, "ServerError", "internal error; it has been logged")
