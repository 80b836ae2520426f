"""Real clients against a real server process: GDAL's OAPIF driver, OWSLib, and schemathesis over /api.

The server is ``uvicorn services.web.app:app_from_env`` in a subprocess on a free port, configured by the
environment (RISKATLAS_*) to serve the demo database.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from owslib.ogcapi.features import Features

from layers import cluster, db
from layers.catalogue import LAYERS
from layers.settings import DatabaseSettings
from tests.conftest import _clone
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BOX = (118.6, 31.9, 118.95, 32.2)
#: The paths of this feature set (other routers of the app are tested by their own suites).
OGC_PATHS = r"^/($|conformance|api|collections|tileMatrixSets|tiles|nearby)"


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    def requests(self) -> list[str]:
        """The request lines of the access log so far."""
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if '" ' in line and "HTTP/" in line
        ]


def _start(settings: DatabaseSettings, folder: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    log = folder / "uvicorn.log"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        RISKATLAS_DB_NAME=settings.db_name,
        RISKATLAS_STATE_DIR=str(Path(settings.state_dir).resolve()),
        RISKATLAS_PG_PORT=str(settings.pg_port),
        **(extra_env or {}),
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "services.web.app:app_from_env", "--factory", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not come up: " + log.read_text()
            time.sleep(0.2)
        yield Server(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(demo_db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _start(demo_db, tmp_path_factory.mktemp("server"))


STEWARD_KEY = "ra_schemathesis-steward-key-320100"


@pytest.fixture(scope="module")
def keyed_db(cluster_settings: DatabaseSettings, demo_template: str) -> Iterator[DatabaseSettings]:
    """A copy of the demo of the keyed server's own: the steward's account is imported into it, and the
    fuzzing may acknowledge the notices and events addressed to Nanjing (writes a steward may make), which
    the session's shared demo must never see (other tests read its acknowledgements)."""
    s = _clone(cluster_settings, demo_template, "keyed")
    yield s
    cluster.drop_database(cluster_settings, s.db_name)


