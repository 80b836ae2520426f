"""The layer catalogue: one declaration per layer.

The catalogue drives the OGC collections, the tile layers, field filtering by role, the ETL's
validation and the map styling.  The PostgreSQL schema itself lives in versioned migrations
(``layers/migrations``); ``tests/layers/test_migrations.py`` checks that every catalogue field exists
as a column of the declared type and that the database refuses values outside a field's domain, so
the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal["text", "int", "float", "bool", "date", "timestamp", "json"]
GeometryType = Literal["Point", "LineString", "MultiPolygon"]

SCHEMA = "riskatlas"

#: The PostgreSQL type of each field type: the one place this map is written (the ETL's staging
#: tables, the query kit's casts and ``layers.tables`` derive theirs from it).
SQL_TYPES: dict[FieldType, str] = {
    "text": "text",
    "int": "bigint",
    "float": "double precision",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
    "json": "jsonb",
}
#: Every geometry column is stored in WGS84.
SRID = 4326

RISK_LEVELS = ("general", "larger", "major")
#: HJ 941-2018 bands of Q: Q0 (Q < 1, graded general directly), Q1 [1, 10), Q2 [10, 100), Q3 >= 100.
Q_BANDS = ("Q0", "Q1", "Q2", "Q3")
RISK_LEVEL_ZH = {"general": "一般", "larger": "较大", "major": "重大"}
#: What the stored levels of a risk source are: graded, or waiting for an M score (HJ 941 needs M
#: for a medium whose Q is at least 1).
GRADE_STATUSES = ("graded", "pending-m")


@dataclass(frozen=True)
class Field:
    """One attribute of a layer as clients see it."""

    name: str
    type: FieldType = "text"
    title: str = ""
    title_zh: str = ""
    required: bool = False
    domain: tuple[str, ...] | None = None
    restricted: bool = False  # hidden from roles below analyst (quantities and what they follow from, contacts)
    derived: bool = False  # computed by riskatlas, never taken from input files
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def sql_type(self) -> str:
        """The PostgreSQL type of the column (``SQL_TYPES``)."""
        return SQL_TYPES[self.type]


@dataclass(frozen=True)
class Style:
    """Default cartography, shared by the web viewer and the folium maps."""

    color: str
    fill: str | None = None
    weight: float = 1.5
    radius: float = 5.0
    opacity: float = 0.9
    fill_opacity: float = 0.3
    color_by: str | None = None
    palette: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Layer:
    """A vector layer stored in PostGIS."""

    name: str
    title: str
    title_zh: str
    description: str
    geometry_type: GeometryType
    fields: tuple[Field, ...]
    style: Style
    key_from: tuple[str, ...] = ("name",)  # fields hashed with the location when no key is given
    owned: bool = True  # rows carry owner_city and are writable by that city's steward only
    jurisdiction: bool = True  # city_code / county_code derived by point-in-polygon
    inventory: bool = True  # loaded through the ETL, history kept

    @property
    def table(self) -> str:
        """Qualified table name, safe to interpolate (it comes from this module only)."""
        return f"{SCHEMA}.{self.name}"

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def public_fields(self, may_see_restricted: bool) -> tuple[Field, ...]:
        """Fields visible to a role; restricted ones only when allowed."""
        return tuple(f for f in self.fields if may_see_restricted or not f.restricted)

    @property
    def input_fields(self) -> tuple[Field, ...]:
        """Fields an input file may supply."""
        return tuple(f for f in self.fields if not f.derived)


def _common(owned: bool = True, jurisdiction: bool = True) -> tuple[Field, ...]:
    out: list[Field] = [Field("key", title="Stable key", title_zh="编码")]
    if jurisdiction:
        out += [
            Field("city_code", title="City code", title_zh="所在市", derived=True),
            Field("county_code", title="County code", title_zh="所在区县", derived=True),
        ]
    if owned:
        out.append(Field("owner_city", title="Owner city", title_zh="管理城市"))
    out += [
        Field("synthetic", "bool", title="Synthetic record", title_zh="合成数据"),
        Field("source", title="Source", title_zh="数据来源"),
    ]
    return tuple(out)


RISK_CATEGORIES = (
    "chemical",
    "hazardous-waste",
    "tailings",
    "wastewater-plant",
    "oil-and-gas-storage",
    "pharmaceutical",
    "metal-plating",
    "other",
)

ADMIN_AREA = Layer(
    name="admin_area",
    title="Administrative areas",
    title_zh="行政区划",
    description="Province, city and county boundaries (GB/T 2260 codes).",
    geometry_type="MultiPolygon",
    fields=(
        Field("code", title="Code (GB/T 2260)", title_zh="行政区划代码", required=True),
        Field("name", title="Name", title_zh="名称", required=True),
        Field("name_en", title="English name", title_zh="英文名"),
        Field("level", title="Level", title_zh="级别", required=True,
              domain=("province", "city", "county")),
        Field("parent_code", title="Parent code", title_zh="上级代码"),
        Field("source", title="Source", title_zh="数据来源"),
    ),
    style=Style(color="#444444", fill=None, weight=1.2, fill_opacity=0.0),
    key_from=("code",),
    owned=False,
    jurisdiction=False,
    inventory=False,
)

RISK_SOURCE = Layer(
    name="risk_source",
    title="Environmental risk sources",
    title_zh="环境风险源",
    description="Enterprises with environmental emergency risk, graded per HJ 941-2018.",
    geometry_type="Point",
    fields=_common()
    + (
        Field("name", title="Name", title_zh="企业名称", required=True),
        Field("category", title="Category", title_zh="类别", required=True, domain=RISK_CATEGORIES),
        Field("industry", title="Industry", title_zh="行业"),
        Field("address", title="Address", title_zh="地址"),
        Field("substances", "json", title="Substances (name, cas, quantity_t)", title_zh="风险物质",
              restricted=True),
        Field("contact", title="Contact", title_zh="联系人", restricted=True),
        # Q times a critical quantity gives the tonnage of a one-substance site: Q is restricted like
        # the quantities, and the public sees its HJ 941 band (DESIGN 9; migration 0006).
        Field("q_value", "float", title="Q (HJ 941)", title_zh="Q值", minimum=0, restricted=True),
        Field("q_band", title="Q band (HJ 941)", title_zh="Q值区间", domain=Q_BANDS, derived=True),
        # HJ 941-2018 scores M for air (§6.2) and for water (§7.2); a file with one M (m_score) has it
        # used for both media, and the grade says so (migration 0007).
        Field("m_score", "int", title="M score, one for both media (HJ 941)", title_zh="M值（两要素共用）",
              minimum=0, maximum=100),
        Field("m_air", "int", title="M score, air (HJ 941 §6.2)", title_zh="大气M值", minimum=0, maximum=100),
        Field("m_water", "int", title="M score, water (HJ 941 §7.2)", title_zh="水M值", minimum=0, maximum=100),
        Field("air_level", title="Air risk level", title_zh="大气风险等级", domain=RISK_LEVELS),
        Field("water_level", title="Water risk level", title_zh="水风险等级", domain=RISK_LEVELS),
        Field("risk_level", title="Risk level", title_zh="风险等级", domain=RISK_LEVELS),
        Field("grade_label", title="Grade label (HJ 941)", title_zh="分级表征"),
        # 'pending-m': Q and E are graded but a medium with Q >= 1 has no M; the label shows the levels
        # M could give, and stewards list these sources (riskatlas grade --pending, or this filter).
        Field("grade_status", title="Grade status", title_zh="分级状态", domain=GRADE_STATUSES, derived=True),
        Field("status", title="Status", title_zh="状态",
              domain=("active", "closed", "under-construction")),
    ),
    style=Style(
        color="#b2182b", radius=5, color_by="risk_level",
        palette={"major": "#b2182b", "larger": "#ef8a62", "general": "#fddbc7"},
    ),
    key_from=("name",),
)

WATER_RESERVE = Layer(
    name="water_reserve",
    title="Drinking-water sources",
    title_zh="饮用水水源地",
    description="Drinking-water sources; the geometry is the intake point.",
    geometry_type="Point",
    fields=_common()
    + (
        Field("name", title="Name", title_zh="水源地名称", required=True),
        Field("kind", title="Kind", title_zh="类型", required=True,
              domain=("river", "lake-reservoir", "groundwater")),
        Field("water_body", title="Water body", title_zh="所在水体"),
        Field("size", title="Lake/reservoir size", title_zh="湖库规模", domain=("small", "medium", "large")),
        Field("population_served", "int", title="Population served", title_zh="服务人口", minimum=0),
    ),
    style=Style(color="#2166ac", radius=6),
)

PROTECTION_ZONE = Layer(
    name="protection_zone",
    title="Drinking-water protection zones",
    title_zh="饮用水水源保护区",
    description="Level 1, level 2 and quasi protection zones (HJ 338-2018).",
    geometry_type="MultiPolygon",
    fields=_common()
    + (
        Field("reserve_key", title="Water source key", title_zh="水源地编码", required=True),
        Field("name", title="Name", title_zh="名称"),
        Field("level", title="Zone level", title_zh="保护区级别", required=True, domain=("1", "2", "quasi")),
        Field("derived_zone", "bool", title="Derived per HJ 338", title_zh="按HJ 338推导"),
    ),
    style=Style(
        color="#2166ac", fill="#67a9cf", fill_opacity=0.35, color_by="level",
        palette={"1": "#2166ac", "2": "#67a9cf", "quasi": "#d1e5f0"},
    ),
    key_from=("reserve_key", "level"),
)

PROTECTED_AREA = Layer(
    name="protected_area",
    title="Protected areas",
    title_zh="生态保护区域",
    description="Nature reserves, ecological red lines, wetlands, forest parks and scenic areas.",
    geometry_type="MultiPolygon",
    fields=_common()
    + (
        Field("name", title="Name", title_zh="名称", required=True),
        Field("kind", title="Kind", title_zh="类型", required=True,
              domain=("nature-reserve", "ecological-red-line", "wetland", "forest-park", "scenic")),
        Field("rank", title="Rank", title_zh="级别", domain=("national", "provincial", "municipal")),
    ),
    style=Style(color="#1b7837", fill="#7fbf7b", fill_opacity=0.3),
)

RIVER = Layer(
    name="river",
    title="River reaches",
    title_zh="河流河段",
    description="River network; each reach is digitised in flow direction.",
    geometry_type="LineString",
    fields=_common()
    + (
        Field("name", title="Name", title_zh="河流名称", required=True),
        Field("river_class", title="River class", title_zh="河流等级", required=True,
              domain=("yangtze-main", "major", "minor", "canal")),
        Field("from_node", "int", title="From node", title_zh="起点节点", derived=True),
        Field("to_node", "int", title="To node", title_zh="终点节点", derived=True),
        Field("velocity_ms", "float", title="Mean velocity", title_zh="平均流速", unit="m/s", minimum=0),
        Field("flow_m3s", "float", title="Flow", title_zh="流量", unit="m3/s", minimum=0),
        Field("width_m", "float", title="Width", title_zh="河宽", unit="m", minimum=0),
        Field("depth_m", "float", title="Depth", title_zh="水深", unit="m", minimum=0),
        Field("slope", "float", title="Slope", title_zh="比降", unit="m/m", minimum=0),
    ),
    style=Style(color="#4393c3", weight=2.0),
    key_from=("name",),
)

MONITORING_STATION = Layer(
    name="monitoring_station",
    title="Monitoring stations",
    title_zh="监测站点",
    description="Air-quality stations, national and cross-border water sections, automatic stations.",
    geometry_type="Point",
    fields=_common()
    + (
        Field("name", title="Name", title_zh="站点名称", required=True),
        Field("medium", title="Medium", title_zh="介质", required=True, domain=("air", "water")),
        Field("kind", title="Kind", title_zh="类型", required=True,
              domain=("air-quality", "national-section", "cross-border-section", "automatic-water")),
        Field("target_class", title="Target water class (GB 3838)", title_zh="目标水质类别",
              domain=("I", "II", "III", "IV", "V")),
    ),
    style=Style(color="#762a83", radius=4),
)

LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        ADMIN_AREA,
        RISK_SOURCE,
        WATER_RESERVE,
        PROTECTION_ZONE,
        PROTECTED_AREA,
        RIVER,
        MONITORING_STATION,
    )
}

RASTER_KINDS = ("population", "land-use")


class UnknownLayer(KeyError):
    """A layer name that is not in the catalogue."""


def get_layer(name: str) -> Layer:
    """Return the layer called ``name`` or raise ``UnknownLayer`` naming the allowed ones."""
    try:
        return LAYERS[name]
    except KeyError:
        raise UnknownLayer(
            f"layer was {name!r} but is expected to be one of {sorted(LAYERS)}"
        ) from None
