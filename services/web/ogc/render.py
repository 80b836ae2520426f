"""Responses of the OGC endpoints: JSON (orjson) and HTML (Jinja2 templates, no external assets)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from fastapi import Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from services.web.ogc.links import HTML, JSON

TEMPLATES = Path(__file__).with_name("templates")


def json_response(
    doc: Any, media_type: str = JSON, headers: dict[str, str] | None = None, status_code: int = 200
) -> Response:
    """``doc`` serialised by orjson (non-ASCII text kept as UTF-8)."""
    return Response(
        orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS),
        status_code=status_code,
        media_type=media_type,
        headers=headers,
    )


def html_response(template: str, headers: dict[str, str] | None = None, **context: Any) -> Response:
    """``template`` rendered with ``context``; autoescaped, so data cannot inject markup."""
    body = _env().get_template(template).render(**context)
    return Response(body, media_type=HTML + "; charset=utf-8", headers=headers)


def timestamp() -> str:
    """Now, as OGC's ``timeStamp`` (UTC, ISO 8601, seconds)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@cache
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = lambda v: orjson.dumps(v, option=orjson.OPT_INDENT_2).decode()
    env.filters["cell"] = _cell
    env.filters["labelled"] = _labelled
    return env


def _labelled(value: Any, field: Any) -> Markup | str:
    """A cell of ``field``: a labelled domain value as its Chinese name with the stored code beside it."""
    label = field.label(value) if isinstance(value, str) and getattr(field, "labels", None) else None
    if label is None:
        return _cell(value)
    return Markup('{} <small class="muted">{}</small>').format(label.zh, value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)
