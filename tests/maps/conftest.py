"""Fixtures of the map tests: the app served by uvicorn on a free port (the browser is tests.conftest's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from layers.settings import DatabaseSettings
from tests.maps.browser import ROOT, serve, stop

ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def served(demo_db: DatabaseSettings) -> Iterator[str]:
    """Base URL of the app serving the demo region."""
    proc, base = serve(demo_db)
    yield base
    stop(proc)


@pytest.fixture
def artifacts() -> Path:
    """tests/artifacts (gitignored): screenshots of the pages."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
