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

from psycopg import sql

FieldType = Literal["text", "int", "float", "bool", "date", "timestamp", "json"]
GeometryType = Literal["Point", "LineString", "MultiPolygon"]

SCHEMA = "riskatlas"
#: The schema as an identifier, for SQL composed with ``psycopg.sql`` (``{schema}.river``).
SCHEMA_SQL = sql.Identifier(SCHEMA)


def relation(name: str) -> sql.Composed:
    """``riskatlas.<name>`` (a table, view or function of the schema), quoted for ``psycopg.sql``."""
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))

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



@dataclass(frozen=True)
class Label:
    """A domain value's name in Chinese (first: bureaus and the public read it) and in English."""

    zh: str
    en: str


def labelled(values: dict[str, tuple[str, str]]) -> dict[str, Label]:
    """A labelled domain, in order: stored value -> (Chinese, English)."""
    return {v: Label(zh, en) for v, (zh, en) in values.items()}


#: HJ 941-2018 levels (一般/较大/重大), stored in English.
RISK_LEVEL_LABELS = labelled({"general": ("一般", "general"), "larger": ("较大", "larger"), "major": ("重大", "major")})
RISK_LEVELS = tuple(RISK_LEVEL_LABELS)
RISK_LEVEL_ZH = {v: lab.zh for v, lab in RISK_LEVEL_LABELS.items()}
#: HJ 941-2018 bands of Q: Q0 (Q < 1, graded general directly), Q1 [1, 10), Q2 [10, 100), Q3 >= 100.
Q_BAND_LABELS = labelled({
    "Q0": ("Q0（Q<1）", "Q0 (Q < 1)"), "Q1": ("Q1（1≤Q<10）", "Q1 (1 ≤ Q < 10)"),
    "Q2": ("Q2（10≤Q<100）", "Q2 (10 ≤ Q < 100)"), "Q3": ("Q3（Q≥100）", "Q3 (Q ≥ 100)")})
Q_BANDS = tuple(Q_BAND_LABELS)
#: HJ 338-2018 zone levels of a drinking-water source.
ZONE_LEVEL_LABELS = labelled({"1": ("一级保护区", "level 1 zone"), "2": ("二级保护区", "level 2 zone"),
                              "quasi": ("准保护区", "quasi zone")})
#: The domains of the derived hazard_flag table (services.hazards), named here so that the maps and the
#: analyses read one vocabulary.
FLAG_KIND_LABELS = labelled({
    "city-border": ("邻近市界", "near a city border"), "province-border": ("邻近省界", "near a province border"),
    "upstream": ("位于他市上游", "upstream of another city"), "protection-zone": ("水源保护区", "protection zone"),
    "protected-area": ("生态保护区域", "protected area")})
SEVERITY_LABELS = labelled({"high": ("高", "high"), "medium": ("中", "medium"), "low": ("低", "low")})
#: What the stored levels of a risk source are: graded, or waiting for an M score (HJ 941 needs M
#: for a medium whose Q is at least 1; until then the label shows M? and the levels M could give).
GRADE_STATUS_LABELS = labelled({"graded": ("已分级", "graded"),
                                "pending-m": ("待评M值（Q、E已评，等级为M可能给出的范围）",
                                              "pending M (Q and E graded; the level is the range M could give)")})
GRADE_STATUSES = tuple(GRADE_STATUS_LABELS)


