"""Running an overlay: the function analysts call, and one page of features with its paging facts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from services.errors import InvalidParameter
from services.overlay.build import OverlayQuery, build
from services.overlay.request import CRS84, DEFAULT_CAP, Filter, OverlayRequest


@dataclass
class OverlayResult:
    """The features of one page, as GeoJSON text, with the paging facts."""

    features: list[str]
    request: OverlayRequest
    next_offset: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def number_returned(self) -> int:
        return len(self.features)

    def collection_text(self) -> str:
        """A GeoJSON FeatureCollection (CRS84), the features exactly as PostGIS wrote them."""
        r = self.request
        head = {"type": "FeatureCollection", "numberReturned": self.number_returned,
                "crs": CRS84, "overlay": _echo(r), **self.extra}
        if self.next_offset is not None:
            head["next_offset"] = self.next_offset
        meta = json.dumps(head, ensure_ascii=False)[1:-1]
        return "{" + meta + ',"features":[' + ",".join(self.features) + "]}"

    def collection(self) -> dict[str, Any]:
        return json.loads(self.collection_text())

    def to_geodataframe(self):  # -> geopandas.GeoDataFrame
        """The features as a GeoDataFrame in EPSG:4326 (properties as columns)."""
        import geopandas as gpd

        feats = [json.loads(f) for f in self.features]
        return gpd.GeoDataFrame.from_features(feats, crs="EPSG:4326") if feats else gpd.GeoDataFrame(
            geometry=[], crs="EPSG:4326")


def overlay(conn: psycopg.Connection, left: str, predicate: str, right: str, *, distance_m: float | None = None,
            left_filter: Filter = None, right_filter: Filter = None, output: str = "pairs",
            measures: Sequence[str] = (), geometry: str = "left", limit: int | None = None, offset: int = 0,
            cap: int | None = DEFAULT_CAP, may_see_restricted: bool = True,
            max_filter_depth: int = 20) -> OverlayResult:
    """Run one overlay on ``conn`` and return one page of features.

    ``left``/``right`` are catalogue layer names; ``distance_m`` is required by (and only allowed with)
    ``within-distance``.  ``cap=None`` lifts the result cap (for trusted Python callers only).  Bad input
    raises :class:`services.errors.InvalidParameter` saying which argument and what is allowed.

    >>> from layers import db; from layers.settings import DatabaseSettings
    >>> with db.connect(DatabaseSettings(), "app") as conn:                      # doctest: +SKIP
    ...     gdf = overlay(conn, "risk_source", "within-distance", "protection_zone",
    ...                   distance_m=500, left_filter="risk_level = 'major'",
    ...                   right_filter={"level": "1"}).to_geodataframe()
    """
    req = OverlayRequest(left, predicate, right, distance_m, left_filter, right_filter, output,
                         tuple(measures), geometry, limit, offset)
    q = build(req, cap=cap, may_see_restricted=may_see_restricted, max_filter_depth=max_filter_depth)
    rows = conn.execute(q.text, q.params).fetchall()
    return finish(q, [r["feature"] if isinstance(r, dict) else r[0] for r in rows])


def finish(q: OverlayQuery, features: list[str]) -> OverlayResult:
    """Apply the cap and the paging facts to the fetched rows (shared by the sync and async callers)."""
    r = q.request
    if r.limit is None and q.cap is not None and len(features) > q.cap:
        raise InvalidParameter(
            f"the overlay matches more than {q.cap} {'pairs' if r.output == 'pairs' else 'left features'}; "
            f"ask for pages with `limit` (at most {q.cap}) and `offset`, or narrow it with filters")
    next_offset = r.offset + len(features) if r.limit is not None and len(features) == r.limit else None
    return OverlayResult(features, r, next_offset)


def _echo(r: OverlayRequest) -> dict[str, Any]:
    return {"left": r.left, "predicate": r.predicate, "right": r.right, "distance_m": r.distance_m,
            "left_filter": _echo_filter(r.left_filter), "right_filter": _echo_filter(r.right_filter),
            "output": r.output,
            "measures": list(r.measures), "geometry": r.geometry, "limit": r.limit, "offset": r.offset}


def _echo_filter(f: Filter) -> Any:
    return dict(f) if isinstance(f, Mapping) else f
