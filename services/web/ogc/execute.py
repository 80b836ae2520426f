"""Running the OGC SQL: one place that turns what the database refuses to evaluate into a 400."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from weakref import WeakKeyDictionary

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from services.errors import InvalidParameter
from services.identity import ANONYMOUS, Identity, present
from services.query.clauses import Clause
from services.web.limits import apply_budget

log = logging.getLogger("riskatlas")

#: The public-read pool beside a main pool (see :func:`register_public_pool`).
_PUBLIC_POOLS: WeakKeyDictionary[AsyncConnectionPool, AsyncConnectionPool] = WeakKeyDictionary()


def register_public_pool(pool: AsyncConnectionPool, public: AsyncConnectionPool) -> None:
    """Serve the anonymous reads lent from ``pool`` from ``public`` instead.

    ``public``'s connections are opened in autocommit, read-only, with the public time budget as their
    session's statement time (startup options), and are never changed by a lender: a public read then
    needs no statement before its own, nothing after it, and no reset when the connection goes back
    (measured on 1M sources: each of those is a round trip and Python time on both sides, together more
    than the nearby query itself).
    """
    _PUBLIC_POOLS[pool] = public


def public_pool_of(pool: AsyncConnectionPool) -> AsyncConnectionPool | None:
    """The public-read pool registered beside ``pool``, if any."""
    return _PUBLIC_POOLS.get(pool)


async def run_query(conn: psycopg.AsyncConnection, clause: Clause) -> list[tuple]:
    """Rows of ``clause``; a value the database refuses to evaluate is the request's 400, not a 500."""
    cur = conn.cursor(row_factory=tuple_row)
    try:
        await cur.execute(clause.text, clause.params)
        # in pipeline mode (anonymous reads) the database's answer, and its refusal, arrive here
        return await cur.fetchall()
    except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
        # PostGIS rejects some inputs only when it meets them (e.g. a relation it does not support
        # for a geometry collection): that is the request's fault, not the server's. The database's
        # own message is logged, never returned.
        log.warning("query rejected by the database: %s", str(exc).splitlines()[0] if str(exc) else exc)
        raise InvalidParameter(
            "the database could not evaluate this request (a geometry or value it cannot "
            "compare); simplify the filter or its geometries"
        ) from None


@asynccontextmanager
async def read_connection(pool: AsyncConnectionPool, identity: Identity = ANONYMOUS
                          ) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled connection for reads.

    Anonymous reads run in autocommit while the connection is lent: each statement then runs on its
    own, without the BEGIN before it and the ROLLBACK the pool sends when a connection comes back
    inside a transaction (two round trips fewer per request). An identified caller's reads run in
    one transaction that first presents the caller's signed context, so the database shows the
    restricted columns the caller may see (a context set in autocommit would last one statement).
    Every statement runs within the caller's time budget (services.web.limits). The pool's reset
    (``services.web.app._reset``: ``RESET ALL``, autocommit off) runs before the connection is lent
    again, so the anonymous budget, a session setting, never outlives this lending and other routers
    see no change; resetting it here as well would cost every request a round trip.
    An anonymous caller's statements run on the main pool's public-read pool when it has one
    (:func:`register_public_pool`); otherwise in pipeline mode: each fetch is a sync point, so they run
    in order as usual, and the budget travels with the first of them.
    """
    public = _PUBLIC_POOLS.get(pool) if identity.context is None and identity.role == "public" else None
    if public is not None:
        async with public.connection() as conn:
            yield conn
        return
    async with pool.connection() as conn:
        if identity.context is not None:
            await present(conn, identity)
            await apply_budget(conn, identity)  # in this transaction: local, ends with it
            yield conn
            return
        await conn.set_autocommit(True)
        # pipeline mode: the budget goes out in the same round trip as the caller's first statement
        # (a round trip costs about 0.8 ms on a busy 2-core machine, as much as a nearby query)
        async with conn.pipeline():
            await apply_budget(conn, identity)
            yield conn