@dataclass(frozen=True)
class Field:
    """One attribute of a layer as clients see it."""

    name: str
    type: FieldType = "text"
    title: str = ""
    title_zh: str = ""
    required: bool = False
    # The allowed values; a labelled domain (value -> Label) also gives each value its zh/en names.
    domain: tuple[str, ...] | dict[str, Label] | None = None
    restricted: bool = False  # hidden from roles below analyst (quantities and what they follow from, contacts)
    derived: bool = False  # computed by riskatlas, never taken from input files
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None

    labels: tuple[tuple[str, Label], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.domain, dict):  # a labelled domain: keep the values as the domain, the names apart
            object.__setattr__(self, "labels", tuple(self.domain.items()))
            object.__setattr__(self, "domain", tuple(self.domain))

    def label(self, value: str) -> Label | None:
        """The zh/en names of one domain value, if the domain is labelled."""
        return dict(self.labels).get(value)

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
    id_field: str = "key"  # the column whose value is a feature's id (OGC items, tiles, map popups)
    # How a load writes the layer: "rows" upserts by key; "boundaries" upserts by code and rebuilds
    # the subdivided pieces (admin_piece) that point-in-polygon and the border analyses use.
    load_as: Literal["rows", "boundaries"] = "rows"
    network: bool = False  # reaches form a network: from/to nodes are derived from their end points
    draw_order: int = 0  # maps draw layers from low to high: areas, lines, then points
    # Derived products a load of this layer makes stale (services.after_load recomputes them):
    # "own-grades" the grades of the loaded sources, "all-grades" every grade, "flags" hazard flags.
    invalidates: tuple[Literal["own-grades", "all-grades", "flags"], ...] = ()

    @property
    def table(self) -> str:
        """Qualified table name as text (for messages and regclass lookups); compose SQL with :attr:`relation`."""
        return f"{SCHEMA}.{self.name}"

    @property
    def relation(self) -> sql.Composed:
        """The layer's table, quoted, for SQL composed with ``psycopg.sql``."""
        return relation(self.name)

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


RISK_CATEGORY_LABELS = labelled({
    "chemical": ("化工", "chemical"), "hazardous-waste": ("危险废物", "hazardous waste"),
    "tailings": ("尾矿库", "tailings"), "wastewater-plant": ("污水处理厂", "wastewater plant"),
    "oil-and-gas-storage": ("油气储存", "oil and gas storage"), "pharmaceutical": ("制药", "pharmaceutical"),
    "metal-plating": ("电镀", "metal plating"), "other": ("其他", "other")})
