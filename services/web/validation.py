"""Checks at the edge: text and numbers a client sends are refused (400 naming the parameter) before a
handler, a parser or the database driver sees them.

PostgreSQL text cannot hold a NUL byte, UTF-8 cannot hold a lone surrogate (U+D800..U+DFFF) and a bigint
stops at 2**63 - 1. Left unchecked these reach psycopg, which raises in the middle of a request (a 500,
and the connection reset). The ASGI middleware :class:`InputCheck` checks, once for every route:

* the query string and the path: NUL bytes, percent-encoded bytes that are not UTF-8, lone surrogates;
* JSON bodies: NUL bytes and lone surrogates in any string (member names included), integers outside
  int64, ``NaN``/``Infinity`` (not JSON) and numbers too large for a double;
* urlencoded form bodies: as the query string.

Multipart bodies (uploads) are files: their fields are checked by the upload handler.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.errors import InvalidParameter
from services.web import errors

INT64_MAX = 2**63 - 1
#: The largest ``offset`` any paged route accepts (declared as ``le=`` on the parameter).
MAX_OFFSET = 1_000_000_000
#: Deeper JSON is no request of this service; CQL2 filters have their own, smaller depth limit.
MAX_JSON_DEPTH = 64
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Routes that check their own JSON bodies by the same rules, item by item, because walking every member
#: here would cost more than the route's work (a push of observations carries 100 000 items).
SELF_CHECKED = frozenset({("POST", "/observations")})


def check_text(name: str, value: str) -> None:
    """400 if ``value`` (of parameter ``name``) holds a NUL byte or a lone surrogate."""
    if "\x00" in value:
        raise InvalidParameter(f"parameter {name}: NUL bytes are not allowed")
    if _SURROGATE.search(value):
        raise InvalidParameter(f"parameter {name}: lone surrogates (U+D800 to U+DFFF) are not allowed")


def check_query_string(raw: bytes, where: str = "parameter") -> None:
    """400 naming the first parameter of a raw (percent-encoded) query string that is not clean UTF-8 text.

    Names are checked as well as values; ``where`` prefixes the message ("parameter", "form field").
    """
    for pair in raw.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name_bytes = _unquote_plus(raw_name)
        name = _shown(name_bytes)
        for part in (name_bytes, _unquote_plus(raw_value)):
            problem = _bytes_problem(part)
            if problem:
                raise InvalidParameter(f"{where} {name}: {problem}")


def check_json(body: bytes) -> None:
    """400 naming the first member of a JSON body that holds text or a number the service cannot take.

    A body that does not parse is left to the handler, which reports it in its own words.
    """
    try:
        doc = json.loads(body, parse_constant=_refuse_constant, parse_int=_parse_int)
    except _JSONRefused as exc:
        raise InvalidParameter(f"body: {exc}") from None
    except RecursionError:
        raise InvalidParameter(f"body: JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError:  # malformed JSON or bytes that are not text: the handler says so
        return
    for path, value in _walk(doc):
        problem = None
        if isinstance(value, str):
            if "\x00" in value:
                problem = "NUL bytes are not allowed"
            elif _SURROGATE.search(value):
                problem = "lone surrogates (U+D800 to U+DFFF) are not allowed"
        elif isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > INT64_MAX:
                problem = f"{_short(value)} is out of range (integers are at most 2**63 - 1 in absolute value)"
        elif isinstance(value, float) and value in (float("inf"), float("-inf")):
            problem = "a number is too large"
        if problem:
            raise InvalidParameter(f"body member {path or '(the document)'}: {problem}")


class InputCheck:
    """ASGI middleware: 400 for a query string, path or JSON/form body that fails the checks above.

    ``openapi`` (the app's document) only serves to name the path parameter at fault.
    """

    def __init__(self, app: ASGIApp, openapi: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.openapi = openapi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_path(scope)
            check_query_string(scope.get("query_string", b""))
            if scope["method"] in BODY_METHODS and (scope["method"], scope["path"]) not in SELF_CHECKED:
                kind = _body_kind(scope)
                if kind is not None:
                    body = await _read_body(receive)
                    receive = _replay(body, receive)
                    if kind == "json":
                        check_json(body)
                    else:
                        check_query_string(body, "form field")
        except InvalidParameter as exc:
            await errors.response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check_path(self, scope: Scope) -> None:
        raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        segments = [unquote_to_bytes(s) for s in raw.split(b"?", 1)[0].split(b"/")]
        for i, segment in enumerate(segments):
            problem = _bytes_problem(segment)
            if problem:
                raise InvalidParameter(f"{self._path_parameter(segments, i)}: {problem}")

    def _path_parameter(self, segments: list[bytes], bad: int) -> str:
        """``parameter NAME`` if segment ``bad`` is a parameter of a documented path, else ``path``."""
        best: tuple[int, str] | None = None
        for template in self.openapi().get("paths", {}):
            parts = template.split("/")
            if len(parts) != len(segments) or not (parts[bad].startswith("{") and "}" in parts[bad]):
                continue
            literal = [(p, s) for p, s in zip(parts, segments) if not p.startswith("{")]
            suffixes = [(p.partition("}")[2], s) for p, s in zip(parts, segments) if p.startswith("{")]  # {id}.cap
            if (all(p.encode() == s for p, s in literal) and all(s.endswith(x.encode()) for x, s in suffixes)
                    and (best is None or len(literal) > best[0])):
                best = (len(literal), parts[bad][1:].partition("}")[0])
        return f"parameter {best[1]}" if best else "path"


class _JSONRefused(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _JSONRefused(f"{name} is not a JSON number")


def _parse_int(text: str) -> int:
    # Python reads integers of any length; one of thousands of digits is work for nothing (and refused
    # by int() beyond 4300 digits with a ValueError that would hide where it was).
    if len(text.lstrip("-")) > 40:
        raise _JSONRefused(f"an integer of {len(text)} digits is out of range")
    return int(text)


def _walk(doc: Any) -> Iterator[tuple[str, Any]]:
    """(path, value) of every string, number and member name, iteratively (a deep body needs no stack)."""
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidParameter(f"body: JSON nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(value, dict):
            for k, v in value.items():
                child = f"{path}.{k}" if path else str(k)
                yield _shown_text(child), k
                stack.append((child, v, depth + 1))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                stack.append((f"{path}[{i}]", v, depth + 1))
        else:
            yield _shown_text(path), value


def _bytes_problem(data: bytes) -> str | None:
    if b"\x00" in data:
        return "NUL bytes are not allowed"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:  # UTF-8 for U+D800..U+DFFF (e.g. %ED%A0%80) decodes only with surrogatepass
            data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return "percent-encoded bytes that are not UTF-8 text are not allowed"
        return "lone surrogates (U+D800 to U+DFFF) are not allowed"
    return None


def _unquote_plus(raw: bytes) -> bytes:
    return unquote_to_bytes(raw.replace(b"+", b" "))


def _shown(name: bytes) -> str:
    return _shown_text(name.decode("utf-8", "replace"))


def _shown_text(name: str) -> str:
    """A name safe to echo: control characters and surrogates escaped, cut at 60 characters."""
    text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= 60 else text[:60] + "..."


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:12]}...({len(text)} digits)"


def _body_kind(scope: Scope) -> str | None:
    """``json`` or ``form`` for the bodies checked here, None for the others (multipart, binary)."""
    ctype = ""
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            ctype = value.decode("latin-1").split(";", 1)[0].strip().lower()
            break
    # FastAPI reads a body without a content type as JSON, so it is checked as JSON
    if not ctype or ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json")):
        return "json"
    if ctype == "application/x-www-form-urlencoded":
        return "form"
    return None


async def _read_body(receive: Receive) -> bytes:
    # The body-limit middleware outside this one bounds what ``receive`` delivers.
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then defers to the server's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
