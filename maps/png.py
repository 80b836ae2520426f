"""Static PNG of a report map, for documents: the HTML map photographed by headless Chromium, offline.

Why a browser rather than matplotlib: the PNG is then exactly the HTML map (one renderer, one styling
runtime reading the style document), legend and title included, with no second drawing of the styles to
keep in step.  The page is opened from disk with every non-``file://`` request refused, so making the
PNG never touches the network.  Needs the ``playwright`` package and Debian's ``chromium``
(``RISKATLAS_WITH_BROWSER=1 scripts/setup.sh``); Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")


class PngError(RuntimeError):
    """The PNG could not be made; the message says what is missing."""


def chromium_path() -> str:
    """The Chromium to drive: ``RISKATLAS_CHROMIUM``, else ``chromium`` on the PATH, else Debian's."""
    found = os.environ.get("RISKATLAS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        raise PngError(f"no Chromium at {found}: install Debian's chromium (RISKATLAS_WITH_BROWSER=1 "
                       "scripts/setup.sh) or set RISKATLAS_CHROMIUM")
    return found


def render_png(html_path: Path, png_path: Path, width: int = 1600, height: int = 1200,
               timeout_s: float = 60.0) -> Path:
    """Photograph the report map ``html_path`` into ``png_path`` once every layer is drawn."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise PngError("the PNG needs the playwright package: pip install -e '.[test]'") from None
    executable = chromium_path()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                           else route.abort())
                page.goto(Path(html_path).resolve().as_uri(), timeout=timeout_s * 1000)
                page.wait_for_function("window.riskatlasReady === true", timeout=timeout_s * 1000)
                page.screenshot(path=str(png_path))
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise PngError(f"Chromium could not render {html_path}: {str(exc).splitlines()[0]}") from None
    return Path(png_path)
