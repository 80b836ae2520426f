"""Limits enforced before the work is done: body size while reading (auth first for uploads), request
rate per address and per key, statement time per role, and a full pool reported as busy.

Bodies are streamed to a real uvicorn over a real socket: the test client of Starlette reads a streamed
body whole before the app sees it, which would hide whether the app read it.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from layers import db
from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.settings import APISettings

KEYS = {"admin-key": {"user": "root", "role": "admin"}, "analyst-key": {"user": "ann", "role": "analyst"},
        "viewer-key": {"user": "ins", "role": "inspector"}}
CHUNK = 64 * 1024
UPLOAD_LIMIT = 256 * 1024
BODY_LIMIT = 16 * 1024
MULTIPART = "multipart/form-data; boundary=XyZ"
WAIT_S = 30.0  # bound of every wait below; each ends as soon as its condition holds


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(KEYS), encoding="utf-8")
    return path


# --- request bodies --------------------------------------------------------------------------------

class Counter:
    """Body bytes handed on at one level of the stack."""

    received = 0


class Counting:
    """ASGI wrapper counting the body bytes its app reads."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.counter.received += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@dataclass
class Served:
    port: int
    server: Counter  # what the server handed to the application (all of its middleware)
    handler: Counter  # what passed the middleware on to the routes


