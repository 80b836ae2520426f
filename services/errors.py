"""Domain errors: what went wrong, in words a caller can act on, with an OGC exception code.

Analyses, loaders and the command line raise these; they know nothing of HTTP. The web layer
(``services.web.errors``) maps each class to a status and an OGC exception body; the command line
prints the description and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Mapping


class RiskAtlasError(Exception):
    """Base of every error a caller may see; ``code`` is the OGC exception code, ``headers`` hints for HTTP."""

    code = "InvalidParameterValue"

    def __init__(self, description: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.headers = dict(headers or {})


class InvalidParameter(RiskAtlasError):
    code = "InvalidParameterValue"


class NotFound(RiskAtlasError):
    code = "NotFound"


class Forbidden(RiskAtlasError):
    code = "Forbidden"


class Unauthorized(RiskAtlasError):
    code = "Unauthorized"


class Conflict(RiskAtlasError):
    code = "Conflict"


class PayloadTooLarge(RiskAtlasError):
    code = "PayloadTooLarge"


class Unavailable(RiskAtlasError):
    code = "ServiceUnavailable"


class TooManyRequests(RiskAtlasError):
    code = "TooManyRequests"
