"""Check a file before sending it: everything a load validates that needs no database.

``check_file`` reads the file exactly as a load does (``etl.readers.read`` in the sandbox, the same
mapping) and runs the same validation (``etl.normalise.prepare``): columns, types, domains, required
fields, CRS, swapped axes, the region's envelope, invalid geometry and duplicate keys.  Without a
database the envelope is the default one of the region (``etl.load.DEFAULT_ENVELOPE``) and nothing
that depends on loaded data (jurisdiction, a steward's rights, existing keys) is checked.

On top of that it looks for probable duplicate facilities inside the file: two loadable rows of a
point layer lying within ``within_m`` metres of each other with similar names.  Names are compared
after normalising them (full-width forms, case, whitespace, punctuation and company suffixes such as
有限公司 or Co., Ltd. removed); they are similar when their ``difflib.SequenceMatcher`` ratio is at
least ``SIMILARITY`` or one contains the other.  Close pairs are found with an R-tree over the points
in a transverse Mercator centred on the file's points, so distances are in metres.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from rich.console import Console
from rich.table import Table
from rtree import index as rtree_index

from etl.errors import InputError
from etl.load import DEFAULT_ENVELOPE
from etl.mapping import Mapping, load_mapping
from etl.normalise import Prepared, Reject, Repair, prepare
from etl.readers import read
from gis.crs import metric_crs_for, to_metric
from layers.catalogue import RASTER_KINDS, Layer, UnknownLayer, get_layer

DEFAULT_WITHIN_M = 100.0
SIMILARITY = 0.8

# Company-form suffixes, longest first; removed repeatedly from the end of a normalised name.
_SUFFIXES_ZH = ("股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "集团公司", "股份公司", "分公司",
                "公司", "股份", "集团", "厂")
_SUFFIX_EN = re.compile(
    r"(?<=\s)(?:co\s*ltd|company\s*limited|corporation|company|limited|ltd|inc|corp|llc|co)\s*$")


@dataclass
class DuplicatePair:
    """Two rows that probably describe the same facility."""

    row_a: int
    row_b: int
    name_a: str
    name_b: str
    distance_m: float
    similarity: float  # SequenceMatcher ratio of the normalised names
    contained: bool  # one normalised name contains the other


@dataclass
class CheckReport:
    """What a load of the file would reject, repair and notice, and the probable duplicates."""

    file: str
    layer: str
    rows_in: int
    crs: str
    envelope: tuple[float, float, float, float]
    within_m: float
    rows_ok: int = 0
    rows_rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duplicates: list[DuplicatePair] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """As for ``load``: 2 when no row is loadable, 1 when rows would be rejected or duplicates
        were found, else 0."""
        if self.rows_in > 0 and self.rows_ok == 0:
            return 2
        return 1 if self.rows_rejected or self.duplicates else 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the CLI's ``--json``)."""
        out = asdict(self)
        out["envelope"] = list(self.envelope)
        out["exit_code"] = self.exit_code
        return out


def check_file(path: str | Path, layer_name: str, *, mapping: str | Path | Mapping | None = None,
               crs: str | None = None, source_layer: str | None = None,
               within_m: float = DEFAULT_WITHIN_M,
               envelope: tuple[float, float, float, float] = DEFAULT_ENVELOPE,
               sandbox: bool = True) -> CheckReport:
    """Validate ``path`` for ``layer_name`` as a load would, without a database; find near duplicates.

    Raises ``InputError`` when the call or the file is wrong as a whole (unknown layer, unreadable
    file, bad mapping); the message names the file.
    """
    path = Path(path)
    if not within_m > 0:
        raise InputError(f"--within-m was {within_m!r} but is expected to be a positive distance in metres")
    layer = _vector_layer(layer_name)
    m = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    raw = read(path, source_layer=source_layer, x=m.x, y=m.y, wkt=m.wkt, encoding=m.encoding, sandbox=sandbox)
    prepared = prepare(raw, layer, m, crs=crs, envelope=envelope)
    report = CheckReport(file=str(path), layer=layer.name, rows_in=prepared.rows_in, crs=prepared.crs,
                         envelope=envelope, within_m=within_m, rows_ok=len(prepared.frame),
                         rows_rejected=len({r.row_no for r in prepared.rejects}), rejects=list(prepared.rejects),
                         repairs=list(prepared.repairs), notes=list(prepared.notes))
    report.notes.append("checked against the region's default envelope "
                        f"{tuple(envelope)}; a load also derives each row's city and county and applies "
                        "the loader's rights, which need the database")
    if layer.geometry_type == "Point" and "name" in layer.field_names:
        report.duplicates = probable_duplicates(prepared, within_m)
    else:
        report.notes.append(f"duplicate facilities are looked for in named point layers; {layer.name} "
                            "is not one")
    return report


def _vector_layer(name: str) -> Layer:
    if name in RASTER_KINDS:
        raise InputError(f"{name!r} is a raster kind; check validates vector layers (a raster is checked "
                         "when it is loaded)")
    try:
        return get_layer(name)
    except UnknownLayer as exc:
        raise InputError(str(exc).strip('"')) from None