@contextmanager
def serve(app: ASGIApp) -> Iterator[int]:
    """``app`` under uvicorn in a thread on a free local port; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()


def stream(port: int, path: str, headers: dict[str, str], total: int, chunked: bool = True,
           prefix: bytes = b"") -> tuple[int, dict, int]:
    """POST a body of ``total`` bytes (``prefix``, then filler) to ``path`` chunk by chunk, stopping as
    soon as an answer arrives. Returns the status, the headers and the body bytes sent before the answer.
    """
    conn = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    head = [f"POST {path} HTTP/1.1", "Host: localhost", *(f"{k}: {v}" for k, v in headers.items())]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent, answer = 0, b""
    deadline = time.monotonic() + WAIT_S
    while b"\r\n\r\n" not in answer:
        assert time.monotonic() < deadline, f"no answer after {sent} bytes"
        readable, writable, _ = select.select([conn], [conn] if sent < total else [], [], WAIT_S)
        if readable:
            data = conn.recv(65536)
            assert data, f"connection closed without an answer after {sent} bytes"
            answer += data
        elif writable:
            n = min(CHUNK, total - sent)
            data = (prefix[sent:] + b"x" * n)[:n]
            conn.sendall(f"{n:x}\r\n".encode() + data + b"\r\n" if chunked else data)
            sent += n
    conn.close()
    status_line, *lines = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return int(status_line.split()[1]), dict(line.split(": ", 1) for line in lines), sent


@pytest.fixture
def served(demo_db: DatabaseSettings, keys_file: Path) -> Iterator[Served]:
    settings = APISettings(api_keys_file=keys_file, max_upload_bytes=UPLOAD_LIMIT, max_body_bytes=BODY_LIMIT)
    app = create_app(demo_db, settings)
    server, handler = Counter(), Counter()
    app.user_middleware.append(Middleware(Counting, counter=handler))  # the innermost, just above the routes
    with serve(Counting(app, server)) as port:
        yield Served(port, server, handler)


FILE_PART = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
             b"Content-Type: text/csv\r\n\r\n")
OFFERED = 64 * UPLOAD_LIMIT


def test_anonymous_upload_is_refused_before_its_body_is_read(served: Served) -> None:
    status, _, sent = stream(served.port, "/uploads", {"Content-Type": MULTIPART}, OFFERED, prefix=FILE_PART)
    assert status == 403
    assert served.server.received == 0
    assert sent < OFFERED  # answered long before it could send it all


def test_upload_with_an_unknown_key_is_refused_before_its_body_is_read(served: Served) -> None:
    status, _, _ = stream(served.port, "/uploads", {"Content-Type": MULTIPART, "X-API-Key": "nope"}, OFFERED,
                          prefix=FILE_PART)
    assert status == 401 and served.server.received == 0
    status, _, _ = stream(served.port, "/uploads", {"Content-Type": MULTIPART, "Authorization": "Bearer viewer-key"},
                          OFFERED, prefix=FILE_PART)
    assert status == 403 and served.server.received == 0


def test_a_declared_oversize_body_is_a_413_before_anything_is_read(served: Served) -> None:
    status, headers, _ = stream(served.port, "/uploads", {"Content-Type": MULTIPART}, OFFERED, chunked=False,
                                prefix=FILE_PART)
    assert status == 413 and served.server.received == 0 and headers["content-type"] == "application/json"


def test_a_chunked_upload_is_cut_off_at_the_limit(served: Served) -> None:
    status, _, sent = stream(served.port, "/uploads", {"Content-Type": MULTIPART, "X-API-Key": "admin-key"},
                             OFFERED, prefix=FILE_PART)
    assert status == 413
    limit = UPLOAD_LIMIT + 64 * 1024  # the upload limit and the room for the multipart framing
    assert 0 < served.handler.received <= limit, served.handler.received
    # the server reads ahead of the app by at most a few socket reads, then stops
    assert served.server.received <= limit + 1024**2, served.server.received
    assert sent < OFFERED


def test_other_bodies_have_a_small_limit(served: Served) -> None:
    status, _, sent = stream(served.port, "/analysis/overlay", {"Content-Type": "application/json"}, OFFERED)
    assert status == 413
    assert served.handler.received == 0  # the JSON check reads it first, within the limit
    assert served.server.received <= BODY_LIMIT + 1024**2 and sent < OFFERED


def test_body_limits_through_the_test_client(demo_db: DatabaseSettings, keys_file: Path) -> None:
    settings = APISettings(api_keys_file=keys_file, max_upload_bytes=UPLOAD_LIMIT, max_body_bytes=BODY_LIMIT)
    with TestClient(create_app(demo_db, settings)) as c:
        r = c.post("/analysis/overlay", content=b"{" + b" " * BODY_LIMIT + b"}",
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "PayloadTooLarge"
        assert str(BODY_LIMIT) in r.json()["description"]
        # a body within the limit goes through to the handler, which judges it
        r = c.post("/analysis/overlay", json={"left": "risk_source", "predicate": "within", "right": "nope"})
        assert r.status_code == 400 and "nope" in r.json()["description"]
        r = c.post("/uploads", headers={"X-API-Key": "admin-key"},
                   files={"file": ("s.csv", b"x" * (UPLOAD_LIMIT + 128 * 1024), "text/csv")},
                   data={"layer": "risk_source", "dry_run": "true"})
        assert r.status_code == 413


# --- request rate ----------------------------------------------------------------------------------

def _rate_app(demo_db: DatabaseSettings, keys_file: Path, **limits: float) -> TestClient:
    # rates of one token a day: nothing refills while the test runs, so every count below is exact
    settings = {"rate_per_address": 1 / 86400, "rate_burst_per_address": 5, "rate_per_key": 1 / 86400,
                "rate_burst_per_key": 3, "rate_auth_failure_cost": 2, **limits}
    return TestClient(create_app(demo_db, APISettings(api_keys_file=keys_file, **settings)))


def test_anonymous_requests_are_limited_per_address(demo_db: DatabaseSettings, keys_file: Path) -> None:
    with _rate_app(demo_db, keys_file) as c:
        analyst = {"X-API-Key": "analyst-key"}
        assert c.get("/conformance", headers=analyst).status_code == 200  # a key seen to work
        assert [c.get("/conformance").status_code for _ in range(5)] == [200] * 5
        r = c.get("/conformance")
        assert r.status_code == 429 and r.json()["code"] == "TooManyRequests"
        assert 80_000 < int(r.headers["Retry-After"]) <= 86400
        # /health is exempt, and a key that works has its own bucket
        assert [c.get("/health").status_code for _ in range(20)] == [200] * 20
        assert c.get("/conformance", headers=analyst).status_code == 200
        # a key not yet seen to work needs room at the address for a failed authentication
        assert c.get("/conformance", headers={"X-API-Key": "admin-key"}).status_code == 429


def test_requests_with_a_key_are_limited_per_key(demo_db: DatabaseSettings, keys_file: Path) -> None:
    with _rate_app(demo_db, keys_file) as c:
        ok = {"Authorization": "Bearer analyst-key"}
        assert [c.get("/conformance", headers=ok).status_code for _ in range(3)] == [200] * 3
        r = c.get("/conformance", headers={"X-API-Key": "analyst-key"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert "API key" in r.json()["description"]
        assert c.get("/conformance", headers={"X-API-Key": "admin-key"}).status_code == 200


def test_failed_authentications_cost_the_address_more(demo_db: DatabaseSettings, keys_file: Path) -> None:
    with _rate_app(demo_db, keys_file) as c:
        statuses = [c.get("/collections", headers={"X-API-Key": f"guess-{i}"}).status_code for i in range(10)]
        # a burst of 5 and a cost of 2 a failure: two guesses get an answer, the rest are throttled
        assert statuses == [401, 401] + [429] * 8
        r = c.get("/collections", headers={"X-API-Key": "guess-x"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        # the address is spent (one token left), for anonymous requests too
        assert [c.get("/conformance").status_code for _ in range(2)] == [200, 429]


def test_a_flood_of_bad_keys_is_throttled_with_the_default_limits(demo_db: DatabaseSettings) -> None:
    with TestClient(create_app(demo_db, APISettings())) as c:
        started = time.monotonic()
        rs = [c.get("/collections", headers={"X-API-Key": f"guess-{i}"}) for i in range(300)]
        elapsed = time.monotonic() - started
    settings = APISettings()
    # what the burst allows, plus what refills while the loop runs
    allowed = (settings.rate_burst_per_address + elapsed * settings.rate_per_address) / settings.rate_auth_failure_cost
    answered = sum(r.status_code == 401 for r in rs)
    assert answered <= allowed + 1, (answered, elapsed)
    throttled = [r for r in rs if r.status_code == 429]
    assert len(throttled) == 300 - answered and all(int(r.headers["Retry-After"]) >= 1 for r in throttled)


# --- statement time and the pool ------------------------------------------------------------------

@contextmanager
def table_locked(settings: DatabaseSettings, table: str) -> Iterator[psycopg.Connection]:
    """``table`` locked against reads until the block ends, from a connection of the owner."""
    with db.connect(settings) as conn:
        conn.execute(f"LOCK TABLE riskatlas.{table} IN ACCESS EXCLUSIVE MODE")
        yield conn
        conn.rollback()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


def lock_waiters(conn: psycopg.Connection, table: str) -> int:
    """Requests waiting for ``table``'s lock (pg_locks: the activity of other roles is hidden)."""
    return conn.execute("SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                        (f"riskatlas.{table}",)).fetchone()["n"]


def test_statement_time_depends_on_the_role(demo_db: DatabaseSettings, keys_file: Path) -> None:
    settings = APISettings(api_keys_file=keys_file, statement_timeout_public_ms=300,
                           statement_timeout_identified_ms=60_000, pool_min=1, pool_max=1)
    # anonymous: cancelled once its budget is spent, long before the connection's own limit (30 s)
    with TestClient(create_app(demo_db, settings)) as c, table_locked(demo_db, "risk_source"):
        started = time.monotonic()
        r = c.get("/collections/risk_source/items", params={"limit": 1})
        assert r.status_code == 503 and "statement time" in r.json()["description"]
        assert time.monotonic() - started < demo_db.statement_timeout_ms / 3000
    # an analyst may wait longer than the connection's own limit (100 ms here), until the lock is released
    short = demo_db.model_copy(update={"statement_timeout_ms": 100})
    with TestClient(create_app(short, settings)) as c, ThreadPoolExecutor(1) as pool:
        with table_locked(demo_db, "risk_source") as locker:
            waiting: Future = pool.submit(c.get, "/collections/risk_source/items", params={"limit": 1},
                                          headers={"X-API-Key": "analyst-key"})
            wait_until(lambda: lock_waiters(locker, "risk_source") >= 1, "the analyst's request to wait")
            assert not waiting.done()
        assert waiting.result(WAIT_S).status_code == 200
        # the one pooled connection went back with its own statement time
        assert c.portal.call(_pooled_statement_timeout, c.app) == "100ms"


async def _pooled_statement_timeout(app: Any) -> str:
    async with app.state.pool.connection() as conn:
        return (await (await conn.execute("SHOW statement_timeout")).fetchone())[0]


def test_a_full_pool_is_reported_as_busy(demo_db: DatabaseSettings, keys_file: Path) -> None:
    settings = APISettings(api_keys_file=keys_file, pool_min=1, pool_max=1, pool_timeout_s=0.5)
    with TestClient(create_app(demo_db, settings)) as c, ThreadPoolExecutor(1) as pool:
        with table_locked(demo_db, "risk_source") as locker:
            long: Future = pool.submit(c.get, "/collections/risk_source/items", params={"limit": 1},
                                       headers={"X-API-Key": "analyst-key"})
            wait_until(lambda: lock_waiters(locker, "risk_source") >= 1, "the long request to hold the pool")
            r = c.get("/layers")
            assert r.status_code == 503
            assert r.json() == {"code": "ServiceUnavailable", "description": "the service is busy; try again shortly"}
            assert int(r.headers["Retry-After"]) >= 1
        assert long.result(WAIT_S).status_code == 200
        assert c.get("/layers").status_code == 200
