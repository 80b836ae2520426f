"""Who is asking: an identity the database verified from an API key.

Roles: ``public`` (anonymous viewer), ``analyst``, ``inspector``, ``steward`` (of one city), ``duty``
(duty officer of one city: opens incidents, acknowledges notices) and ``admin``.  Restricted fields are
shown to analysts, stewards, duty officers and admins only.

Keys live in the database as slow hashes (``services.accounts``).  ``riskatlas.authenticate``
checks a presented key and returns a signed context; requests present that context on their
connection (``riskatlas.ctx``) and the database verifies it, with the key's revocation and expiry,
on every statement that asks who acts.  The service keeps a verified context for a short while so
the slow hash runs once per key and minute, not once per request (``services.web.auth``);
revocation still takes effect at the next statement, because the database checks the key behind
every context.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from services.errors import Forbidden, InvalidParameter, Unauthorized

ROLES = ("public", "analyst", "inspector", "steward", "duty", "admin")


@dataclass(frozen=True)
class Identity:
    user: str = "anonymous"
    role: str = "public"
    city: str | None = None
    context: str | None = None  # the signed context to present on the connection
    key_id: int | None = None

    @property
    def sees_restricted(self) -> bool:
        return self.role in ("analyst", "steward", "duty", "admin")

    def require_writer(self) -> None:
        """Raise unless this identity may write inventory rows (a steward with a city, or an admin)."""
        if self.role not in ("steward", "admin"):
            raise Forbidden(f"this needs a steward or administrator key; this request is {self.role!r}")
        if self.role == "steward" and not self.city:
            raise Forbidden("this steward key names no city, so it may write nothing; ask an administrator "
                            "to set the account's city")


ANONYMOUS = Identity()


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
