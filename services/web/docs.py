"""``/docs`` (Swagger UI) and ``/redoc`` with their scripts and styles served by this service.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a network without the
internet (where the web map already works). The assets come from the ``fastapi-offline`` package, which
ships the Swagger UI and ReDoc bundles; nothing else of it is used. The pages and ``/openapi.json`` are
public: they describe the interface, not the data.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` from local assets (the app is created with both URLs set to None)."""
    app.mount(ASSETS, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        # validatorUrl null: Swagger UI would otherwise show a badge fetched from an outside validator
        return get_swagger_ui_html(openapi_url=root + str(app.openapi_url), title=f"{app.title} – API",
                                   swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(openapi_url=root + str(app.openapi_url), title=f"{app.title} – API",
                              redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