RISK_CATEGORIES = tuple(RISK_CATEGORY_LABELS)

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
              domain=labelled({"province": ("省", "province"), "city": ("市", "city"), "county": ("区县", "county")})),
        Field("parent_code", title="Parent code", title_zh="上级代码"),
        Field("source", title="Source", title_zh="数据来源"),
    ),
    style=Style(color="#444444", fill=None, weight=1.2, fill_opacity=0.0),
    key_from=("code",),
    owned=False,
    jurisdiction=False,
    inventory=False,
    id_field="code",
    load_as="boundaries",
    draw_order=0,
    invalidates=("all-grades", "flags"),
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
        Field("category", title="Category", title_zh="类别", required=True, domain=RISK_CATEGORY_LABELS),
        Field("industry", title="Industry", title_zh="行业"),
        Field("address", title="Address", title_zh="地址"),
        Field("substances", "json", title="Substances (name, cas, quantity_t)", title_zh="风险物质",
              restricted=True),
        Field("contact", title="Contact", title_zh="联系人", restricted=True),
        # Q times a critical quantity gives the tonnage of a one-substance site: Q is restricted like
        # the quantities, and the public sees its HJ 941 band (DESIGN 9; migration 0006).
        Field("q_value", "float", title="Q (HJ 941)", title_zh="Q值", minimum=0, restricted=True),
        Field("q_band", title="Q band (HJ 941)", title_zh="Q值区间", domain=Q_BAND_LABELS, derived=True),
        # HJ 941-2018 scores M for air (§6.2) and for water (§7.2); a file with one M (m_score) has it
        # used for both media, and the grade says so (migration 0007).
        Field("m_score", "int", title="M score, one for both media (HJ 941)", title_zh="M值（两要素共用）",
              minimum=0, maximum=100),
        Field("m_air", "int", title="M score, air (HJ 941 §6.2)", title_zh="大气M值", minimum=0, maximum=100),
        Field("m_water", "int", title="M score, water (HJ 941 §7.2)", title_zh="水M值", minimum=0, maximum=100),
        Field("air_level", title="Air risk level", title_zh="大气风险等级", domain=RISK_LEVEL_LABELS),
        Field("water_level", title="Water risk level", title_zh="水风险等级", domain=RISK_LEVEL_LABELS),
        Field("risk_level", title="Risk level", title_zh="风险等级", domain=RISK_LEVEL_LABELS),
        Field("grade_label", title="Grade label (HJ 941)", title_zh="分级表征"),
        # 'pending-m': Q and E are graded but a medium with Q >= 1 has no M; the label shows the levels
        # M could give, and stewards list these sources (riskatlas grade --pending, or this filter).
        Field("grade_status", title="Grade status", title_zh="分级状态", domain=GRADE_STATUS_LABELS, derived=True),
        Field("status", title="Status", title_zh="状态",
              domain=labelled({"active": ("在产", "active"), "closed": ("关停", "closed"),
                               "under-construction": ("在建", "under construction")})),
    ),
    style=Style(
        color="#b2182b", radius=5, color_by="risk_level",
        palette={"major": "#b2182b", "larger": "#ef8a62", "general": "#fddbc7"},
    ),
    key_from=("name",),
    draw_order=6,
    invalidates=("own-grades", "flags"),
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
              domain=labelled({"river": ("河流型", "river"), "lake-reservoir": ("湖库型", "lake or reservoir"),
                               "groundwater": ("地下水型", "groundwater")})),
        Field("water_body", title="Water body", title_zh="所在水体"),
        Field("size", title="Lake/reservoir size", title_zh="湖库规模",
              domain=labelled({"small": ("小型", "small"), "medium": ("中型", "medium"), "large": ("大型", "large")})),
        Field("population_served", "int", title="Population served", title_zh="服务人口", minimum=0),
        # HJ 338-2018 size classes (layers/data/hj338_protection_zones.yaml, size_classes): a reservoir
        # is classed by its total storage, a lake by its area; medium reservoirs follow the small rule
        Field("water_body_type", title="Lake or reservoir", title_zh="湖库类别",
              domain=labelled({"lake": ("湖泊", "lake"), "reservoir": ("水库", "reservoir")})),
        Field("storage_1e8_m3", "float", title="Total storage", title_zh="总库容", unit="1e8 m3", minimum=0),
        Field("area_km2", "float", title="Water area", title_zh="水面面积", unit="km2", minimum=0),
        # groundwater sources (wells): HJ 338-2018 groundwater zones by aquifer and yield
        Field("aquifer", title="Aquifer", title_zh="含水层类型",
              domain=labelled({"porous": ("孔隙水", "porous"), "fissure": ("裂隙水", "fissure"), "karst": ("岩溶水", "karst")})),
        Field("confinement", title="Confinement", title_zh="地下水埋藏条件",
              domain=labelled({"phreatic": ("潜水", "phreatic"), "confined": ("承压水", "confined")})),
        Field("aquifer_medium", title="Aquifer medium", title_zh="含水层介质",
              domain=labelled({"fine-sand": ("细砂", "fine sand"), "medium-sand": ("中砂", "medium sand"),
                               "coarse-sand": ("粗砂", "coarse sand"), "gravel": ("砾石", "gravel"),
                               "pebble": ("卵石", "pebble")})),
        Field("yield_m3_per_day", "float", title="Yield", title_zh="日开采量", unit="m3/d", minimum=0),
        Field("k_m_per_day", "float", title="Hydraulic conductivity", title_zh="渗透系数", unit="m/d", minimum=0),
        Field("hydraulic_gradient", "float", title="Hydraulic gradient", title_zh="水力坡度", minimum=0),
        Field("effective_porosity", "float", title="Effective porosity", title_zh="有效孔隙度", minimum=0,
              maximum=1),
    ),
    style=Style(color="#2166ac", radius=6),
    draw_order=5,
    invalidates=("all-grades",),
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
        Field("level", title="Zone level", title_zh="保护区级别", required=True, domain=ZONE_LEVEL_LABELS),
        Field("derived_zone", "bool", title="Derived per HJ 338", title_zh="按HJ 338推导"),
    ),
    style=Style(
        color="#2166ac", fill="#67a9cf", fill_opacity=0.35, color_by="level",
        palette={"1": "#2166ac", "2": "#67a9cf", "quasi": "#d1e5f0"},
    ),
    key_from=("reserve_key", "level"),
    draw_order=2,
    invalidates=("all-grades", "flags"),
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
              domain=labelled({"nature-reserve": ("自然保护区", "nature reserve"),
                               "ecological-red-line": ("生态保护红线", "ecological red line"), "wetland": ("湿地", "wetland"),
                               "forest-park": ("森林公园", "forest park"), "scenic": ("风景名胜区", "scenic area")})),
        Field("rank", title="Rank", title_zh="级别",
              domain=labelled({"national": ("国家级", "national"), "provincial": ("省级", "provincial"),
                               "municipal": ("市级", "municipal")})),
    ),
    style=Style(color="#1b7837", fill="#7fbf7b", fill_opacity=0.3),
    draw_order=1,
    invalidates=("all-grades", "flags"),
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
              domain=labelled({"yangtze-main": ("长江干流", "Yangtze main stem"), "major": ("主要河流", "major river"),
                               "minor": ("支流", "tributary"), "canal": ("运河", "canal")})),
        Field("from_node", "int", title="From node", title_zh="起点节点", derived=True),
        Field("to_node", "int", title="To node", title_zh="终点节点", derived=True),
        Field("velocity_ms", "float", title="Mean velocity", title_zh="平均流速", unit="m/s", minimum=0),
        Field("flow_m3s", "float", title="Flow", title_zh="流量", unit="m3/s", minimum=0),
        Field("width_m", "float", title="Width", title_zh="河宽", unit="m", minimum=0),
        Field("depth_m", "float", title="Depth", title_zh="水深", unit="m", minimum=0),
        Field("slope", "float", title="Slope", title_zh="比降", unit="m/m", minimum=0),
        Field("dispersion_m2_s", "float", title="Measured longitudinal dispersion", title_zh="实测纵向离散系数",
              unit="m2/s", minimum=0),
    ),
    style=Style(color="#4393c3", weight=2.0),
    key_from=("name",),
    network=True,
    draw_order=3,
    invalidates=("all-grades", "flags"),
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
        Field("medium", title="Medium", title_zh="介质", required=True,
              domain=labelled({"air": ("大气", "air"), "water": ("水", "water")})),
        Field("kind", title="Kind", title_zh="类型", required=True,
              domain=labelled({"air-quality": ("空气质量站", "air-quality station"),
                               "national-section": ("国控断面", "national section"),
                               "cross-border-section": ("跨界断面", "cross-border section"),
                               "automatic-water": ("水质自动站", "automatic water station")})),
        Field("target_class", title="Target water class (GB 3838)", title_zh="目标水质类别",
              domain=labelled({c: (f"{z}类", f"class {c}") for c, z in
                               (("I", "Ⅰ"), ("II", "Ⅱ"), ("III", "Ⅲ"), ("IV", "Ⅳ"), ("V", "Ⅴ"))})),
    ),
    style=Style(color="#762a83", radius=4),
    draw_order=4,
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

