"""The spill and plume report maps in headless Chromium: boundaries and place names under the result, the
wind arrow of a plume, and the notify panel clear of the release point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from layers import db
from layers.settings import DatabaseSettings
from maps.emergency_context import emergency_context
from maps.emergency_map import PANEL_WIDTH, save_map
from services.web.app import create_app
from tests.maps.browser import PageLog

CHEM_PARK = (118.79, 32.27)  # the densest cluster of demo risk sources (Nanjing, Luhe)
MAANSHAN = (118.45, 31.753)  # on the Yangtze in He County, Ma'anshan


@pytest.fixture(scope="module")
def api(demo_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db)) as client:
        yield client


def _map(result: dict[str, Any], demo_db: DatabaseSettings, path: Path) -> str:
    with db.connect(demo_db, "app") as conn:
        context = emergency_context(conn, result)
    assert context["areas"], "the result lies among the region's cities"
    save_map(result, path, context=context)
    return path.as_uri()


def _release_clear_of_the_panel(page: Any, lon: float, lat: float) -> None:
    """The release point's place on screen is not under the notify panel."""
    name = page.evaluate("Object.keys(window).find(k => k.startsWith('map_') && window[k].latLngToContainerPoint)")
    point = page.evaluate("([n, lat, lon]) => { const p = window[n].latLngToContainerPoint([lat, lon]);"
                          " return [p.x, p.y]; }", [name, lat, lon])
    panel = page.eval_on_selector(".ra-notify", "e => { const r = e.getBoundingClientRect();"
                                                " return [r.left, r.top, r.right, r.bottom]; }")
    size = page.evaluate("[window.innerWidth, window.innerHeight]")
    assert 0 <= point[0] <= size[0] and 0 <= point[1] <= size[1], "the release is on the map"
    under = panel[0] <= point[0] <= panel[2] and panel[1] <= point[1] <= panel[3]
    assert not under, f"release at {point} under the panel {panel}"
    assert panel[2] - panel[0] <= PANEL_WIDTH + 1


def test_plume_map_shows_places_wind_and_keeps_the_release_clear(browser: Any, api: TestClient,
                                                                 demo_db: DatabaseSettings, tmp_path: Path,
                                                                 artifacts: Path) -> None:
    r = api.post("/analysis/plume", json={"x": CHEM_PARK[0], "y": CHEM_PARK[1], "substance": "chlorine",
                                          "release_rate_kg_s": 2, "wind_from_deg": 315, "wind_speed_m_s": 3,
                                          "stability": "D"})
    assert r.status_code == 200, r.text
    result = r.json()
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    page.goto(_map(result, demo_db, tmp_path / "plume.html"))
    page.wait_for_selector(".ra-wind")
    page.screenshot(path=str(artifacts / "plume-map.png"))
    places = page.eval_on_selector_all(".ra-place", "els => els.map(e => e.textContent)")
    assert any("南京市" in p and "Nanjing" in p for p in places) and any("六合区" in p for p in places)
    assert float(page.get_attribute(".ra-wind", "data-bearing")) == pytest.approx(135.0)
    assert "来自 from 315°" in page.inner_text(".ra-notify")
    _release_clear_of_the_panel(page, *CHEM_PARK)
    assert log.errors == []
    context.close()


def test_spill_map_shows_places_and_keeps_the_release_clear(browser: Any, api: TestClient,
                                                            demo_db: DatabaseSettings, tmp_path: Path) -> None:
    r = api.post("/analysis/spill", json={"x": MAANSHAN[0], "y": MAANSHAN[1], "substance": "benzene",
                                          "mass_t": 10})
    assert r.status_code == 200, r.text
    result = r.json()
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.goto(_map(result, demo_db, tmp_path / "spill.html"))
    page.wait_for_selector(".ra-place", state="attached")
    places = page.eval_on_selector_all(".ra-place", "els => els.map(e => e.textContent)")
    assert any("马鞍山市" in p for p in places) and any("南京市" in p for p in places)
    assert page.locator(".ra-wind").count() == 0, "a spill has no wind arrow"
    _release_clear_of_the_panel(page, *MAANSHAN)
    context.close()
