"""Fixtures: a real PostGIS (the project's own cluster), throw-away databases, the loaded demo region.

A missing database fails the tests; nothing here skips.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def pytest_configure(config: pytest.Config) -> None:
    """The run's id, made once by the process that runs (or distributes) the tests."""
    if not hasattr(config, "workerinput"):
        config.riskatlas_run = uuid.uuid4().hex[:10]  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker is told the run's id, so that they share its templates."""
    node.workerinput["riskatlas_run"] = node.config.riskatlas_run


def _run_id(config: pytest.Config) -> str:
    worker = getattr(config, "workerinput", None)
    return str(worker["riskatlas_run"]) if worker else str(config.riskatlas_run)  # type: ignore[attr-defined]


TEMPLATES = ("freshtpl", "demotpl")


def _template_name(config: pytest.Config, label: str) -> str:
    return f"riskatlas_test_{label}_{_run_id(config)}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The process that started the run drops its templates, once every worker is done with them."""
    if hasattr(session.config, "workerinput"):
        return
    s = DatabaseSettings(database_url=None, state_dir=ROOT / ".riskatlas")
    for label in TEMPLATES:
        try:
            cluster.drop_database(s, _template_name(session.config, label))
        except (cluster.ClusterError, OSError) as exc:  # a cluster that never started has nothing to drop
            print(f"\ntemplate {label} of this run not dropped: {exc}", file=sys.stderr)


def _built_once(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory, base: DatabaseSettings,
                label: str, build: Callable[[DatabaseSettings], object]) -> tuple[str, object]:
    """The template database ``label`` of this run and what ``build`` returned for it.

    Built by the first process of the run to ask (one of pytest-xdist's workers, or the only process),
    under a lock on a file every worker sees; the others wait for it and use it as it is.  Dropped by
    :func:`pytest_sessionfinish`."""
    name = _template_name(config, label)
    # the run's temporary folder: a worker's own is a folder of it
    shared = tmp_path_factory.getbasetemp()
    if hasattr(config, "workerinput"):
        shared = shared.parent
    done = shared / f"{name}.pickle"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return name, pickle.loads(done.read_bytes())
        cluster.drop_database(base, name)  # left by a worker that failed while building it
        cluster.bootstrap(base, name)
        result = build(base.with_db(name))
        done.write_bytes(pickle.dumps(result))
        return name, result


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
def fresh_template(request: pytest.FixtureRequest, cluster_settings: DatabaseSettings,
                   tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database holding the region's boundaries, built once a run; tests get copies of it."""
    from etl.load import load_file

    def build(s: DatabaseSettings) -> None:
        with db.connect(s) as conn:
            migrate.upgrade(conn, s)
        # a file this session wrote
        load_file(s, request.getfixturevalue("region_boundaries_file"), "admin_area", sandbox=False)

    return _built_once(request.config, tmp_path_factory, cluster_settings, "freshtpl", build)[0]


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
def demo_template(request: pytest.FixtureRequest, cluster_settings: DatabaseSettings,
                  tmp_path_factory: pytest.TempPathFactory) -> str:
    """The whole demo region loaded, graded and flagged once a run, as `riskatlas demo` leaves it; never
    used directly."""
    from etl.demo import load_demo
    from services.after_load import after_demo

    def build(s: DatabaseSettings) -> object:
        with db.connect(s) as conn:
            migrate.upgrade(conn, s)
        report = load_demo(s, tmp_path_factory.mktemp("demo"))
        assert report.exit_code in (0, 1), report.to_dict()
        after_demo(s)  # grades and hazard flags
        return report

    name, report = _built_once(request.config, tmp_path_factory, cluster_settings, "demotpl", build)
    DEMO_REPORTS[name] = report
    return name


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
