"""Fixtures: a real PostGIS (the project's own cluster), throw-away databases, the loaded demo region.

A missing database fails the tests; nothing here skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
DEMO_REPORTS: dict[str, object] = {}


def row_counts(settings: DatabaseSettings, tables: tuple[str, ...]) -> dict[str, int]:
    """How many rows each of the schema's ``tables`` holds."""
    from psycopg import sql

    from layers.catalogue import relation

    with db.connect(settings) as conn:
        return {t: conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(relation(t))).fetchone()["n"]
                for t in tables}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that drive Chromium are marked ``browser`` (select them with ``-m browser``, skip with ``-m 'not browser'``)."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def cluster_settings() -> DatabaseSettings:
    """The project's own cluster, started if needed (as `make test` does)."""
    s = DatabaseSettings(database_url=None, state_dir=ROOT / ".riskatlas")
    cluster.start(s)
    return s


def _new_database(base: DatabaseSettings, label: str) -> DatabaseSettings:
    name = f"riskatlas_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    cluster.bootstrap(base, name)
    return base.with_db(name)


@pytest.fixture
def empty_db(cluster_settings: DatabaseSettings) -> Iterator[DatabaseSettings]:
    """A fresh database with postgis and roles but no riskatlas tables; dropped afterwards."""
    s = _new_database(cluster_settings, "empty")
    yield s
    cluster.drop_database(cluster_settings, s.db_name)


@pytest.fixture(scope="session")
def fresh_template(cluster_settings: DatabaseSettings, region_boundaries_file: Path) -> Iterator[str]:
    """A migrated database holding the region's boundaries, built once; tests get copies of it."""
    from etl.load import load_file

    s = _new_database(cluster_settings, "freshtpl")
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
    load_file(s, region_boundaries_file, "admin_area", sandbox=False)  # a file this session wrote
    yield s.db_name
    cluster.drop_database(cluster_settings, s.db_name)


def _clone(base: DatabaseSettings, template: str, label: str) -> DatabaseSettings:
    name = f"riskatlas_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    cluster.clone_database(base, template, name)
    return base.with_db(name)


@pytest.fixture
def fresh_db(cluster_settings: DatabaseSettings, fresh_template: str) -> Iterator[DatabaseSettings]:
    """A migrated database holding the region's boundaries only (a copy of the template); dropped afterwards."""
    s = _clone(cluster_settings, fresh_template, "fresh")
    yield s
    cluster.drop_database(cluster_settings, s.db_name)


@pytest.fixture(scope="session")
def region_boundaries_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real boundaries of the region written once as GeoJSON."""
    from etl.sources.boundaries import region_boundaries

    path = tmp_path_factory.mktemp("boundaries") / "admin_area.geojson"
    region_boundaries().to_file(path, driver="GeoJSON")
    return path


@pytest.fixture(scope="session")
def demo_template(cluster_settings: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whole demo region loaded, graded and flagged once, as `riskatlas demo` leaves it; never used directly."""
    from etl.demo import load_demo
    from services.after_load import after_demo

    s = _new_database(cluster_settings, "demotpl")
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
    report = load_demo(s, tmp_path_factory.mktemp("demo"))
    assert report.exit_code in (0, 1), report.to_dict()
    after_demo(s)  # grades and hazard flags
    DEMO_REPORTS[s.db_name] = report
    yield s.db_name
    cluster.drop_database(cluster_settings, s.db_name)


@pytest.fixture(scope="session")
def demo_db(cluster_settings: DatabaseSettings, demo_template: str) -> Iterator[DatabaseSettings]:
    """A copy of the demo region shared by the session (treat as read-only)."""
    s = _clone(cluster_settings, demo_template, "demo")
    DEMO_REPORTS[s.db_name] = DEMO_REPORTS[demo_template]
    yield s
    cluster.drop_database(cluster_settings, s.db_name)


@pytest.fixture
def demo_copy(cluster_settings: DatabaseSettings, demo_template: str) -> Iterator[DatabaseSettings]:
    """A copy of the demo region of one's own, to change; dropped afterwards."""
    s = _clone(cluster_settings, demo_template, "democopy")
    yield s
    cluster.drop_database(cluster_settings, s.db_name)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium through Playwright, shared by every browser test of the session.

    ``executable_path`` is Debian's chromium (Playwright's own browser download is never used); a missing
    chromium fails the tests: nothing here skips."""
    from playwright.sync_api import sync_playwright

    from maps.png import CHROMIUM_ARGS, chromium_path

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        yield b
        b.close()
