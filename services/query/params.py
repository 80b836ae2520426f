"""Query parameters shared by the OGC endpoints, validated at the edge with messages that say what to fix.

Each function takes the raw value and returns a parsed one, or raises :class:`InvalidParameter`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from layers.catalogue import Field
from services.errors import InvalidParameter
from services.query.views import CollectionView

#: Query parameters the items endpoint understands; any other name must be a queryable (equality filter).
ITEMS_PARAMS = frozenset(
    {
        "f",
        "bbox",
        "bbox-crs",
        "datetime",
        "crs",
        "limit",
        "offset",
        "filter",
        "filter-lang",
        "filter-crs",
        "properties",
        "sortby",
        "resultType",
        "simplify",
        "zoom",
    }
)

_MAX_LIST_ITEMS = 200


def numbers(value: str, param: str) -> list[float]:
    """A comma-separated list of finite numbers (for bbox)."""
    parts = value.split(",")
    if len(parts) > 6:
        raise InvalidParameter(f"`{param}` has {len(parts)} values; 4 or 6 numbers are expected")
    out: list[float] = []
    for p in parts:
        try:
            v = float(p.strip())
        except ValueError:
            raise InvalidParameter(
                f"`{param}` was {_short(value)} but is expected to be 4 or 6 comma-separated "
                f"numbers; {_short(p)} is not a number"
            ) from None
        if not math.isfinite(v):
            raise InvalidParameter(f"`{param}` was {_short(value)} but every number is expected to be finite")
        out.append(v)
    return out


def names(value: str, param: str) -> list[str]:
    """A comma-separated list of names (spaces trimmed, empty items dropped)."""
    items = [p.strip() for p in value.split(",") if p.strip()]
    if len(items) > _MAX_LIST_ITEMS:
        raise InvalidParameter(f"`{param}` lists {len(items)} names; at most {_MAX_LIST_ITEMS} are allowed")
    return items


def properties(value: str | None, view: CollectionView) -> tuple[Field, ...]:
    """The fields named by ``properties=`` (in the order given), all visible fields when absent."""
    if value is None:
        return view.fields
    chosen: list[Field] = []
    for name in names(value, "properties"):
        f = view.field(name, "properties")
        if f not in chosen:
            chosen.append(f)
    return tuple(chosen)


def sortby(value: str | None, view: CollectionView) -> tuple[tuple[Field, bool], ...]:
    """``sortby=+a,-b`` as (field, descending) pairs; a bare name sorts ascending."""
    if value is None:
        return ()
    out: list[tuple[Field, bool]] = []
    for item in names(value, "sortby"):
        desc = item.startswith("-")
        name = item[1:].strip() if item[:1] in "+-" else item
        if " " in name:  # '+' arrives as a space when not percent-encoded
            raise InvalidParameter(
                f"`sortby`: {_short(item)} is expected to be a property name with an "
                "optional + or - before it (encode + as %2B)"
            )
        out.append((view.sortable(name), desc))
    return tuple(out)


def equality_filters(query: Iterable[tuple[str, str]], view: CollectionView) -> list[tuple[Field, object]]:
    """Query parameters naming a queryable become ``property = value`` filters (Part 1 /rec/core/fc-filters).

    Any other unknown parameter is a 400 (Part 1 /req/core/query-param-unknown).
    """
    out: list[tuple[Field, object]] = []
    for key, raw in query:
        if key in ITEMS_PARAMS:
            continue
        f = next((x for x in view.fields if x.name == key and x.type != "json"), None)
        if f is None:
            allowed = sorted(ITEMS_PARAMS) + [x.name for x in view.fields if x.type != "json"]
            raise InvalidParameter(f"unknown query parameter {_short(key)}; allowed are {allowed}")
        out.append((f, typed_value(f, raw)))
    return out


def typed_value(f: Field, raw: str) -> object:
    """A query-string value converted to the type of ``f``."""
    if f.type == "text":
        return raw
    if f.type == "int":
        try:
            v = int(raw)
        except ValueError:
            raise InvalidParameter(f"`{f.name}` was {_short(raw)} but is expected to be an integer") from None
        if abs(v) > 2**63 - 1:
            raise InvalidParameter(f"`{f.name}` was {_short(raw)}, out of the integer range")
        return v
    if f.type == "float":
        try:
            v2 = float(raw)
        except ValueError:
            raise InvalidParameter(f"`{f.name}` was {_short(raw)} but is expected to be a number") from None
        if not math.isfinite(v2):
            raise InvalidParameter(f"`{f.name}` was {_short(raw)} but is expected to be a finite number")
        return v2
    if f.type == "bool":
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise InvalidParameter(f"`{f.name}` was {_short(raw)} but is expected to be true or false")
    try:
        if f.type == "date":
            return dt.date.fromisoformat(raw)
        if f.type == "timestamp":
            return dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(
            f"`{f.name}` was {_short(raw)} but is expected to be an ISO 8601 "
            f"{'date' if f.type == 'date' else 'date-time'}"
        ) from None
    raise InvalidParameter(f"`{f.name}` cannot be used as a query parameter")


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
