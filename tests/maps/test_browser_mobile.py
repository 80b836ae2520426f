"""The inspector's phone page /m in headless Chromium with a mocked GCJ-02 position, at 360 px wide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gis.crs import GCJ02, from_wgs84
from layers import db
from layers.settings import DatabaseSettings
from tests.maps.browser import PageLog

#: Budget of the page itself (HTML with its inline style and script), in bytes.
PAGE_BUDGET = 24_000


def _near_a_source(settings: DatabaseSettings) -> tuple[float, float]:
    """A GCJ-02 position 300 m east of a Nanjing source: what a phone standing there reports."""
    with db.connect(settings) as conn:
        row = conn.execute("SELECT ST_X(geom) + 0.0032 AS lon, ST_Y(geom) AS lat FROM riskatlas.risk_source "
                           "WHERE city_code = '320100' ORDER BY key LIMIT 1").fetchone()
    lon, lat = from_wgs84(row["lon"], row["lat"], GCJ02)
    return float(lon), float(lat)


def test_phone_lists_nearest_sites_in_distance_order(browser: Any, served: str, demo_db: DatabaseSettings,
                                                     artifacts: Path) -> None:
    lon, lat = _near_a_source(demo_db)
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, geolocation={"longitude": lon, "latitude": lat},
                                  permissions=["geolocation"])
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    answered: list[Any] = []  # bodies are read after the page is done, not in the handler (it would race)
    page.on("response", lambda r: answered.append(r) if r.ok else None)
    page.goto(served + "/m")
    page.wait_for_selector("#sites li[data-key]", timeout=20_000)
    page.screenshot(path=str(artifacts / "m.png"), full_page=True)

    keys = page.eval_on_selector_all("#sites li[data-key]", "els => els.map(e => e.dataset.key)")
    distances = page.eval_on_selector_all("#sites li[data-key]", "els => els.map(e => Number(e.dataset.distance))")
    assert distances == sorted(distances) and len(keys) > 1
    nearby = [u for u in log.requests if "/nearby?" in u]
    assert nearby and "crs=gcj02" in nearby[-1], "the phone's position is sent as GCJ-02"
    direct = httpx.get(served + "/nearby", params={"x": lon, "y": lat, "radius": 5000, "limit": 30,
                                                   "crs": "gcj02"}).json()
    assert keys == [s["key"] for s in direct["sites"]]
    assert "GCJ-02" in page.inner_text("#status")

    arrow = page.eval_on_selector("#sites li[data-key] .arrow span", "e => e.style.transform")
    assert float(arrow.removeprefix("rotate(").removesuffix("deg)")) == direct["sites"][0]["bearing_deg"]
    assert page.locator("#mini path").count() == len(keys)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scrolling at 360 px"

    page.tap("#sites li[data-key]")
    first = page.locator("#sites li[data-key]").first
    assert "open" in (first.get_attribute("class") or "")
    assert direct["sites"][0]["address"] in first.inner_text()

    sizes = {r.url: len(r.body()) for r in answered}
    page_bytes = sizes[served + "/m"]
    assert page_bytes < PAGE_BUDGET, f"/m is {page_bytes} bytes"
    assert set(sizes) == {served + "/m", nearby[-1]}, "one page and one API call, nothing else"
    assert log.errors == [] and log.failed == []
    context.close()


def test_typed_wgs84_coordinate(browser: Any, served: str, demo_db: DatabaseSettings) -> None:
    lon, lat = _near_a_source(demo_db)
    context = browser.new_context(viewport={"width": 360, "height": 740})  # no geolocation permission
    page = context.new_page()
    page.goto(served + "/m")
    page.wait_for_selector("#status[data-state='no_position']")  # its own attempt to locate the phone is over
    page.fill("#lon", f"{lon - 0.0032:.6f}")
    page.fill("#lat", f"{lat:.6f}")
    page.select_option("#crs", "CRS84")
    with page.expect_response(lambda r: "/nearby?" in r.url) as answer:
        page.click("#lookup")
    assert "crs=CRS84" in answer.value.url
    page.wait_for_selector("#sites li[data-key]")
    assert "WGS84" in page.inner_text("#status")
    context.close()
