"""The downstream walk made ready for the cloud: cut at the horizon, linked, with each reach's hydraulics.

The walk itself is :func:`services.river.downstream` (a recursive CTE over the ``river``
graph in PostGIS); this module adds what the spill model needs on top of it: which reach feeds
which (from the reach nodes), how the mass divides where the network branches, the part of the last
reaches beyond the horizon cut off, and per reach u, A and D with the defaults that were used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import psycopg

from gis.crs import geodesic_distance_m
from gis.river_transport import RIVER_CLASSES, deng_dispersion
from services.emergency.cloud import Reach, ReachSpec, chain
from services.emergency.common import warning
from services.river import ReachRecord, Step, reach_records

#: Stored attributes that fall back to the river class defaults when missing.
HYDRAULIC_FIELDS = ("velocity_ms", "width_m", "depth_m", "slope")


@dataclass(frozen=True)
class WalkedReach:
    """A walked (and possibly cut) reach with the hydraulics the model used and where they came from."""

    step: Step
    parent: int | None
    mass_share: float
    flow_m3s: float
    area_m2: float
    dispersion_m2_s: float
    dispersion_source: str
    defaults_used: tuple[str, ...]
    cut_at_horizon: bool
    ends_network: bool


@dataclass(frozen=True)
class Walk:
    """The walk, cut at the horizon, and the cloud over it (``cloud[i]`` belongs to ``reaches[i]``)."""

    reaches: list[WalkedReach]
    cloud: list[Reach]
    warnings: list[dict[str, str]]

    @property
    def steps(self) -> list[Step]:
        """The walked steps (cut at the horizon), for the river-network queries."""
        return [r.step for r in self.reaches]

    def locate(self, reach_id: int, at_m: float) -> int | None:
        """Index of the walked reach holding the point ``at_m`` metres down the walk on ``reach_id``."""
        for i, r in enumerate(self.reaches):
            if r.step.reach_id == reach_id and r.step.start_m - 1.0 <= at_m <= r.step.end_m + 1.0:
                return i
        return None


def prepare(conn: psycopg.Connection, steps: list[Step], horizon_s: float,
            dispersion_m2_s: float | None = None) -> Walk:
    """Link, cut and parameterise the steps of :func:`services.river.downstream`.

    Steps whose velocity is 0 (or missing time) stop the walk there, with a warning.  D is
    ``dispersion_m2_s`` on every reach when given, else the reach's measured value
    (``river.dispersion_m2_s``), else Deng et al.'s (2001) estimate for natural rivers from the
    reach's u, width, depth and slope (:func:`gis.river_transport.deng_dispersion`).
    The mass divides at a branching node in proportion to the branches' flows.
    """
    records = reach_records(conn, [s.reach_id for s in steps])
    warnings: list[dict[str, str]] = []
    kept: list[Step] = []
    parents: list[int | None] = []
    for step in steps:
        if step.t_end_s is None or not step.velocity_ms or step.velocity_ms <= 0:
            warnings.append(warning("spill-no-velocity", f"河段{step.key}（{step.name}）无正流速：追踪在此停止",
                                    f"reach {step.key} ({step.name}) has no positive velocity: the walk stops there"))
            continue
        parent = _parent(step, kept, records)
        if kept and parent is None:
            continue  # below a reach that was dropped
        kept.append(step)
        parents.append(parent)

    children: dict[int | None, list[int]] = {}
    for i, p in enumerate(parents):
        children.setdefault(p, []).append(i)
    hydraulics = [_hydraulics(s, records.get(s.reach_id)) for s in kept]
    flows = [_flow(s, records.get(s.reach_id), h[0] * h[1]) for s, h in zip(kept, hydraulics)]
    shares = [1.0] * len(kept)
    for i, p in enumerate(parents):
        if p is not None:
            siblings = children[p]
            shares[i] = shares[p] * flows[i] / sum(flows[j] for j in siblings)

    reaches: list[WalkedReach] = []
    for i, step in enumerate(kept):
        cut = step.t_end_s > horizon_s
        if cut:
            step = _cut(step, horizon_s)
        width, depth, slope, defaults = hydraulics[i]
        measured = records.get(step.reach_id)
        if dispersion_m2_s is not None:
            d, source = float(dispersion_m2_s), "given"
        elif measured is not None and measured.dispersion_m2_s is not None and measured.dispersion_m2_s > 0:
            d, source = float(measured.dispersion_m2_s), "measured"
        else:
            d, source = float(deng_dispersion(step.velocity_ms, width, depth, slope)), "deng2001"
        reaches.append(WalkedReach(
            step=replace(step, width_m=width, depth_m=depth, slope=slope), parent=parents[i],
            mass_share=shares[i], flow_m3s=flows[i], area_m2=width * depth, dispersion_m2_s=d,
            dispersion_source=source, defaults_used=defaults, cut_at_horizon=cut,
            ends_network=not cut and i not in children and step.t_end_s < horizon_s))
    cloud = chain([ReachSpec(r.parent, r.step.start_m, r.step.end_m, r.step.t_start_s, r.step.t_end_s,
                             r.step.velocity_ms, r.area_m2, r.dispersion_m2_s, r.mass_share) for r in reaches])
    return Walk(reaches, cloud, warnings)


def _parent(step: Step, kept: list[Step], records: dict[int, ReachRecord]) -> int | None:
    """The kept step that feeds ``step``: it ends at ``step``'s start node, at the same distance."""
    if not kept:
        return None
    rec = records.get(step.reach_id)
    best, best_gap = None, math.inf
    for j, up in enumerate(kept):
        up_rec = records.get(up.reach_id)
        if rec is None or up_rec is None or up_rec.to_node != rec.from_node:
            continue
        gap = abs(up.end_m - step.start_m) + abs(up.t_end_s - step.t_start_s)
        if gap < best_gap:
            best, best_gap = j, gap
    return best if best_gap < 1.0 else None


