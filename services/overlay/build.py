"""An overlay request checked and turned into one SQL statement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from services.overlay.features import left_with_count, pairs
from services.overlay.filters import source
from services.overlay.request import DEFAULT_CAP, OverlayRequest, check, visible
from services.query.clauses import Clause


@dataclass(frozen=True)
class OverlayQuery:
    """The SQL of a checked request: one row per output feature, its GeoJSON text in ``feature``."""

    request: OverlayRequest
    clause: Clause
    cap: int | None
    fetch: int | None  # rows to fetch: the limit, or cap + 1 to detect an over-large result

    @property
    def params(self) -> tuple[Any, ...]:
        return self.clause.params

    @property
    def text(self) -> sql.Composable:
        return self.clause.text


def build(req: OverlayRequest, *, cap: int | None = DEFAULT_CAP, may_see_restricted: bool = True,
          max_filter_depth: int = 20) -> OverlayQuery:
    """Check every part of ``req`` and build its SQL; :class:`InvalidParameter` names what is wrong."""
    left, right = check(req, cap)
    lf = visible(left, may_see_restricted)
    rf = visible(right, may_see_restricted)
    src_l = source(left, req.left_filter, lf, "l", "left_filter", max_filter_depth)
    src_r = source(right, req.right_filter, rf, "r", "right_filter", max_filter_depth)
    fetch = req.limit if req.limit is not None else (cap + 1 if cap is not None else None)
    page = Clause(sql.SQL("LIMIT %s OFFSET %s"), (fetch, req.offset))
    builder = pairs if req.output == "pairs" else left_with_count
    return OverlayQuery(req, builder(req, left, right, lf, rf, src_l, src_r, page), cap, fetch)
