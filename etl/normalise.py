"""Normalise and validate a raw table against a layer: fields, values, units, CRS, geometry.

Every row either comes out clean or is rejected with each of its reasons; nothing is dropped
without a word, and nothing is changed without one either: every geometry repair of a loaded row
(a ring closed, a crossing settled by make_valid with the area before and after, line parts
joined) is listed with its row.  The work is vectorised (pandas, shapely 2) so a million rows take
seconds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from etl.errors import InputError
from etl.mapping import UNIT_FACTORS, Mapping
from etl.readers import RawTable
from gis.crs import CrsSpec, UnknownCRS, parse_crs, transform_geometries
from gis.repair import repair_geometries
from layers.catalogue import Field, Layer

TRUE_WORDS = {"true", "t", "1", "yes", "y", "是", "真"}
FALSE_WORDS = {"false", "f", "0", "no", "n", "否", "假"}
WGS84 = "EPSG:4326"


@dataclass
class Reject:
    """One reason one row was not loaded."""

    row_no: int
    reason: str
    field: str | None = None


@dataclass
class Repair:
    """What was changed in one field of one loaded row to make it valid."""

    row_no: int
    what: str
    field: str = "geometry"


@dataclass
class Prepared:
    """Clean rows ready for staging, and what was rejected or noticed on the way."""

    layer: Layer
    frame: pd.DataFrame  # one column per layer field present, typed; index = row_no (1-based)
    geometry: np.ndarray  # valid WGS84 geometries of the layer's type, aligned with frame
    rows_in: int
    crs: str
    rejects: list[Reject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    claimed_city: pd.Series | None = None
    source_records: pd.DataFrame | None = None  # the raw rows, for reject records

    @property
    def repaired(self) -> int:
        """How many loaded rows were repaired (a row may have several repairs)."""
        return len({r.row_no for r in self.repairs})


def prepare(raw: RawTable, layer: Layer, mapping: Mapping, *, crs: str | None = None,
            envelope: tuple[float, float, float, float]) -> Prepared:
    """Map, coerce, transform and validate ``raw`` for ``layer``; reject what cannot be loaded."""
    mapping.check(layer)
    n = len(raw)
    src = raw.frame.copy()
    src.index = pd.RangeIndex(1, n + 1)
    rejects: list[Reject] = []
    notes: list[str] = []

    frame = _rename(src, layer, mapping, notes)
    if mapping.substances is not None:
        frame["substances"] = _substances_from_columns(src, mapping.substances, rejects)
    for name, default in mapping.defaults.items():
        if name not in frame:
            frame[name] = default
        else:
            frame[name] = frame[name].where(frame[name].notna(), default)
    for name, table in mapping.values.items():
        if name in frame:
            frame[name] = frame[name].map(lambda v, t=table: t.get(v, t.get(str(v), v)) if pd.notna(v) else v)
    for f in layer.fields:
        if f.name in frame:
            frame[f.name] = _coerce(frame[f.name], f, rejects)
    for name, factor in mapping.units.items():
        if name in frame:
            frame[name] = frame[name] * float(factor)
            if layer.field(name).type == "int":
                frame[name] = frame[name].round().astype("Int64")
    _check_fields(frame, layer, rejects)

    spec = _source_crs(crs, mapping, raw)
    geometry = _geometry(raw.geometry, spec, layer, envelope, rejects)
    geometry, repairs = _repair(geometry, layer, rejects, raw.rings_closed)

    frame["key"] = _keys(frame, geometry, layer)
    _duplicates(frame["key"], rejects)

    bad = {r.row_no for r in rejects}
    keep = np.array([i not in bad for i in frame.index], dtype=bool)
    claimed = None
    if mapping.claimed_city:
        if mapping.claimed_city not in src:
            raise InputError(f"file {raw.path.name}: claimed_city column {mapping.claimed_city!r} not found; "
                             f"columns are {list(src.columns)}")
        claimed = src[mapping.claimed_city].astype("string")[keep]
    return Prepared(layer=layer, frame=frame[keep], geometry=geometry[keep], rows_in=n, crs=spec.name,
                    rejects=sorted(rejects, key=lambda r: r.row_no), notes=notes + raw.notes,
                    repairs=[r for r in repairs if r.row_no not in bad], claimed_city=claimed,
                    source_records=src)


def _rename(src: pd.DataFrame, layer: Layer, mapping: Mapping, notes: list[str]) -> pd.DataFrame:
    names = set(layer.field_names)
    folded = {n.lower(): n for n in names}
    exact = set(src.columns)
    out: dict[str, pd.Series] = {}
    for col in src.columns:
        target = mapping.columns.get(col) or (col if col in names else None)
        if target is None and str(col).lower() in folded and folded[str(col).lower()] not in exact:
            target = folded[str(col).lower()]  # KML's Name, a shapefile's NAME
        if col == mapping.key:
            target = "key"
        if target is None:
            continue
        if target in out:
            raise InputError(f"mapping {mapping.name!r}: two columns map to field {target!r}")
        out[target] = src[col]
    derived = [f.name for f in layer.fields if f.derived and f.name in out]
    for name in derived:
        notes.append(f"column {name!r} is derived by riskatlas; the file's values are ignored")
        out.pop(name)
    used = set(mapping.columns) | names | {mapping.key, mapping.claimed_city} | set(out) | {
        c for c in src.columns if str(c).lower() in folded}
    if mapping.substances:
        used |= {v for k, v in mapping.substances.items() if k != "unit"}
    ignored = [c for c in src.columns if c not in used]
    if ignored:
        notes.append(f"columns not mapped to any field and ignored: {ignored}")
    return pd.DataFrame(out, index=src.index)


def _substances_from_columns(src: pd.DataFrame, spec: dict[str, str], rejects: list[Reject]) -> pd.Series:
    for part in ("name", "quantity"):
        if spec.get(part) not in src:
            raise InputError(f"substances.{part} column {spec.get(part)!r} not found; columns are "
                             f"{list(src.columns)}")
    factor = UNIT_FACTORS[spec.get("unit", "t")]
    names = src[spec["name"]].fillna("")
    cas = src[spec["cas"]].fillna("") if spec.get("cas") in src else pd.Series("", index=src.index)
    qty = src[spec["quantity"]].fillna("")
    out = []
    for row_no, n, c, q in zip(src.index, names, cas, qty):
        ns, cs, qs = _split(n), _split(c), _split(q)
        if not ns:
            out.append(None)
            continue
        if len(qs) != len(ns) or (cs and len(cs) != len(ns)):
            rejects.append(Reject(row_no, f"substances: {len(ns)} names but {len(qs)} quantities and "
                                          f"{len(cs)} CAS numbers", "substances"))
            out.append(None)
            continue
        items = []
        for i, name in enumerate(ns):
            try:
                quantity = float(qs[i]) * factor
            except ValueError:
                rejects.append(Reject(row_no, f"substances: quantity {qs[i]!r} of {name} is not a number",
                                      "substances"))
                items = None
                break
            items.append({"name": name, "cas": (cs[i] or None) if cs else None,
                          "quantity_t": round(quantity, 6)})
        out.append(items)
    return pd.Series(out, index=src.index, dtype=object)


def _split(value: Any) -> list[str]:
    text = str(value).replace("；", ";").strip()
    return [p.strip() for p in text.split(";")] if text else []


def _text(series: pd.Series) -> pd.Series:
    """Trimmed text with empty strings as missing (Arrow-backed: vectorised in C++)."""
    text = series.astype("string[pyarrow]").str.strip()
    return text.where(text != "")


def _coerce(series: pd.Series, f: Field, rejects: list[Reject]) -> pd.Series:
    if f.type in ("int", "float"):
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.astype("Float64")
        else:
            text = _text(series)
            values = pd.to_numeric(text, errors="coerce").astype("Float64")
            bad = text.notna() & values.isna()
            for row_no in series.index[bad.to_numpy(dtype=bool, na_value=False)]:
                rejects.append(Reject(row_no, f"field {f.name!r}: {series[row_no]!r} is not a number", f.name))
        if f.type == "int":
            frac = (values.notna() & (values % 1 != 0)).to_numpy(dtype=bool, na_value=False)
            for row_no in series.index[frac]:
                rejects.append(Reject(row_no, f"field {f.name!r}: {series[row_no]!r} is not a whole number",
                                      f.name))
            return values.round().astype("Int64")
        return values
    if f.type == "bool":
        if pd.api.types.is_bool_dtype(series):
            return series.astype("boolean")
        raw_bool = series.map(lambda v: isinstance(v, (bool, np.bool_)))
        words = _text(series).str.lower()
        out = pd.Series(pd.NA, index=series.index, dtype="boolean")
        out[words.isin(TRUE_WORDS).to_numpy(dtype=bool, na_value=False)] = True
        out[words.isin(FALSE_WORDS).to_numpy(dtype=bool, na_value=False)] = False
        out[raw_bool] = series[raw_bool].astype(bool)
        bad = (words.notna() & out.isna()).to_numpy(dtype=bool, na_value=False)
        for row_no in series.index[bad]:
            rejects.append(Reject(row_no, f"field {f.name!r}: {series[row_no]!r} is not true or false", f.name))
        return out
    if f.type == "json":
        values = pd.Series(series.to_numpy(dtype=object, na_value=None), index=series.index, dtype=object)
        return values.map(lambda v, f=f: _json_value(v, f), na_action="ignore")
    return _text(series)


def _json_value(value: Any, f: Field) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return _BadJson(value)
    return value


class _BadJson(str):
    """A value that should have been JSON but did not parse."""


def _check_fields(frame: pd.DataFrame, layer: Layer, rejects: list[Reject]) -> None:
    for f in layer.input_fields:
        if f.name == "key":
            continue
        col = frame.get(f.name)
        if f.required:
            missing = frame.index if col is None else frame.index[col.isna()]
            for row_no in missing:
                rejects.append(Reject(row_no, f"missing required field {f.name!r}", f.name))
        if col is None:
            continue
        if f.domain:
            bad = col.notna() & ~col.astype("string").isin(f.domain)
            for row_no in frame.index[bad.fillna(False).astype(bool)]:
                rejects.append(Reject(row_no, f"field {f.name!r} was {col[row_no]!r} but is expected to be "
                                              f"one of {list(f.domain)}", f.name))
        if f.type in ("int", "float"):
            if f.minimum is not None:
                for row_no in frame.index[(col < f.minimum).fillna(False).astype(bool)]:
                    rejects.append(Reject(row_no, f"field {f.name!r} is {col[row_no]}, below the minimum "
                                                  f"{f.minimum}", f.name))
            if f.maximum is not None:
                for row_no in frame.index[(col > f.maximum).fillna(False).astype(bool)]:
                    rejects.append(Reject(row_no, f"field {f.name!r} is {col[row_no]}, above the maximum "
                                                  f"{f.maximum}", f.name))
        if f.type == "json":
            for row_no, v in col.items():
                if isinstance(v, _BadJson):
                    rejects.append(Reject(row_no, f"field {f.name!r} is not valid JSON: {str(v)[:60]!r}", f.name))
                elif f.name == "substances" and v is not None and not _valid_substances(v):
                    rejects.append(Reject(row_no, "field 'substances' must be a list of {name, cas, quantity_t}"
                                                  " with quantity_t ≥ 0", f.name))


def _valid_substances(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    for item in value:
        if not isinstance(item, dict) or not item.get("name"):
            return False
        q = item.get("quantity_t")
        if q is not None and (not isinstance(q, (int, float)) or q < 0):
            return False
    return True


def _source_crs(crs: str | None, mapping: Mapping, raw: RawTable) -> CrsSpec:
    given = crs or mapping.crs or raw.crs
    if given is None:
        raw.notes.append("the file states no CRS; coordinates taken as EPSG:4326 (WGS84)")
        given = WGS84
    try:
        return parse_crs(given)
    except UnknownCRS as exc:
        raise InputError(f"file {raw.path.name}: {exc}") from None


def _geometry(geoms: np.ndarray, spec: CrsSpec, layer: Layer, envelope: tuple[float, float, float, float],
              rejects: list[Reject]) -> np.ndarray:
    n = len(geoms)
    index = np.arange(1, n + 1)
    missing = np.array([g is None for g in geoms], dtype=bool)
    present = ~missing
    empty = np.zeros(n, dtype=bool)
    empty[present] = shapely.is_empty(geoms[present].astype(object))
    for row_no in index[missing]:
        rejects.append(Reject(int(row_no), "missing geometry (no coordinates)", "geometry"))
    for row_no in index[empty]:
        rejects.append(Reject(int(row_no), "empty geometry", "geometry"))
    usable = present & ~empty
    out = np.full(n, None, dtype=object)
    if not usable.any():
        return out
    g = geoms[usable]
    if _is_geographic(spec):
        g = _swapped(g, index[usable], envelope, rejects)
    keep = np.array([x is not None for x in g], dtype=bool)
    moved = np.full(len(g), None, dtype=object)
    if keep.any():
        moved[keep] = transform_geometries(g[keep].astype(object), spec, parse_crs(WGS84))
    out[usable] = moved
    _outside(out, index, envelope, rejects)
    return out


def _is_geographic(spec: CrsSpec) -> bool:
    if spec.offset is not None:
        return True
    from pyproj import CRS

    return CRS.from_user_input(spec.name).is_geographic


def _swapped(g: np.ndarray, rows: np.ndarray, envelope: tuple[float, float, float, float],
             rejects: list[Reject]) -> np.ndarray:
    minx, miny, maxx, maxy = envelope
    b = shapely.bounds(g)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    swapped = (cx >= miny - 1) & (cx <= maxy + 1) & (cy >= minx - 1) & (cy <= maxx + 1)
    swapped &= ~((cx >= minx) & (cx <= maxx) & (cy >= miny) & (cy <= maxy))
    out = g.copy()
    for i in np.flatnonzero(swapped):
        rejects.append(Reject(int(rows[i]), f"longitude and latitude appear swapped: x={cx[i]:.6f}, "
                                             f"y={cy[i]:.6f} (expected x around {minx:.0f}–{maxx:.0f}, "
                                             f"y around {miny:.0f}–{maxy:.0f})", "geometry"))
        out[i] = None
    return out


def _outside(geoms: np.ndarray, index: np.ndarray, envelope: tuple[float, float, float, float],
             rejects: list[Reject]) -> None:
    has = np.array([x is not None for x in geoms], dtype=bool)
    if not has.any():
        return
    minx, miny, maxx, maxy = envelope
    b = shapely.bounds(geoms[has].astype(object))
    bad = ~np.isfinite(b).all(axis=1) | (b[:, 0] < minx) | (b[:, 1] < miny) | (b[:, 2] > maxx) | (b[:, 3] > maxy)
    rows = index[has]
    for i in np.flatnonzero(bad):
        rejects.append(Reject(int(rows[i]), f"coordinates ({b[i, 0]:.6f}, {b[i, 1]:.6f}) lie outside the "
                                             f"region's envelope {tuple(round(v, 3) for v in envelope)}",
                              "geometry"))
        geoms[np.flatnonzero(has)[i]] = None


def _repair(geoms: np.ndarray, layer: Layer, rejects: list[Reject],
            rings_closed: np.ndarray | None) -> tuple[np.ndarray, list[Repair]]:
    """Validate and repair the geometries; reject what cannot be loaded, list every change, by row."""
    repairs: list[Repair] = []
    if rings_closed is not None:
        repairs += [Repair(int(i) + 1, "ring closed") for i in np.flatnonzero(rings_closed)]
    has = np.array([x is not None for x in geoms], dtype=bool)
    if not has.any():
        return geoms, repairs
    fixed, reasons, _, changes = repair_geometries(geoms[has].astype(object), layer.geometry_type)
    rows = np.arange(1, len(geoms) + 1)[has]
    out = geoms.copy()
    out[has] = fixed
    for i, (reason, change) in enumerate(zip(reasons, changes)):
        if reason is not None:
            rejects.append(Reject(int(rows[i]), reason, "geometry"))
        elif change is not None:
            repairs.append(Repair(int(rows[i]), change))
    return out, sorted(repairs, key=lambda r: r.row_no)


def _keys(frame: pd.DataFrame, geoms: np.ndarray, layer: Layer) -> pd.Series:
    """The stable key: the source's own, else a hash of the identifying fields and the location."""
    given = frame["key"].astype("string") if "key" in frame else pd.Series(pd.NA, index=frame.index,
                                                                           dtype="string")
    if layer.key_from == ("code",) and "code" in frame:
        return frame["code"].astype("string")
    need = given.isna()
    if need.any():
        parts = [frame[c].astype("string").fillna("") if c in frame else pd.Series("", index=frame.index)
                 for c in layer.key_from]
        where = np.full(len(frame), "", dtype=object)
        has = np.array([g is not None for g in geoms], dtype=bool)
        if has.any():
            pts = shapely.point_on_surface(geoms[has].astype(object))
            where[has] = [f"{x:.5f},{y:.5f}" for x, y in shapely.get_coordinates(pts)]
        label = pd.Series(where, index=frame.index)
        for p in parts:
            label = p + "|" + label
        hashed = label[need].map(lambda s: hashlib.sha1(s.encode()).hexdigest()[:16])
        given = given.copy()
        given[need] = f"{layer.name[:2]}-" + hashed
    return given


def _duplicates(keys: pd.Series, rejects: list[Reject]) -> None:
    dup = keys.duplicated(keep="first") & keys.notna()
    if not dup.any():
        return
    first = {k: i for i, k in reversed(list(keys.items()))}
    for row_no in keys.index[dup]:
        rejects.append(Reject(row_no, f"duplicate key {keys[row_no]!r} (first at row {first[keys[row_no]]})",
                              "key"))
