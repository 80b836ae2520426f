"""The one map from errors to HTTP statuses and OGC exception bodies.

Domain code raises ``services.errors`` classes, never ``HTTPException``; database and pool failures
are mapped here too. Clients never see SQL or tracebacks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from layers import db
from services.errors import (
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    PayloadTooLarge,
    RiskAtlasError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger("riskatlas")

#: HTTP status of each domain error class (looked up along the class's MRO).
STATUS: dict[type[RiskAtlasError], int] = {
    InvalidParameter: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    TooManyRequests: 429,
    Unavailable: 503,
    RiskAtlasError: 400,
}


def status_of(exc: RiskAtlasError) -> int:
    """The HTTP status for ``exc``: that of the nearest mapped class in its MRO."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


#: Seconds a client is asked to wait when every pooled connection is taken.
BUSY_RETRY_AFTER_S = 1
#: Seconds a client is asked to wait when the database does not answer (a restart, a failover).
DOWN_RETRY_AFTER_S = 5


def response(exc: RiskAtlasError) -> JSONResponse:
    """The OGC exception body of ``exc`` with its status and headers; also an ASGI app for middleware."""
    return _body(status_of(exc), exc.code, exc.description, exc.headers)


def _body(status: int, code: str, description: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "description": description}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into an OGC exception JSON body."""

    @app.exception_handler(RiskAtlasError)
    async def _domain(_: Request, exc: RiskAtlasError) -> JSONResponse:
        return response(exc)

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

    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def _busy(request: Request, exc: psycopg_pool.PoolTimeout) -> JSONResponse:
        # Every connection is lent out: the database is up, the service is saturated. Say so, and when to
        # come back, instead of the "not reachable" of a real outage (PoolTimeout is an OperationalError).
        if getattr(request.state, "read_from", None) == "replica":
            # the replica's pool is full: this read is run again on the primary (services.web.routing),
            # the replica stays in rotation
            request.state.database_failed = "busy"
            return _body(503, "ServiceUnavailable", "the service is busy; try again shortly",
                         {"Retry-After": str(BUSY_RETRY_AFTER_S)})
        request.state.database_failed = "busy"
        if not await _primary_answers(request):
            # no connection came because none can be made: an outage, not a crowd
            log.error("database unavailable (no connection within the pool's wait): %s", exc)
            return _body(503, "ServiceUnavailable", "the database is not reachable; try again shortly",
                         {"Retry-After": str(DOWN_RETRY_AFTER_S)})
        log.warning("connection pool exhausted: %s", exc)
        return _body(503, "ServiceUnavailable", "the service is busy; try again shortly",
                     {"Retry-After": str(BUSY_RETRY_AFTER_S)})

    @app.exception_handler(psycopg.DataError)
    async def _data(_: Request, exc: psycopg.DataError) -> JSONResponse:
        # The last line behind the checks at the edge (services.web.validation): a value the database cannot
        # take (a NUL byte, a number out of range, text it cannot encode) is the request's fault. Subclasses
        # such as NumericValueOutOfRange and UntranslatableCharacter land here too. The database's own
        # message is logged, never returned.
        log.warning("value refused by the database: %s", _first_line(exc))
        return _body(400, "InvalidParameterValue", "a value in the request cannot be used: it holds a NUL "
                                                   "byte or text that is not valid, or a number out of range")

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(_: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # psycopg encodes parameters to UTF-8 itself; a lone surrogate (JSON "\ud800") fails there with
        # this error rather than a DataError.
        log.warning("text that cannot be encoded reached the database layer: %s", exc.reason)
        return _body(400, "InvalidParameterValue", "a value in the request is not valid Unicode text "
                                                   "(lone surrogates are not allowed)")

    @app.exception_handler(psycopg.OperationalError)
    async def _db_down(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        request.state.database_failed = "down"  # a read on the replica is run again on the primary
        return _body(503, "ServiceUnavailable", "the database is not reachable; try again shortly",
                     {"Retry-After": str(DOWN_RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def _any(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _body(500, "ServerError", "internal error; it has been logged")


async def _primary_answers(request: Request) -> bool:
    """Whether a new connection to the primary can be made now (told apart: busy, or down)."""
    try:
        conn = await psycopg.AsyncConnection.connect(db.url(request.app.state.db_settings, "app"), connect_timeout=2)
    except (psycopg.OperationalError, OSError):
        return False
    await conn.close()
    return True


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
