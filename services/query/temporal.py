"""The OGC API Features ``datetime`` parameter: an instant or an interval, open or closed (RFC 3339).

The temporal property of a feature of the catalogue's layers is its last change, ``updated_at`` (every
layer's table keeps it, and the row history the change feed reads): ``datetime=2026-11-01T00:00:00Z/..``
selects what changed since then. A time without an offset is China Standard Time (+08:00, DESIGN 12), a
date alone is the whole day in that zone, and ``..`` or an empty end leaves that end open.
"""

from __future__ import annotations

import datetime as dt

from psycopg import sql

from services.errors import InvalidParameter
from services.query.clauses import Clause

#: The column that holds a feature's time for ``datetime``.
TIME_COLUMN = "updated_at"
CST = dt.timezone(dt.timedelta(hours=8), "CST")


def _instant(text: str, end: bool) -> dt.datetime:
    """One end of an interval; a date alone is its first instant (start) or the first of the next day (end)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            start = dt.datetime.combine(day, dt.time(), CST)
            return start + dt.timedelta(days=1) if end else start
        value = dt.datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise InvalidParameter(
            f"`datetime`: {raw[:40]!r} is not an RFC 3339 date-time (e.g. 2026-11-01T08:00:00Z) or date"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=CST)


def interval(value: str) -> tuple[dt.datetime | None, dt.datetime | None, bool]:
    """``value`` as (start, end, end_exclusive); ``None`` for an open end. An instant is start = end."""
    text = value.strip()
    if not text:
        raise InvalidParameter("`datetime` is empty: give an instant, or an interval start/end with `..` for an open end")
    if "/" not in text:
        if len(text) == 10:
            return _instant(text, False), _instant(text, True), True
        at = _instant(text, False)
        return at, at, False
    parts = text.split("/")
    if len(parts) != 2:
        raise InvalidParameter(f"`datetime`: {text[:60]!r} has more than one '/' (an interval is start/end)")
    a, b = (p.strip() for p in parts)
    start = None if a in ("", "..") else _instant(a, False)
    end = None if b in ("", "..") else _instant(b, len(b) == 10)
    if start is not None and end is not None and start > end:
        raise InvalidParameter(f"`datetime`: the interval {text[:60]!r} ends before it starts")
    return start, end, len(b) == 10


def datetime_clause(value: str | None, column: str = TIME_COLUMN) -> Clause | None:
    """Rows whose ``column`` is the instant or lies in the interval ``value``; ``None`` when nothing is asked."""
    if value is None:
        return None
    start, end, exclusive = interval(value)
    col = sql.Identifier(column)
    if start is not None and end is not None and start == end and not exclusive:
        return Clause(sql.SQL("{} = %s").format(col), (start,))
    parts: list[Clause] = []
    if start is not None:
        parts.append(Clause(sql.SQL("{} >= %s").format(col), (start,)))
    if end is not None:
        parts.append(Clause(sql.SQL("{} < %s" if exclusive else "{} <= %s").format(col), (end,)))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return Clause(sql.SQL("{} AND {}").format(parts[0].text, parts[1].text), parts[0].params + parts[1].params)
