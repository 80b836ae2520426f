"""Who is asking: an identity from an API key, with a role and, for a steward, a city.

Roles: ``public`` (anonymous viewer), ``analyst``, ``inspector``, ``steward`` (of one city) and
``admin``.  Restricted fields are shown to analysts, stewards and admins only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from services.errors import InvalidParameter, Unauthorized

ROLES = ("public", "analyst", "inspector", "steward", "admin")


@dataclass(frozen=True)
class Identity:
    user: str = "anonymous"
    role: str = "public"
    city: str | None = None

    @property
    def sees_restricted(self) -> bool:
        return self.role in ("analyst", "steward", "admin")


ANONYMOUS = Identity()


def load_keys(path: Path | None) -> dict[str, Identity]:
    """API keys from a JSON file: ``{"key": {"user": ..., "role": ..., "city": ...}}``."""
    if path is None:
        return {}
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    keys = {}
    for key, v in doc.items():
        if v.get("role") not in ROLES:
            raise InvalidParameter(f"{path}: role of key for {v.get('user')!r} was {v.get('role')!r} but is "
                                   f"expected to be one of {list(ROLES)}")
        keys[key] = Identity(user=v.get("user", "unnamed"), role=v["role"], city=v.get("city"))
    return keys


def identify(keys: dict[str, Identity], api_key: str | None, authorization: str | None) -> Identity:
    """The caller's identity; anonymous without a key, 401 with an unknown one."""
    token = api_key
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if not token:
        return ANONYMOUS
    ident = keys.get(token)
    if ident is None:
        raise Unauthorized("the API key is not known")
    return ident
