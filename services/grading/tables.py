"""The HJ 941 grading tables and the HJ 169 critical quantities, read from the project's data files."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import yaml

from gis.grading import Critical, CriticalTable, GradingTables
from layers.substances import DATA, substances

TABLES_FILE = DATA / "hj941_grading.yaml"
SUBSTANCES_FILE = DATA / "hj169_substances.csv"


class GradingError(RuntimeError):
    """A run cannot start: no population raster, a raster in the wrong CRS, tables that do not parse."""


@lru_cache(maxsize=4)
def load_tables(path: Path = TABLES_FILE) -> GradingTables:
    """The HJ 941 tables of ``layers/data/hj941_grading.yaml`` (or another file of the same form)."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GradingError(f"{path}: cannot read the grading tables: {exc}") from None
    return GradingTables.from_dict(doc)


@lru_cache(maxsize=1)
def critical_table() -> CriticalTable:
    """The HJ 169 critical quantities, found by id, names, aliases or CAS number, with the media each
    counts for (the substance table's ``media`` column: HJ 941-2018 §6.1 air, §7.1 water)."""
    return CriticalTable(Critical(s.id, s.name_en, s.cas, s.critical_t, s.water, (s.name_zh, *s.aliases), s.air)
                         for s in substances())


def tables_sha256(path: Path = TABLES_FILE) -> str:
    """One checksum over the grading tables and the substance table a run used."""
    h = hashlib.sha256()
    for p in (Path(path), SUBSTANCES_FILE):
        h.update(p.read_bytes())
    return h.hexdigest()
