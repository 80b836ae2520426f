"""Air: the HJ 633-2012 tables of ``layers/data/hj633_aqi.yaml`` and what the readers share about them.

The index itself is :mod:`gis.aqi` (pure); this module reads the data file once and names the
parameters, the quality flags that count and the report days.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import yaml

from gis.aqi import AqiTables

DATA = Path(__file__).resolve().parents[2] / "layers" / "data"
AQI_FILE = DATA / "hj633_aqi.yaml"

#: The air parameters indexed by HJ 633 (codes of the observation store).
AIR_PARAMETERS = ("so2", "no2", "co", "o3", "o3_8h", "pm10", "pm25")
#: Quality flags whose values count for an index or a class; the others are shown but not used.
COUNTED_FLAGS = ("valid", "estimated")
#: China Standard Time: report days and the times shown run on it.
CST = dt.timezone(dt.timedelta(hours=8), "CST")
#: SQL that formats a timestamptz column as ISO 8601 in China Standard Time (``{}`` is the column).
CST_ISO = "to_char({} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+08:00\"')"


class AqiTablesUnreadable(RuntimeError):
    """The AQI data file cannot be read or parsed."""


@lru_cache(maxsize=4)
def aqi_tables(path: Path = AQI_FILE) -> AqiTables:
    """The HJ 633 tables of ``layers/data/hj633_aqi.yaml`` (or another file of the same form), read once."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AqiTablesUnreadable(f"{path.name}: cannot read the AQI tables: {exc}") from None
    return AqiTables.from_dict(doc)


@lru_cache(maxsize=1)
def aqi_document(path: Path = AQI_FILE) -> dict:
    """The parsed data file itself (texts of the rules and conventions, for pages that explain them)."""
    return dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
