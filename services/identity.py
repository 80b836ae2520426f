"""Who is asking: an identity the database verified from an API key.

Roles: ``public`` (anonymous viewer), ``analyst``, ``inspector``, ``steward`` (of one city) and
``admin``.  Restricted fields are shown to analysts, stewards and admins only.

Keys live in the database as slow hashes (``services.accounts``).  ``riskatlas.authenticate``
checks a presented key and returns a signed context; requests present that context on their
connection (``riskatlas.ctx``) and the database verifies it, with the key's revocation and expiry,
on every statement that asks who acts.  The service keeps a verified context for a short while so
the slow hash runs once per key and minute, not once per request; revocation still takes effect at
the next statement, because the database checks the key behind every context.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool

from services.errors import Forbidden, InvalidParameter, Unauthorized

ROLES = ("public", "analyst", "inspector", "steward", "admin")
CACHE_SECONDS = 60.0
MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class Identity:
    user: str = "anonymous"
    role: str = "public"
    city: str | None = None
    context: str | None = None  # the signed context to present on the connection
    key_id: int | None = None

    @property
    def sees_restricted(self) -> bool:
        return self.role in ("analyst", "steward", "admin")

    def require_writer(self) -> None:
        """Raise unless this identity may write inventory rows (a steward with a city, or an admin)."""
        if self.role not in ("steward", "admin"):
            raise Forbidden(f"this needs a steward or administrator key; this request is {self.role!r}")
        if self.role == "steward" and not self.city:
            raise Forbidden("this steward key names no city, so it may write nothing; ask an administrator "
                            "to set the account's city")


ANONYMOUS = Identity()


def presented_key(api_key: str | None, authorization: str | None) -> str | None:
    """The key from ``X-API-Key`` or ``Authorization: Bearer``; None when neither is given."""
    token = api_key
    if authorization:
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "bearer" or not rest.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'")
        token = rest.strip()
    if token is None or token == "":
        return None
    if len(token) > MAX_KEY_LENGTH or not token.isprintable() or not token.isascii():
        raise Unauthorized("the API key is not well-formed")
    return token


class Authenticator:
    """Turns a presented key into an :class:`Identity` through ``riskatlas.authenticate``."""

    def __init__(self, cache_seconds: float = CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Identity]] = {}

    async def identify(self, pool: AsyncConnectionPool, key: str | None) -> Identity:
        """The caller's identity; anonymous without a key, 401 with an unknown, revoked or expired one."""
        if key is None:
            return ANONYMOUS
        digest = hashlib.sha256(key.encode()).hexdigest()
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT account, role, city, key_id, context FROM riskatlas.authenticate(%s)",
                                     (key,))
            row = await cur.fetchone()
        if row is None:
            self._cache.pop(digest, None)
            raise Unauthorized("the API key is not known, was revoked or has expired")
        ident = Identity(user=row[0], role=row[1], city=row[2], key_id=row[3], context=row[4])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.cache_seconds, ident)
        return ident

    def forget(self, key: str) -> None:
        """Drop a cached context (after the database refused it)."""
        self._cache.pop(hashlib.sha256(key.encode()).hexdigest(), None)


async def present(conn: psycopg.AsyncConnection, identity: Identity) -> None:
    """Present ``identity``'s context on ``conn`` for the current transaction and have it verified.

    Raises ``Unauthorized`` when the database no longer accepts it (key revoked or expired since).
    """
    if identity.context is None:
        return
    try:
        await conn.execute("SELECT set_config('riskatlas.ctx', %s, true), (riskatlas.actor()).role",
                           (identity.context,))
    except psycopg.errors.InvalidAuthorizationSpecification as exc:
        await conn.rollback()
        raise Unauthorized(f"the API key is no longer valid: {exc.diag.message_primary}") from None


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`, else a 400 naming the allowed ones."""
    if role not in ROLES:
        raise InvalidParameter(f"role was {role!r} but is expected to be one of {list(ROLES)}")
    return role


def present_sync(conn: psycopg.Connection, identity: Identity) -> None:
    """:func:`present` for a synchronous connection (analyses that run in worker threads)."""
    if identity.context is None:
        return
    try:
        conn.execute("SELECT set_config('riskatlas.ctx', %s, true), (riskatlas.actor()).role", (identity.context,))
    except psycopg.errors.InvalidAuthorizationSpecification as exc:
        conn.rollback()
        raise Unauthorized(f"the API key is no longer valid: {exc.diag.message_primary}") from None
