"""Helpers of the browser tests: the app under uvicorn on a free port, and a log of what a page reported."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[2]

#: How long the app may take to start and answer its first request.
STARTUP_S = 60


def serve(settings: DatabaseSettings, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the app on ``settings``' database with uvicorn in a subprocess; returns it and its base URL.

    The listening socket is made here and handed to uvicorn (``--fd``): it exists before the server does,
    so the first request waits in its backlog until the app answers (no polling), and no other process can
    take the port in between.  If uvicorn exits, the socket closes with it and the request fails at once.
    The server's output goes to a file (a pipe nobody reads would stall the server once full).
    """
    env = {**os.environ, "RISKATLAS_DB_NAME": settings.db_name, "RISKATLAS_PG_PORT": str(settings.pg_port),
           "RISKATLAS_STATE_DIR": str(settings.state_dir), **(extra_env or {})}
    env.pop("DATABASE_URL", None)
    output = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "services.web.app:app_from_env", "--factory",
                                 "--fd", str(listener.fileno()), "--log-level", "warning"],
                                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True,
                                pass_fds=(listener.fileno(),))
    proc.output = output  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"
    try:
        answer = httpx.get(base + "/health", timeout=STARTUP_S)
    except httpx.HTTPError as e:
        stop(proc)
        raise RuntimeError(f"uvicorn did not answer /health ({e!r}); it said: {server_output(proc)}") from e
    if answer.status_code != 200:
        stop(proc)
        raise RuntimeError(f"/health answered {answer.status_code}: {answer.text}; uvicorn said: {server_output(proc)}")
    return proc, base


def server_output(proc: subprocess.Popen) -> str:
    """What the server started by :func:`serve` wrote so far."""
    output = proc.output  # type: ignore[attr-defined]
    output.seek(0)
    return output.read()


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.output.close()  # type: ignore[attr-defined]


@dataclass
class PageLog:
    """What a page reported: console errors, uncaught exceptions and failed or refused requests.

    A request the page cancelled itself (``net::ERR_ABORTED``: MapLibre aborts the tiles that left the view
    while they loaded, which a slow machine makes frequent) is kept apart in ``aborted``: no failure.
    """

    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("requestfailed", self._request_failed)
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} -> {r.status}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def _request_failed(self, request: Any) -> None:
        (self.aborted if request.failure == "net::ERR_ABORTED" else self.failed).append(
            f"{request.url} ({request.failure})")


def open_map(browser: Any, base: str, **context_options: Any) -> tuple[Any, Any, PageLog]:
    """A new browser context on ``base``/map, once the viewer reports its first full render:
    (context, page, the page's log). The viewport is 1400 × 900 unless ``context_options`` say otherwise."""
    context = browser.new_context(**{"viewport": {"width": 1400, "height": 900}, **context_options})
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    page.goto(base + "/map")
    page.wait_for_function("window.riskmap && window.riskmap.firstRenderMs > 0", timeout=60_000)
    return context, page, log
