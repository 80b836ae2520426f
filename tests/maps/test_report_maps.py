"""Report maps: built by PostGIS into a self-contained folium HTML, opened from disk with the network blocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from layers import db
from layers.catalogue import LAYERS
from layers.settings import DatabaseSettings
from maps.offline import remote_references
from maps.overview import BIN_ABOVE, CLUSTER_ABOVE, MapInputError, UnknownCity, build_overview
from tests.maps.browser import ROOT, PageLog

CITY = "320100"


def _count(settings: DatabaseSettings, query: str) -> int:
    with db.connect(settings) as conn:
        return conn.execute(query, (CITY,)).fetchone()["n"]


def _open_offline(browser: Any, path: Path) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    blocked: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.resolve().as_uri())
    page.wait_for_function("window.riskatlasReady === true", timeout=30_000)
    assert log.errors == []
    return context, page, blocked


def test_overview_counts_match_the_database(demo_db: DatabaseSettings) -> None:
    report = build_overview(demo_db, CITY)
    assert report.counts["risk_source"] == _count(demo_db, "SELECT count(*) AS n FROM riskatlas.risk_source "
                                                           "WHERE city_code = %s")
    own = _count(demo_db, "SELECT count(*) AS n FROM riskatlas.admin_area WHERE %(c)s IN (code, parent_code)"
                 .replace("%(c)s", "%s"))
    assert report.counts["admin_area"] == own + 6, "the city, its counties and its six neighbouring cities"
    assert report.city_name == "南京市" and report.notices, "the synthetic notice goes on the map"
    assert remote_references(report.html) == []
    assert CLUSTER_ABOVE == 1000 and report.clustered == []
    assert report.binned == {}, "a city of a few hundred sources shows every source"


def test_restricted_fields_only_when_asked(demo_db: DatabaseSettings) -> None:
    public = build_overview(demo_db, CITY, ["risk_source"])
    assert '"contact": ' not in public.html and '"substances": ' not in public.html
    full = build_overview(demo_db, CITY, ["risk_source"], restricted=True)
    assert '"contact": "' in full.html  # a value, not a null the view gave an unverified reader


def test_bad_city_and_layer_say_what_is_allowed(demo_db: DatabaseSettings) -> None:
    with pytest.raises(UnknownCity, match="320100 南京市"):
        build_overview(demo_db, "999999")
    with pytest.raises(MapInputError, match="'pipelines'.*risk_source"):
        build_overview(demo_db, CITY, ["pipelines"])


def test_report_map_opens_offline_and_shows_its_layers(demo_db: DatabaseSettings, browser: Any, tmp_path: Path,
                                                        artifacts: Path) -> None:
    report = build_overview(demo_db, CITY, flags=True, cluster_above=300)
    assert report.clustered == ["risk_source"]
    path = tmp_path / "nanjing.html"
    path.write_text(report.html, encoding="utf-8")
    context, page, blocked = _open_offline(browser, path)
    page.screenshot(path=str(artifacts / "report-map.png"))
    assert blocked == []
    drawn = page.evaluate("riskatlasReport.drawn")
    assert {k: v for k, v in drawn.items() if k != "flags"} == report.counts
    assert drawn["flags"] == report.flags
    control = page.inner_text(".leaflet-control-layers")
    for name in report.counts:
        assert LAYERS[name].title in control
    assert page.locator(".marker-cluster").count() > 0, "risk sources clustered above the threshold"
    legend = page.inner_text(".ra-legend")
    assert "重大 major" in legend and "化工 chemical" in legend
    page.locator(".marker-cluster").first.click()
    context.close()


def test_a_large_inventory_is_drawn_in_squares_and_the_page_stays_small(demo_copy: DatabaseSettings, browser: Any,
                                                                       tmp_path: Path, artifacts: Path) -> None:
    """20,000 more sources in Nanjing: embedded one by one they would weigh about 10 MB; counted in
    squares the page stays the size of a small city's, every source is counted, none is embedded."""
    small = build_overview(demo_copy, CITY, flags=True)
    with db.connect(demo_copy) as conn:
        conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, status, synthetic, city_code,
                                                          owner_city, risk_level, geom)
                        SELECT 'BIG-' || g.path[1], 'synthetic ' || g.path[1], 'other', 'active', true, %(c)s, %(c)s,
                               (ARRAY['major', 'larger', 'general', NULL])[1 + g.path[1] %% 4], g.geom
                        FROM riskatlas.admin_area a, ST_Dump(ST_GeneratePoints(a.geom, 20000, 3)) g
                        WHERE a.code = %(c)s""", {"c": CITY})
    report = build_overview(demo_copy, CITY, flags=True)
    total = _count(demo_copy, "SELECT count(*) AS n FROM riskatlas.risk_source WHERE city_code = %s")
    assert total > BIN_ABOVE and report.counts["risk_source"] == total
    assert set(report.binned) == {"risk_source"} and 100 < report.binned["risk_source"] <= 60 * 60
    size = len(report.html.encode("utf-8"))
    assert size < 10_000_000 and size < 2 * len(small.html.encode("utf-8")), size
    assert "BIG-" not in report.html, "no single source is embedded"
    path = tmp_path / "nanjing-large.html"
    path.write_text(report.html, encoding="utf-8")
    context, page, blocked = _open_offline(browser, path)
    assert blocked == []
    drawn = page.evaluate("riskatlasReport.drawn")
    assert drawn["risk_source"] == total and drawn["flags"] == report.flags
    assert page.evaluate("riskatlasReport.bins") == report.binned
    assert "counted in squares" in page.inner_text(".leaflet-control-layers")
    page.screenshot(path=str(artifacts / "report-map-large.png"))
    context.close()


def test_cli_writes_html_and_png(demo_db: DatabaseSettings, tmp_path: Path) -> None:
    env = {**os.environ, "RISKATLAS_DB_NAME": demo_db.db_name, "RISKATLAS_PG_PORT": str(demo_db.pg_port),
           "RISKATLAS_STATE_DIR": str(demo_db.state_dir)}
    env.pop("DATABASE_URL", None)
    html, png = tmp_path / "zj.html", tmp_path / "zj.png"
    done = subprocess.run([sys.executable, "-m", "services.cli", "map", "--city", "321100", "--layers",
                           "admin_area,risk_source,river", "--flags", "--out", str(html), "--png", str(png),
                           "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert set(summary["counts"]) == {"admin_area", "risk_source", "river"}
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    _assert_drawn(png)
    bad = subprocess.run([sys.executable, "-m", "services.cli", "map", "--city", "1", "--out", str(html), "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "320100" in json.loads(bad.stdout)["error"]


def _assert_drawn(png: Path) -> None:
    """The picture shows a map, not a blank page: many colours, and most of it not the background."""
    import numpy as np
    import rasterio

    with rasterio.open(png) as src:
        pixels = src.read()[:3].reshape(3, -1).T  # RGB per pixel
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    background = counts.max() / counts.sum()
    assert len(colours) > 50, f"only {len(colours)} colours: a blank or nearly blank render"
    assert background < 0.9, f"{background:.0%} of the picture is one colour"

