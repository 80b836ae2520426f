"""Declarative mapping from a source's columns and values to a layer's fields.

A mapping is a YAML file::

    layer: risk_source          # optional: checked against --layer
    crs: gcj02                  # CRS of the coordinates when the file does not say
    encoding: gb18030           # CSV only; detected when absent
    x: 经度                      # CSV coordinate columns, or
    wkt: WKT                    # a WKT column
    key: 企业编码                 # column holding the stable key
    columns: {企业名称: name, 类别: category, M值: m_score}
    values: {category: {化工: chemical}, status: {运行: active}}
    units: {population_served: 10000}   # factor applied to numeric fields (万人 -> persons)
    substances:                 # risk sources: ';'-separated parallel columns
      name: 风险物质
      cas: CAS号
      quantity: 最大存在量(kg)
      unit: kg                  # kg or t
    claimed_city: 行政区划代码     # a code the file states; compared with the derived one
    defaults: {synthetic: true}

Columns whose names already equal a field name are taken as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from etl.errors import InputError
from layers.catalogue import Layer

BUILTIN = Path(__file__).with_name("mappings")
UNIT_FACTORS = {"kg": 0.001, "t": 1.0, "tonne": 1.0, "吨": 1.0, "千克": 0.001}


@dataclass(frozen=True)
class Mapping:
    """How one source's columns become a layer's fields."""

    name: str = "identity"
    layer: str | None = None
    crs: str | None = None
    encoding: str | None = None
    x: str | None = None
    y: str | None = None
    wkt: str | None = None
    key: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)
    substances: dict[str, str] | None = None
    claimed_city: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)

    def check(self, layer: Layer) -> None:
        """Raise when the mapping targets another layer or names fields the layer lacks."""
        if self.layer and self.layer != layer.name:
            raise InputError(f"mapping {self.name!r} is for layer {self.layer!r}, not {layer.name!r}")
        known = set(layer.field_names)
        for target in [*self.columns.values(), *self.values, *self.units, *self.defaults]:
            if target not in known:
                raise InputError(f"mapping {self.name!r} names field {target!r}, which layer "
                                 f"{layer.name!r} does not have; its fields are {sorted(known)}")
        if self.substances is not None:
            if "substances" not in known:
                raise InputError(f"mapping {self.name!r} maps substances, which layer {layer.name!r} lacks")
            unit = self.substances.get("unit", "t")
            if unit not in UNIT_FACTORS:
                raise InputError(f"mapping {self.name!r}: substance unit was {unit!r} but is expected "
                                 f"to be one of {sorted(UNIT_FACTORS)}")


def load_mapping(spec: str | Path | None) -> Mapping:
    """A mapping from a YAML path or the name of a built-in one; identity when ``spec`` is None."""
    if spec is None:
        return Mapping()
    path = Path(spec)
    if not path.exists():
        builtin = BUILTIN / f"{spec}.yaml"
        if not builtin.exists():
            names = sorted(p.stem for p in BUILTIN.glob("*.yaml"))
            raise InputError(f"mapping {spec!r} is neither a file nor a built-in mapping {names}")
        path = builtin
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"mapping {path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(f"mapping {path}: expected a mapping of settings at the top level")
    allowed = set(Mapping.__dataclass_fields__) - {"name"}
    unknown = set(doc) - allowed
    if unknown:
        raise InputError(f"mapping {path}: unknown settings {sorted(unknown)}; allowed are {sorted(allowed)}")
    return Mapping(name=path.stem, **doc)
