"""API keys at the HTTP edge: reading the presented key, and turning it into an identity.

The database checks the key (``riskatlas.authenticate``, a slow hash); the verified context is
cached for a short while so the hash runs once per key and minute, not once per request.
"""

from __future__ import annotations

import hashlib
import time

from psycopg_pool import AsyncConnectionPool

from services.errors import Unauthorized
from services.identity import ANONYMOUS, Identity

CACHE_SECONDS = 60.0
MAX_KEY_LENGTH = 256


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