@pytest.fixture(scope="module")
def keyed_server(keyed_db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server on its own copy of the demo, with a steward account imported from a key file (and
    generous rate limits)."""
    folder = tmp_path_factory.mktemp("keyed")
    keys = folder / "keys.json"
    keys.write_text(json.dumps({STEWARD_KEY: {"user": "schema-steward", "role": "steward", "city": "320100"}}),
                    encoding="utf-8")
    yield from _start(keyed_db, folder, {"RISKATLAS_API_API_KEYS_FILE": str(keys),
                                        "RISKATLAS_API_RATE_PER_KEY": "1000", "RISKATLAS_API_RATE_PER_ADDRESS": "1000"})


def _count(settings: DatabaseSettings, table: str, where: str = "TRUE", params: tuple = ()) -> int:
    with db.connect(settings) as conn:
        return conn.execute(
            f"SELECT count(*) n FROM riskatlas.{table} WHERE {where}", params or None
        ).fetchone()["n"]


def _ogrinfo(*args: str) -> str:
    assert shutil.which("ogrinfo"), "GDAL's ogrinfo (Debian gdal-bin) is needed"
    done = subprocess.run(
        ["ogrinfo", "-ro", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GDAL_HTTP_TIMEOUT": "120"},
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr, done.stderr
    return done.stdout


def _feature_count(summary: str) -> int:
    return int(re.search(r"Feature Count: (\d+)", summary).group(1))


def test_gdal_lists_every_collection(server: Server) -> None:
    out = _ogrinfo("-so", f"OAPIF:{server.url}")
    for name, layer in LAYERS.items():
        assert re.search(rf"\d+: {name} \(title: {re.escape(layer.title)}\)", out), out
    assert re.search(r"\d+: observations \(title: Observations\)", out), out


def test_gdal_counts_every_layer(server: Server, demo_db: DatabaseSettings) -> None:
    for name in LAYERS:
        out = _ogrinfo("-so", "-al", f"OAPIF:{server.url}", name)
        assert _feature_count(out) == _count(demo_db, name), name


def test_gdal_reads_features_in_a_bbox(server: Server, demo_db: DatabaseSettings) -> None:
    expected = _count(
        demo_db, "risk_source", "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", BOX
    )
    assert expected > 0
    spat = ["-spat", *map(str, BOX)]
    assert _feature_count(_ogrinfo("-so", "-al", f"OAPIF:{server.url}", "risk_source", *spat)) == expected
    out = _ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=500", f"OAPIF:{server.url}", "risk_source", *spat)
    assert out.count("OGRFeature(risk_source)") == expected
    assert any("bbox=" in line for line in server.requests())


def test_gdal_passes_attribute_filters_to_the_server(server: Server, demo_db: DatabaseSettings) -> None:
    where = "category = 'chemical' AND city_code = '320100'"
    expected = _count(demo_db, "risk_source", where)
    assert expected > 0
    before = len(server.requests())
    out = _ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=500", f"OAPIF:{server.url}", "risk_source", "-where", where)
    assert out.count("OGRFeature(risk_source)") == expected
    sent = server.requests()[before:]
    assert any("filter=" in line and "chemical" in line for line in sent), sent
    assert _feature_count(
        _ogrinfo("-so", "-al", f"OAPIF:{server.url}", "admin_area", "-where", "level = 'city'")
    ) == _count(demo_db, "admin_area", "level = 'city'")


def test_owslib_reads_collections_items_and_queryables(server: Server, demo_db: DatabaseSettings) -> None:
    api = Features(server.url)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    assert [c["id"] for c in api.collections()["collections"]] == [*LAYERS, "observations"]
    assert api.collection("river")["id"] == "river"
    items = api.collection_items("risk_source", bbox=list(BOX), limit=1000)
    expected = _count(
        demo_db, "risk_source", "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", BOX
    )
    assert items["numberMatched"] == expected == len(items["features"])
    filtered = api.collection_items("water_reserve", filter="kind = 'river'", limit=100)
    assert filtered["numberMatched"] == _count(demo_db, "water_reserve", "kind = 'river'")
    assert all(f["properties"]["kind"] == "river" for f in filtered["features"])
    key = items["features"][0]["id"]
    assert api.collection_item("risk_source", key)["id"] == key
    assert "category" in api.collection_queryables("risk_source")["properties"]


def test_schemathesis_finds_no_server_error(server: Server, tmp_path: Path) -> None:
    before = len(server.requests())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server.url}/api",
            "--checks",
            "not_a_server_error",
            "--include-path-regex",
            OGC_PATHS,
            "-n",
            "45",
            "--seed",
            "20261126",
            "--no-shrink",
            "--generation-database",
            "none",
            "--phases",
            "coverage,fuzzing",
            # one worker: schemathesis's generation caches are not safe across its worker threads
            # (an internal KeyError now and then with two)
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    summary = done.stdout[-3000:]
    report = done.stdout[done.stdout.find("====") :][:8000] if "====" in done.stdout else done.stdout[-8000:]
    assert done.returncode == 0, report + done.stderr[-2000:]
    generated = int(re.search(r"(\d+) generated", summary).group(1))
    assert generated >= 1000, summary
    sent = server.requests()[before:]
    assert len(sent) >= 1000
    errors = [line for line in sent if re.search(r'HTTP/1\.1" 5\d\d', line)]
    assert not errors, errors[:10]


def test_schemathesis_with_a_steward_key_over_every_route_but_uploads(keyed_server: Server, keyed_db: DatabaseSettings,
                                                                       tmp_path: Path) -> None:
    """Every documented route (``/health`` included) with a steward's key: no 5xx, and no layer written
    (uploads, the one route that writes layers, have their own hostile corpus in test_uploads)."""
    tables = [name for name in LAYERS] + ["load_batch", "row_history"]
    before = {t: _count(keyed_db, t) for t in tables}
    sent_before = len(keyed_server.requests())
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{keyed_server.url}/openapi.json",
         "--checks", "not_a_server_error", "--exclude-path-regex", "^/uploads", "-H", f"X-API-Key: {STEWARD_KEY}",
         "-n", "8", "--seed", "20261201", "--no-shrink", "--generation-database", "none",
         "--phases", "fuzzing", "--workers", "1", "--request-timeout", "60", "--no-color"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    report = done.stdout[done.stdout.find("===="):][:8000] if "====" in done.stdout else done.stdout[-8000:]
    assert done.returncode == 0, report + done.stderr[-2000:]
    sent = keyed_server.requests()[sent_before:]
    assert any('"GET /health' in line for line in sent), "the run did not reach /health"
    assert len(sent) >= 200, len(sent)
    errors = [line for line in sent if re.search(r'HTTP/1\.1" 5\d\d', line)]
    assert not errors, errors[:10]
    assert {t: _count(keyed_db, t) for t in tables} == before
