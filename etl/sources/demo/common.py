"""Constants, result records and geometry helpers shared by the demo builder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon

import layers
from gis.crs import LOCAL_METRIC

DEFAULT_SEED = 20261126
DATA_DIR = Path(__file__).resolve().parents[1] / "data"  # etl/sources/data
HJ338_YAML = Path(layers.__file__).resolve().parent / "data" / "hj338_protection_zones.yaml"

#: Exact header of the Chuzhou bureau export.
CSV_HEADER = ("企业编码", "企业名称", "类别", "行业", "地址", "风险物质", "CAS号", "最大存在量(kg)", "M值",
              "状态", "经度", "纬度", "行政区划代码")
CHUZHOU = "341100"
CHANGZHOU = "320400"
#: Sample spacing along rivers (m), the shortest stay in one city that counts as a crossing, the
#: longest reach, and how close a city-boundary cut may come to another cut before it is dropped.
_SAMPLE_M = 250.0
_MIN_RUN_M = 12000.0
_MAX_REACH_M = 30000.0
_SPLIT_GAP_M = 2000.0
#: Shortest stretch outside the region at either end of a course that is cut off.
_END_RUN_M = 1000.0
_POINT_DIGITS = 6  # ~0.1 m
_SHAPE_DIGITS = 7  # ~1 cm
_WRONG_CODE_SHARE = 0.02
_KM_PER_DEG = 111.32  # km per degree of latitude (and of longitude at the equator)

_TO_M = Transformer.from_crs("EPSG:4326", LOCAL_METRIC, always_xy=True)
_TO_LL = Transformer.from_crs(LOCAL_METRIC, "EPSG:4326", always_xy=True)

Coord = tuple[float, float]


# --------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class DemoFile:
    """One file written by :func:`write_demo_files` and how to load it."""

    file: str
    layer: str
    format: str
    crs: str
    mapping: str | None
    encoding: str | None
    count: int


@dataclass(frozen=True)
class DemoManifest:
    """What :func:`write_demo_files` wrote; mirrors ``demo_manifest.json`` (plus the folder)."""

    out_dir: Path
    seed: int
    synthetic: bool
    source: str
    files: tuple[DemoFile, ...]
    counts: dict[str, int]
    boundary_credit: str
    notes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON document written as ``demo_manifest.json`` (no absolute paths)."""
        return {
            "seed": self.seed,
            "synthetic": self.synthetic,
            "source": self.source,
            "files": [vars(f) for f in self.files],
            "counts": self.counts,
            "boundary_credit": self.boundary_credit,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------------------------------
# geometry helpers


def _to_metric(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(_TO_M.transform(c[:, 0], c[:, 1])))


def _to_lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(_TO_LL.transform(c[:, 0], c[:, 1])))


def _xy_to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _TO_LL.transform(x, y)
    return np.round(lon, _POINT_DIGITS), np.round(lat, _POINT_DIGITS)


def _multipolygon(geom: shapely.Geometry) -> MultiPolygon:
    """Valid MultiPolygon of the polygonal parts of ``geom`` (empty if it has none)."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polys = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    parts = [q for p in polys for q in shapely.get_parts(p)]
    return MultiPolygon(parts)


def _rounded(geom: shapely.Geometry, digits: int) -> shapely.Geometry:
    out = shapely.transform(geom, lambda c: np.round(c, digits))
    if geom.geom_type == "MultiPolygon" and not out.is_valid:
        out = _multipolygon(out)
    return out


def _geojson_geometry(geom: shapely.Geometry, digits: int) -> dict[str, Any]:
    return json.loads(shapely.to_geojson(_rounded(geom, digits)))


