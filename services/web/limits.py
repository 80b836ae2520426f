"""Limits on what a client can make the service do, enforced before the work is done (DESIGN 9).

* :class:`RateLimit`: token buckets per client address and per API key; 429 with ``Retry-After``. A
  failed authentication costs the address many tokens, so guessing keys is throttled after a few tries.
* :class:`BodyLimit`: request bodies are bounded while they are read (413 before more than the limit
  is taken in), by ``Content-Length`` up front and by counting chunked bodies; an upload is refused
  (401/403) before its body is read unless the caller is a steward or an administrator.
* :func:`apply_budget`: the statement time of a request's database work, by role.

:func:`install` adds the middleware (with :class:`services.web.validation.InputCheck`) in their order.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass

import psycopg
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.errors import Forbidden, PayloadTooLarge, RiskAtlasError, TooManyRequests
from services.identity import Identity
from services.web import errors
from services.web.auth import presented_key
from services.web.settings import APISettings
from services.web.validation import InputCheck

UPLOAD_PATH = "/uploads"
PUSH_PATH = "/observations"  # observation batches: a larger body, refused before reading unless a writer
SYNC_PATH = "/inspections/sync"  # inspection records with photos: an upload's limit, for field roles only
SYNC_ROLES = ("inspector", "steward", "admin")
UPLOAD_ROLES = ("steward", "admin")
#: Room for the multipart framing and the form fields around an upload's file.
MULTIPART_ALLOWANCE = 64 * 1024
#: Buckets kept before full ones (indistinguishable from new ones) are dropped.
MAX_BUCKETS = 100_000

#: The settings of the application serving the current request, for :func:`apply_budget`.
_request_settings: ContextVar[APISettings | None] = ContextVar("riskatlas_request_settings", default=None)


def install(app: FastAPI, settings: APISettings) -> None:
    """Add the limits to ``app``: rate first (cheapest), then the body limit, then the input checks."""
    # Starlette runs the middleware added last first.
    app.add_middleware(InputCheck, openapi=app.openapi)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(RateLimit, settings=settings)


async def caller(scope: Scope) -> Identity:
    """The identity of the request in ``scope``, from its API key; raises Unauthorized for an unknown key.

    The one place the middleware learns who is asking, so that a change in how keys are verified is one
    change here.
    """
    headers = Headers(scope=scope)
    app = scope["app"]
    key = presented_key(headers.get("x-api-key"), headers.get("authorization"))
    return await app.state.auth.identify(app.state.pool, key)


# --- statement time -------------------------------------------------------------------------------

def budget_ms(identity: Identity | None) -> int:
    """Statement time in ms for ``identity`` (None: an anonymous or public request)."""
    settings = _request_settings.get() or APISettings.model_construct()
    if identity is None or identity.role == "public":
        return settings.statement_timeout_public_ms
    return settings.statement_timeout_identified_ms


async def apply_budget(conn: psycopg.AsyncConnection, identity: Identity | None) -> None:
    """Bound every statement of this lending of ``conn`` by the caller's time budget.

    In a transaction the setting is local and ends with it (the pool rolls back a returned connection).
    On a connection in autocommit the setting holds for the session: whoever lends it so must reset it
    (``RESET statement_timeout``) before it goes back, as :func:`services.web.ogc.execute.read_connection` does.
    """
    await conn.execute("SELECT set_config('statement_timeout', %s, %s)",
                       (str(budget_ms(identity)), not conn.autocommit))


def apply_budget_sync(conn: psycopg.Connection, identity: Identity | None) -> None:
    """:func:`apply_budget` for the synchronous connections of the analyses run in worker threads."""
    conn.execute("SELECT set_config('statement_timeout', %s, %s)",
                 (str(budget_ms(identity)), not conn.autocommit))


# --- request rate ----------------------------------------------------------------------------------

@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens a second up to ``burst``; memory bounded by ``max_buckets``."""

    def __init__(self, rate: float, burst: float, max_buckets: int = MAX_BUCKETS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; 0.0 if they were there, else the seconds until they will be (none taken)."""
        bucket = self._refilled(key)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (min(cost, self.burst) - bucket.tokens) / self.rate

    def charge(self, key: str, cost: float) -> None:
        """Take ``cost`` tokens even if that empties the bucket below zero (a penalty)."""
        bucket = self._refilled(key)
        bucket.tokens = max(bucket.tokens - cost, -self.burst)

    def refund(self, key: str, cost: float) -> None:
        """Give back tokens taken for work that turned out cheaper."""
        bucket = self._refilled(key)
        bucket.tokens = min(bucket.tokens + cost, self.burst)

    def _refilled(self, key: str) -> _Bucket:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            self._prune(now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            self._buckets.move_to_end(key)
        return bucket

    def _prune(self, now: float) -> None:
        # Least recently used first. A bucket that has filled up again is the same as no bucket, so it
        # goes; past twice the bound the oldest go whatever their state (a flood of new addresses).
        while len(self._buckets) > self.max_buckets:
            key, b = next(iter(self._buckets.items()))
            if b.tokens + (now - b.stamp) * self.rate < self.burst and len(self._buckets) <= 2 * self.max_buckets:
                break
            del self._buckets[key]


class RateLimit:
    """ASGI middleware: requests per client address and per API key, 429 with ``Retry-After`` beyond.

    A request without a key takes a token of its address. A request with a key takes a token of the
    key; a key not yet seen to work also holds ``rate_auth_failure_cost`` tokens of its address until
    the answer shows it was accepted (then they are given back), so a burst of guessed keys is
    throttled even when the guesses run concurrently. Nothing here verifies a key: that costs more
    than counting, and comes after. ``rate_exempt_paths`` (``/health``) are not counted.
    """

    def __init__(self, app: ASGIApp, settings: APISettings) -> None:
        self.app = app
        self.settings = settings
        self.addresses = TokenBuckets(settings.rate_per_address, settings.rate_burst_per_address)
        self.keys = TokenBuckets(settings.rate_per_key, settings.rate_burst_per_key)
        # keys that were accepted: bounded, and only an accounting hint (every request is still verified)
        self.known_keys: OrderedDict[str, None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _presented_key(scope)
        _request_settings.set(self.settings)
        if _route_path(scope).startswith(self.settings.rate_exempt_paths):
            await self.app(scope, receive, send)
            return
        address = _address(scope)
        if token is None:
            wait = self.addresses.take(address)
            if wait:
                await _too_many(scope, receive, send, wait, "this address")
                return
            await self.app(scope, receive, send)
            return
        key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        known = key in self.known_keys
        # never more than the bucket holds, or a new key could never pass
        hold = 0.0 if known else min(self.settings.rate_auth_failure_cost, self.addresses.burst)
        wait = self.addresses.take(address, hold) if hold else 0.0
        if wait:
            await _too_many(scope, receive, send, wait, "this address (after failed authentications)")
            return
        wait = self.keys.take(key)
        if wait:
            if hold:
                self.addresses.refund(address, hold)
            await _too_many(scope, receive, send, wait, "this API key")
            return
        status = 0

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self._account(address, key, hold, status)

    def _account(self, address: str, key: str, held: float, status: int) -> None:
        if status == 401:
            self.known_keys.pop(key, None)
            if not held:  # a key that worked before and no longer does: charge now
                self.addresses.charge(address, self.settings.rate_auth_failure_cost)
            return
        if held:
            self.addresses.refund(address, held)
        if status and status < 500:
            self.known_keys[key] = None
            self.known_keys.move_to_end(key)
            while len(self.known_keys) > MAX_BUCKETS:
                self.known_keys.popitem(last=False)


async def _too_many(scope: Scope, receive: Receive, send: Send, wait: float, who: str) -> None:
    seconds = max(1, math.ceil(wait))
    exc = TooManyRequests(f"too many requests from {who}; retry after {seconds} s",
                          headers={"Retry-After": str(seconds)})
    await errors.response(exc)(scope, receive, send)


def _presented_key(scope: Scope) -> str | None:
    headers = Headers(scope=scope)
    authorization = headers.get("authorization")
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return headers.get("x-api-key") or None


def _address(scope: Scope) -> str:
    """The client address; IPv6 by /64, the block one subscriber usually holds."""
    client = scope.get("client")
    host = client[0] if client else "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


# --- request bodies --------------------------------------------------------------------------------

class BodyLimit:
    """ASGI middleware: a body larger than the limit of its path gets 413 before more of it is read.

    Uploads may carry ``max_upload_bytes`` (plus room for the multipart framing); every other body
    ``max_body_bytes``. A declared ``Content-Length`` over the limit is refused without reading; a
    chunked body is counted as it arrives, and the chunk that crosses the limit is not passed on. An
    upload is refused before its body is read unless the caller may upload.
    """

    def __init__(self, app: ASGIApp, settings: APISettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _route_path(scope) == SYNC_PATH and scope["method"] == "POST":
            await _sync_limited(self.app, scope, receive, send, self.settings)
            return
        upload = _route_path(scope) == UPLOAD_PATH
        push = _route_path(scope) == PUSH_PATH and scope["method"] == "POST"
        limit = (self.settings.max_upload_bytes + MULTIPART_ALLOWANCE if upload
                 else self.settings.max_push_bytes if push else self.settings.max_body_bytes)
        what = "an upload" if upload else "a push of observations" if push else "a request body"
        too_large = PayloadTooLarge(f"{what} is limited to {limit} bytes")
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await errors.response(too_large)(scope, receive, send)
            return
        if (upload or push) and scope["method"] == "POST":
            try:
                identity = await caller(scope)
                if identity.role not in UPLOAD_ROLES:
                    raise Forbidden(f"{'uploads' if upload else 'pushes of observations'} need a steward or "
                                    f"administrator key; this request is {identity.role!r}")
            except RiskAtlasError as exc:
                await errors.response(exc)(scope, receive, send)
                return
        await _limited(self.app, scope, receive, send, limit, too_large)


async def _sync_limited(app: ASGIApp, scope: Scope, receive: Receive, send: Send, settings: APISettings) -> None:
    """An inspection sync: an upload's limit, refused before its body is read unless a field role."""
    limit = settings.max_upload_bytes + MULTIPART_ALLOWANCE
    too_large = PayloadTooLarge(f"a sync of inspection records is limited to {limit} bytes")
    declared = Headers(scope=scope).get("content-length")
    try:
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise too_large
        identity = await caller(scope)
        if identity.role not in SYNC_ROLES:
            raise Forbidden(f"inspection records are synced by inspectors and stewards; this request is "
                            f"{identity.role!r}")
    except RiskAtlasError as exc:
        await errors.response(exc)(scope, receive, send)
        return
    await _limited(app, scope, receive, send, limit, too_large)


class _Exceeded(Exception):
    """Raised from ``receive`` into the app when a body passes the limit."""


async def _limited(app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int,
                   too_large: PayloadTooLarge) -> None:
    received = 0
    exceeded = False
    started = False

    async def counting_receive() -> Message:
        nonlocal received, exceeded
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                exceeded = True
                raise _Exceeded()
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal started
        # Whatever the app makes of the interrupted read (FastAPI calls it a 400 "error parsing the
        # body"), the answer is the 413.
        if exceeded:
            return
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, counting_receive, guarded_send)
    except _Exceeded:
        pass
    if exceeded and not started:
        await errors.response(too_large)(scope, receive, send)