def normalise_name(name: str) -> str:
    """A facility name reduced for comparison: NFKC, lower case, company suffixes, whitespace and
    punctuation removed (南京某某化工有限公司 -> 南京某某化工; ACME Chemical Co., Ltd. -> acmechemical)."""
    text = unicodedata.normalize("NFKC", name).lower().strip()
    while True:
        text = _strip_marks(text, keep_spaces=True).strip()
        before = text
        for suffix in _SUFFIXES_ZH:
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)]
                break
        else:
            cut = _SUFFIX_EN.search(text)
            if cut:
                text = text[: cut.start()]
        if text == before:
            break
    return _strip_marks(text, keep_spaces=False)


def _strip_marks(text: str, *, keep_spaces: bool) -> str:
    """Remove punctuation and symbols (and whitespace unless ``keep_spaces``)."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] in "PS":
            out.append(" " if keep_spaces else "")
        elif ch.isspace():
            out.append(" " if keep_spaces else "")
        else:
            out.append(ch)
    return re.sub(r"\s+", " ", "".join(out)) if keep_spaces else "".join(out)


def name_similarity(a: str, b: str) -> tuple[float, bool]:
    """The ``SequenceMatcher`` ratio of two normalised names, and whether one contains the other."""
    if not a or not b:
        return 0.0, False
    return SequenceMatcher(None, a, b).ratio(), (a in b or b in a)


def probable_duplicates(prepared: Prepared, within_m: float = DEFAULT_WITHIN_M) -> list[DuplicatePair]:
    """Pairs of loadable rows within ``within_m`` metres whose names are similar, nearest first."""
    names = prepared.frame["name"] if "name" in prepared.frame else pd.Series(dtype="string")
    rows = np.asarray(prepared.frame.index, dtype=np.int64)
    geoms = np.asarray(prepared.geometry, dtype=object)
    has = np.array([g is not None for g in geoms], dtype=bool) & names.notna().to_numpy(dtype=bool)
    if has.sum() < 2:
        return []
    rows, geoms = rows[has], geoms[has]
    raw_names = [str(v) for v in names.to_numpy(dtype=object)[has]]
    normalised = [normalise_name(n) or _strip_marks(n.lower(), keep_spaces=False) for n in raw_names]
    points = shapely.point_on_surface(geoms)
    lon, lat = shapely.get_coordinates(points).mean(axis=0)
    xy = shapely.get_coordinates(to_metric(points, metric_crs_for(float(lon), float(lat))))
    tree = rtree_index.Index((i, (x, y, x, y), None) for i, (x, y) in enumerate(xy))
    pairs: list[DuplicatePair] = []
    for i, (x, y) in enumerate(xy):
        for j in sorted(tree.intersection((x - within_m, y - within_m, x + within_m, y + within_m))):
            if j <= i:
                continue
            distance = float(np.hypot(xy[j, 0] - x, xy[j, 1] - y))
            if distance > within_m:
                continue
            ratio, contained = name_similarity(normalised[i], normalised[j])
            if ratio >= SIMILARITY or contained:
                pairs.append(DuplicatePair(int(rows[i]), int(rows[j]), raw_names[i], raw_names[j],
                                           round(distance, 1), round(ratio, 3), contained))
    return sorted(pairs, key=lambda p: (p.distance_m, p.row_a, p.row_b))


def print_check(report: CheckReport, console: Console, show: int = 20) -> None:
    """The report as tables for people: counts, rejected rows, repairs, notes, probable duplicates."""
    d = report
    t = Table(title=f"check {Path(d.file).name} → {d.layer}")
    for c in ("rows read", "ok", "rejected", "repaired", "duplicate pairs", "crs"):
        t.add_column(c)
    t.add_row(str(d.rows_in), str(d.rows_ok), str(d.rows_rejected), str(len({r.row_no for r in d.repairs})),
              str(len(d.duplicates)), d.crs)
    console.print(t)
    for note in d.notes:
        console.print(f"note: {note}")
    if d.rejects:
        r = Table(title=f"rows a load would reject (showing {min(show, len(d.rejects))} of {len(d.rejects)} "
                        "reasons)")
        for c in ("row", "field", "reason"):
            r.add_column(c)
        for item in d.rejects[:show]:
            r.add_row(str(item.row_no), item.field or "", item.reason)
        console.print(r)
    if d.repairs:
        r = Table(title=f"rows a load would repair ({len(d.repairs)})")
        for c in ("row", "field", "what changed"):
            r.add_column(c)
        for rep in d.repairs[:show]:
            r.add_row(str(rep.row_no), rep.field, rep.what)
        console.print(r)
    if d.duplicates:
        r = Table(title=f"probable duplicate facilities (within {d.within_m:g} m, similar names)")
        for c in ("row", "name", "row", "name", "distance m", "similarity"):
            r.add_column(c)
        for p in d.duplicates[:show]:
            sim = f"{p.similarity:.2f}" + (" (contained)" if p.contained else "")
            r.add_row(str(p.row_a), p.name_a, str(p.row_b), p.name_b, f"{p.distance_m:.1f}", sim)
        console.print(r)
    verdict = {0: "[green]every row would load[/green]",
               1: "[yellow]some rows would be rejected or look duplicated[/yellow]",
               2: "[red]no row would load[/red]"}[d.exit_code]
    console.print(verdict)
