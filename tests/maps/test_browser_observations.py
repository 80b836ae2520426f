"""Observations in headless Chromium: the public page /public at phone width (no login, every asset from the
app, each city's AQI with its colour, health effects and advice in Chinese and English, each section's class),
and the planner's map /map with the stations coloured by their latest state and a 7 / 30 day chart in the popup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from layers import cluster
from layers.settings import DatabaseSettings
from tests.conftest import _clone
from tests.maps.browser import PageLog, open_map, serve, stop
from tests.observations.test_observations_read import fill


@pytest.fixture(scope="module")
def observed(cluster_settings: DatabaseSettings, demo_template: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The app over a copy of the demo with observations inserted by the read tests' helper."""
    s = _clone(cluster_settings, demo_template, "pubpage")
    keys = fill(s)
    proc, base = serve(s)
    yield base, keys
    stop(proc)
    cluster.drop_database(cluster_settings, s.db_name)


def _open(browser: Any, url: str) -> tuple[Any, Any, PageLog]:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    page.goto(url)
    page.wait_for_function("window.publicPage && window.publicPage.ready", timeout=30_000)
    return context, page, log


def test_public_page_shows_cities_and_sections(browser: Any, observed: tuple[str, dict[str, str]],
                                               artifacts: Path) -> None:
    base, keys = observed
    context, page, log = _open(browser, base + "/public")
    page.screenshot(path=str(artifacts / "public.png"), full_page=True)
    assert page.evaluate("window.publicPage.error") is None
    assert log.errors == [] and log.failed == []
    foreign = [u for u in log.requests if not u.startswith(base) and not u.startswith(("data:", "blob:"))]
    assert foreign == [], "every request of /public goes to the app itself"

    data = httpx.get(base + "/public/data.json").json()
    nj = page.locator("[data-city='320100']")
    now = nj.locator(".figure").first
    assert now.get_attribute("data-aqi") == "158" and now.get_attribute("data-level") == "IV"
    colour = page.evaluate("getComputedStyle(document.querySelector(\"[data-city='320100'] .figure\")).backgroundColor")
    assert colour == "rgb(255, 0, 0)"  # #FF0000, HJ 633 Appendix A red for 中度污染
    text = nj.inner_text()
    cat = next(c for c in data["categories"] if c["level"] == "IV")
    for needle in ("中度污染", "Moderately polluted", cat["health_zh"], cat["advice_zh"], cat["advice_en"], "细颗粒物"):
        assert needle in text, needle
    assert nj.locator(".figure").nth(1).get_attribute("data-aqi") == "70"  # the day's

    row = page.locator(f"[data-section='{keys['section']}']")
    assert "V类" in row.inner_text() and "III" in row.inner_text()
    assert page.locator("#synthetic").is_visible(), "synthetic data is labelled so"
    assert page.locator(".legend-row").count() == 6
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scrolling at 360 px"
    context.close()


def test_public_page_on_the_demo(browser: Any, served: str, artifacts: Path) -> None:
    """On the demo (its synthetic year of observations): every city with air stations shows its AQI now and the
    day's with advice, every cross-border section its class, and the page says the data are synthetic."""
    context, page, log = _open(browser, served + "/public")
    page.screenshot(path=str(artifacts / "public-demo.png"), full_page=True)
    assert log.errors == [] and log.failed == []
    assert page.evaluate("window.publicPage.error") is None
    data = page.evaluate("window.publicPage.data")
    assert data["synthetic"] is True and page.locator("#synthetic").is_visible()
    assert len(data["cities"]) >= 8
    for c in data["cities"]:
        card = page.locator(f"[data-city='{c['code']}']")
        assert card.locator(".figure[data-aqi]").count() == 2, c["code"]  # now and the day's
        assert c["now"]["category"]["advice_zh"] in card.inner_text()
    rows = page.locator("#sections tr[data-section]")
    assert rows.count() == len(data["sections"]) > 0
    assert all(s["state"] is not None for s in data["sections"])
    context.close()


def _open_map(browser: Any, base: str) -> tuple[Any, Any, PageLog]:
    context, page, log = open_map(browser, base)
    page.evaluate("RA.stations.loaded")  # a promise: resolved once the state layer is drawn
    return context, page, log