#: The boundaries cut into small pieces (ST_Subdivide), rebuilt by every boundary load: point-in-polygon
#: and the border analyses use them instead of whole polygons of tens of thousands of vertices.
BOUNDARY_PIECES = "admin_piece"


@dataclass(frozen=True)
class BinGrid:
    """Counts of a point layer per bin cell, kept by the database: a row per cell of each zoom up to
    ``max_zoom`` and per value of each of ``fields``, with its count ``n``.  Every row of the layer with a
    position within Web Mercator's latitudes (``MERCATOR_MAX_LAT``) is counted once in each zoom."""

    table: str
    fields: tuple[str, ...]
    max_zoom: int


#: The layers whose bins are kept per cell (migration 0020; ``max_zoom`` is its
#: ``risk_source_grid_max_zoom()``).
BIN_GRIDS = {"risk_source": BinGrid("risk_source_grid", ("city_code", "category", "risk_level"), 8)}

#: The latitude limit of Web Mercator, and of the bin grids' cells.
MERCATOR_MAX_LAT = 85.0511287798066

#: Layer names in drawing order, bottom to top (``Layer.draw_order``).
DRAW_ORDER: tuple[str, ...] = tuple(sorted(LAYERS, key=lambda n: (LAYERS[n].draw_order, n)))

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