def _flow(step: Step, record: ReachRecord | None, area_m2: float) -> float:
    """The reach's flow (m³/s): stored, or u A of its (default) hydraulics."""
    if record is not None and record.flow_m3s and record.flow_m3s > 0:
        return float(record.flow_m3s)
    return float(step.velocity_ms * area_m2)


def _hydraulics(step: Step, record: ReachRecord | None) -> tuple[float, float, float, tuple[str, ...]]:
    """Width, depth and slope (class defaults where missing or not positive) and the defaulted fields."""
    default = RIVER_CLASSES[step.river_class]
    defaults = [f for f in HYDRAULIC_FIELDS if record is None or getattr(record, f) is None]
    values = {"width_m": step.width_m, "depth_m": step.depth_m, "slope": step.slope}
    fallback = {"width_m": default.width, "depth_m": default.depth, "slope": default.slope}
    for name, value in values.items():
        if value is None or not value > 0:
            values[name] = fallback[name]
            if name not in defaults:
                defaults.append(name)
    return float(values["width_m"]), float(values["depth_m"]), float(values["slope"]), tuple(defaults)


def _cut(step: Step, horizon_s: float) -> Step:
    """The part of ``step`` the cloud's centre reaches by ``horizon_s``."""
    fraction = (horizon_s - step.t_start_s) / (step.t_end_s - step.t_start_s)
    fraction = min(max(fraction, 0.0), 1.0)
    geojson = {"type": "LineString", "coordinates": cut_line(step.geojson["coordinates"], fraction)}
    return replace(step, end_m=step.start_m + fraction * (step.end_m - step.start_m), t_end_s=horizon_s,
                   geojson=geojson)


def cut_line(coords: list[list[float]], fraction: float) -> list[list[float]]:
    """The first ``fraction`` of a lon/lat line, measured along the ellipsoid (not in degrees)."""
    xy = np.asarray(coords, dtype=np.float64)
    if len(xy) < 2 or fraction >= 1.0:
        return [list(map(float, c)) for c in xy]
    seg = np.asarray(geodesic_distance_m(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1]), dtype=np.float64)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    target = fraction * cum[-1]
    k = int(np.searchsorted(cum, target, side="right"))
    k = min(max(k, 1), len(xy) - 1)
    span = cum[k] - cum[k - 1]
    w = 0.0 if span == 0 else (target - cum[k - 1]) / span
    end = xy[k - 1] + w * (xy[k] - xy[k - 1])
    out = np.vstack([xy[:k], end[None, :]])
    return [[round(float(a), 7), round(float(b), 7)] for a, b in out]


def reach_summary(r: WalkedReach) -> dict[str, Any]:
    """The model parameters of one walked reach, as the response states them."""
    s = r.step
    return {
        "reach_key": s.key, "river": s.name, "river_class": s.river_class,
        "velocity_m_s": round(s.velocity_ms, 4), "width_m": round(s.width_m, 2), "depth_m": round(s.depth_m, 3),
        "slope": s.slope, "area_m2": round(r.area_m2, 1), "flow_m3_s": round(r.flow_m3s, 2),
        "dispersion_m2_s": round(r.dispersion_m2_s, 2), "dispersion_source": r.dispersion_source,
        "defaults_used": list(r.defaults_used), "mass_share": round(r.mass_share, 6),
    }
