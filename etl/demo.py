"""The demo region: real boundaries and a synthetic inventory, loaded through the ordinary ETL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from etl.agencies import load_demo_agencies
from etl.load import Actor, Progress, load_file
from etl.observations import load_observation_file
from etl.raster import register_raster
from etl.sources.boundaries import CREDIT, region_boundaries
from etl.sources.demo import write_demo_files
from etl.sources.demo.ledger import load_demo_ledger
from etl.sources.demo.observations import write_observation_files
from layers import db
from layers.catalogue import relation
from layers.settings import DatabaseSettings

DEMO_SEED = 20261126


@dataclass
class DemoReport:
    folder: str
    loads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return max((entry["exit_code"] for entry in self.loads), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "loads": self.loads, "exit_code": self.exit_code}


def demo_files(folder: Path, seed: int = DEMO_SEED, n_sources: int = 2400) -> list[dict[str, Any]]:
    """Write the boundary file and the synthetic files; return what to load, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    boundaries = folder / "admin_area.geojson"
    region_boundaries().to_file(boundaries, driver="GeoJSON")
    manifest = write_demo_files(folder, seed=seed, n_sources=n_sources)
    entries = json.loads((folder / "demo_manifest.json").read_text(encoding="utf-8"))["files"]
    del manifest
    order = ["river", "water_reserve", "protection_zone", "protected_area", "monitoring_station",
             "risk_source", "population"]
    entries.sort(key=lambda e: order.index(e["layer"]) if e["layer"] in order else len(order))
    return [{"file": str(boundaries), "layer": "admin_area", "mapping": None}] + [
        {**e, "file": str(folder / Path(e["file"]).name)} for e in entries]


def load_demo(settings: DatabaseSettings, folder: Path | None = None, *, seed: int = DEMO_SEED,
              n_sources: int = 2400, progress: Progress | None = None) -> DemoReport:
    """Write and load the demo region; loading it again changes nothing."""
    folder = folder or settings.state_dir.resolve() / "demo"
    report = DemoReport(str(folder))
    for entry in demo_files(folder, seed=seed, n_sources=n_sources):
        path = Path(entry["file"])
        if entry["layer"] == "population":
            out = register_raster(settings, path, "population", source=f"riskatlas synthetic demo (seed {seed})")
        else:
            out = load_file(settings, path, entry["layer"], mapping=entry.get("mapping"), progress=progress,
                            sandbox=False)  # files this module has just written
        report.loads.append({"file": path.name, "layer": entry["layer"], **_summary(out.to_dict())})
    report.loads.append(load_demo_ledger(settings, folder, seed=seed))  # after its rivers and stations
    with db.connect(settings) as conn:  # the directory of agencies: one synthetic duty office per city and county
        agencies = load_demo_agencies(conn, folder).to_dict()
    report.loads.append({"file": agencies["file"], "layer": "agency", "status": agencies["status"],
                         "rows_in": agencies["rows_in"], "rows_inserted": agencies["rows_inserted"],
                         "rows_updated": agencies["rows_updated"], "rows_rejected": agencies["rows_rejected"],
                         "exit_code": 0 if agencies["status"] == "loaded" else 2})
    for path in write_observation_files(settings, folder, seed):  # a year of synthetic measurements
        out = load_observation_file(settings, path, actor=Actor(user="demo"))
        report.loads.append({"file": path.name, "layer": "observation", **_summary(out.to_dict()),
                             "notes": out.notes})
    with db.transaction(settings) as conn:
        conn.execute(
            sql.SQL("""INSERT INTO {} (name, value) VALUES ('demo', %s)
                ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value""").format(relation("dataset_info")),
            (json.dumps({"synthetic": True, "seed": seed,
                         "notice": "Synthetic demo inventory: risk sources, water sources, zones, protected "
                                   "areas, rivers, stations, population and the observations of 2025 are "
                                   "invented for demonstration.",
                         "notice_zh": "演示数据为合成数据，仅供演示。",
                         "boundaries_credit": CREDIT}, ensure_ascii=False),))
    return report


def _summary(d: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "rows_in", "rows_inserted", "rows_updated", "rows_unchanged", "rows_rejected",
            "exit_code", "batch_id")
    return {k: d[k] for k in keys if k in d}
