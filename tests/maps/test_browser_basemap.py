"""The planner's map's basemaps in headless Chromium: the offline map by default, a switcher, an online
preset drawn from a local tile server, and a refused preset (AMap, GCJ-02) listed with its reason."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from layers.settings import DatabaseSettings
from tests.maps.browser import open_map, serve, stop


def _png(size: int = 256) -> bytes:
    """A plain light-blue PNG tile."""
    import struct

    raw = b"".join(b"\x00" + bytes((200, 220, 240)) * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def tile_server() -> Iterator[dict[str, Any]]:
    """A local XYZ tile server that answers every tile with the same PNG and keeps the paths asked."""
    tile = _png()
    asked: list[str] = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's API
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(tile)))
            self.end_headers()
            self.wfile.write(tile)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png", "asked": asked}
    server.shutdown()


@pytest.fixture(scope="module")
def with_presets(demo_db: DatabaseSettings, tile_server: dict[str, Any]) -> Iterator[str]:
    proc, base = serve(demo_db, {"RISKATLAS_API_BASEMAP_URL": tile_server["url"],
                                 "RISKATLAS_API_BASEMAPS": json.dumps(["amap", "tianditu-vec"])})
    yield base
    stop(proc)


def test_offline_by_default_and_an_online_preset_from_the_switcher(browser: Any, with_presets: str,
                                                                   tile_server: dict[str, Any]) -> None:
    context, page, log = open_map(browser, with_presets)
    page.wait_for_selector("#basemap option[value='custom']", state="attached")
    assert page.evaluate("document.documentElement.dataset.basemap") == "offline"
    assert tile_server["asked"] == [], "nothing is asked of an online basemap until it is chosen"
    options = page.eval_on_selector_all(
        "#basemap option", "els => els.map(e => [e.value, e.disabled, e.textContent])")
    assert [o[0] for o in options] == ["offline", "amap", "tianditu-vec", "custom"]
    refused = dict((o[0], o) for o in options)
    assert refused["amap"][1] and "GCJ-02" in refused["amap"][2], "AMap is listed, refused, with the reason"
    assert refused["tianditu-vec"][1] and "密钥" in refused["tianditu-vec"][2], "no key: listed with why"
    with page.expect_event("request", lambda r: r.url.startswith(tile_server["url"].split("{")[0])):
        page.select_option("#basemap", "custom")
    page.wait_for_function("document.documentElement.dataset.basemap === 'custom'")
    assert page.evaluate("riskmap.map.getLayoutProperty('bm-custom-0', 'visibility')") == "visible"
    page.evaluate("riskmap.settle()")
    assert len(tile_server["asked"]) > 0 and all(p.endswith(".png") for p in tile_server["asked"])
    page.select_option("#basemap", "offline")
    assert page.evaluate("riskmap.map.getLayoutProperty('bm-custom-0', 'visibility')") == "none"
    page.click("#lang")
    assert "refused" in page.inner_text("#basemap option[value='amap']")
    assert log.errors == [] and log.failed == []
    context.close()
