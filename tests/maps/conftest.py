"""Fixtures of the map tests: the app served by uvicorn on a free port, and headless Debian Chromium.

The browser is driven by Playwright with ``executable_path`` set to Debian's chromium (Playwright's own
browser download is never used).  A missing chromium fails the tests: nothing here skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from layers.settings import DatabaseSettings
from maps.png import CHROMIUM_ARGS, chromium_path
from tests.maps.browser import ROOT, serve, stop

ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def served(demo_db: DatabaseSettings) -> Iterator[str]:
    """Base URL of the app serving the demo region."""
    proc, base = serve(demo_db)
    yield base
    stop(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        yield b
        b.close()


@pytest.fixture
def artifacts() -> Path:
    """tests/artifacts (gitignored): screenshots of the pages."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