STATE_FEATURES = """() => {
  const seen = {};
  for (const f of RA.map.queryRenderedFeatures({layers: ['station-state']})) seen[f.properties.key] = f.properties;
  return seen;
}"""

CHART = "(days) => { const f = document.querySelector('.maplibregl-popup .station-chart'); " \
        "return f && f.dataset.ready === '1' && f.dataset.days === String(days); }"


def test_map_colours_stations_by_latest_state_with_legend(browser: Any, observed: tuple[str, dict[str, str]],
                                                          artifacts: Path) -> None:
    base, keys = observed
    context, page, log = _open_map(browser, base)
    drawn = page.evaluate(STATE_FEATURES)
    latest = httpx.get(base + "/observations/latest").json()
    assert set(drawn) == {f["id"] for f in latest["features"]}, "every station is drawn"
    assert drawn[keys["year"]]["state_colour"] == "#FF0000"      # AQI 158, 中度污染
    assert drawn[keys["one"]]["state_colour"] == "#FF7E00"       # AQI 105, 轻度污染
    assert drawn[keys["section"]]["state_colour"] == "#D50000"   # class V against target III
    colour = page.evaluate("RA.map.getPaintProperty('station-state', 'circle-color')")
    assert colour[0] == "coalesce", "a station with no state is drawn grey, not left out"
    legend = page.inner_text("#station-legend")
    for needle in ("中度污染", "Moderately polluted", "达标", "meets its target", "暂无数据"):
        assert needle in legend, needle
    page.uncheck("#switcher input[data-layer='monitoring_station']")
    assert page.evaluate("RA.map.getLayoutProperty('station-state', 'visibility')") == "none"
    page.check("#switcher input[data-layer='monitoring_station']")
    assert page.evaluate("RA.map.getLayoutProperty('station-state', 'visibility')") == "visible"
    page.screenshot(path=str(artifacts / "map-stations.png"))
    assert log.errors == [] and log.failed == []
    context.close()


def test_station_popup_charts_the_last_7_and_30_days(browser: Any, observed: tuple[str, dict[str, str]],
                                                     artifacts: Path) -> None:
    base, keys = observed
    context, page, log = _open_map(browser, base)
    # A click on the air station's point opens its popup (the state layer is clickable like the station layer).
    page.evaluate("(key) => { const p = RA.stations.byKey[key]; RA.map.jumpTo({center: [p.lon, p.lat], zoom: 15}); }",
                  keys["year"])
    page.evaluate("riskmap.settle()")
    box = page.locator("#map").bounding_box()
    at = page.evaluate("(key) => { const p = RA.stations.byKey[key]; return RA.map.project([p.lon, p.lat]); }",
                       keys["year"])
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
    page.wait_for_function(CHART, arg=7, timeout=20_000)
    popup = page.locator(".maplibregl-popup")
    assert popup.locator(".popup").get_attribute("data-id") == keys["year"]
    assert "AQI 158" in popup.inner_text() and "中度污染" in popup.inner_text()
    # 7 days of hourly AQI up to the latest hour: 7 × 24 = 168 points, each coloured by its category.
    fig = popup.locator(".station-chart")
    assert fig.get_attribute("data-points") == "168"
    assert popup.locator(".station-chart circle").count() == 168
    assert popup.locator(".station-chart circle[fill='#FF0000']").count() >= 1  # the last hour, 158
    page.screenshot(path=str(artifacts / "map-station-popup.png"))
    popup.locator("button[data-days='30']").click()
    page.wait_for_function(CHART, arg=30, timeout=20_000)
    assert popup.locator(".station-chart").get_attribute("data-points") == str(30 * 24)

    # The section: its samples' classes against the dashed target line (III); 7 days up to 12-01 10:00 hold
    # the daily samples of 11-25 .. 11-30 and 12-01: 7 points, the last class V.
    page.evaluate("(key) => { const p = RA.stations.byKey[key]; "
                  "RA.popup.open('monitoring_station', p, [p.lon, p.lat]); }", keys["section"])
    page.wait_for_function(CHART, arg=7, timeout=20_000)
    popup = page.locator(".maplibregl-popup")
    assert popup.locator(".station-chart").get_attribute("data-points") == "7"
    assert popup.locator(".station-chart line.target").count() == 1
    assert "V类" in popup.inner_text()
    assert log.errors == [] and log.failed == []
    context.close()
