"""The public page ``/public``: one HTML document, its style and script inline, its data from one JSON request.

No login, no restricted field, no asset from outside the app (it works on a network with no internet).
"""

from __future__ import annotations

from maps.pages import STATIC_DIR, template_env

DATA_PATH = "/public/data.json"


def public_page(root: str) -> str:
    """The public page for an app served under ``root`` ('' or '/prefix')."""
    return template_env().get_template("public.html").render(
        config={"data": f"{root}{DATA_PATH}"}, data_url=f"{root}{DATA_PATH}",
        css=(STATIC_DIR / "css" / "public.css").read_text(encoding="utf-8"),
        js=(STATIC_DIR / "js" / "public.js").read_text(encoding="utf-8"))
