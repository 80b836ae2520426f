"""The public page /public in headless Chromium at phone width: no login, every asset from the app, each
city's AQI with its colour, health effects and advice in Chinese and English, each section's class."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from layers import cluster
from layers.settings import DatabaseSettings
from tests.conftest import _clone
from tests.maps.browser import PageLog, serve, stop
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


def test_public_page_says_when_there_is_nothing(browser: Any, served: str) -> None:
    """On the demo before any observation: the page still loads, with no error, and says there is no data."""
    context, page, log = _open(browser, served + "/public")
    assert log.errors == [] and log.failed == []
    assert page.evaluate("window.publicPage.error") is None
    body = page.inner_text("body")
    assert "暂无" in body and "no data" in body.lower() or "no air quality data" in body
    context.close()
