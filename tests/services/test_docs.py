"""The API documentation pages work offline: every asset they load is served by the service itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.settings import APISettings

#: Attributes and calls through which a page loads something: src=, href=, url(...), and Swagger UI's url:
LOADS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)|\burl:\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db, APISettings())) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    loaded = [next(g for g in m.groups() if g) for m in LOADS.finditer(r.text)]
    assert loaded, r.text
    for url in loaded:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
        assert client.get(url).status_code == 200, url
    assert "cdn." not in r.text and "fonts.googleapis" not in r.text
    assert "validatorUrl" in r.text or page == "/redoc"  # Swagger UI's badge fetched from a validator is off


def test_docs_and_the_openapi_document_are_public(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == "riskatlas"
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 500_000
    assert client.get("/docs/assets/../../services/settings.py").status_code == 404
