-- 0001: the layer tables, the load audit and the raster registry.
-- Geometries are EPSG:4326.  Each geometry has a GiST index, and the point layers also index
-- geography(geom), the expression metric distance queries (ST_DWithin on geography) use.

CREATE TABLE riskatlas.admin_area (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{6}$'),
    name        text NOT NULL,
    name_en     text,
    level       text NOT NULL CHECK (level IN ('province', 'city', 'county')),
    parent_code text REFERENCES riskatlas.admin_area (code) DEFERRABLE INITIALLY DEFERRED,
    source      text,
    key         text GENERATED ALWAYS AS (code) STORED,
    geom        geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_area_geom_gist ON riskatlas.admin_area USING gist (geom);
CREATE INDEX admin_area_level ON riskatlas.admin_area (level, parent_code);

-- Subdivided copy of the county polygons: point-in-polygon joins against small pieces are
-- orders of magnitude faster than against whole counties with thousands of vertices.
CREATE TABLE riskatlas.admin_piece (
    code  text NOT NULL REFERENCES riskatlas.admin_area (code) ON DELETE CASCADE,
    level text NOT NULL,
    geom  geometry(Polygon, 4326) NOT NULL
);
CREATE INDEX admin_piece_geom_gist ON riskatlas.admin_piece USING gist (geom);

CREATE TABLE riskatlas.load_batch (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer          text NOT NULL,
    file_name      text NOT NULL,
    sha256         text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at    timestamptz,
    loaded_by      text NOT NULL DEFAULT current_user,
    as_city        text,
    status         text NOT NULL CHECK (status IN ('committed', 'partial', 'rejected', 'failed', 'dry-run')),
    rows_in        integer NOT NULL DEFAULT 0,
    rows_inserted  integer NOT NULL DEFAULT 0,
    rows_updated   integer NOT NULL DEFAULT 0,
    rows_unchanged integer NOT NULL DEFAULT 0,
    rows_rejected  integer NOT NULL DEFAULT 0,
    message        text
);

CREATE TABLE riskatlas.load_reject (
    batch_id bigint NOT NULL REFERENCES riskatlas.load_batch (id) ON DELETE CASCADE,
    row_no   integer NOT NULL,
    reason   text NOT NULL,
    field    text,
    record   jsonb,
    PRIMARY KEY (batch_id, row_no, reason)
);

CREATE TABLE riskatlas.risk_source (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text NOT NULL UNIQUE,
    name        text NOT NULL,
    category    text NOT NULL CHECK (category IN ('chemical', 'hazardous-waste', 'tailings',
                  'wastewater-plant', 'oil-and-gas-storage', 'pharmaceutical', 'metal-plating', 'other')),
    industry    text,
    address     text,
    substances  jsonb CHECK (substances IS NULL OR jsonb_typeof(substances) = 'array'),
    contact     text,
    q_value     double precision CHECK (q_value >= 0),
    m_score     integer CHECK (m_score BETWEEN 0 AND 100),
    air_level   text CHECK (air_level IN ('general', 'larger', 'major')),
    water_level text CHECK (water_level IN ('general', 'larger', 'major')),
    risk_level  text CHECK (risk_level IN ('general', 'larger', 'major')),
    grade_label text,
    status      text CHECK (status IN ('active', 'closed', 'under-construction')),
    city_code   text REFERENCES riskatlas.admin_area (code),
    county_code text REFERENCES riskatlas.admin_area (code),
    owner_city  text REFERENCES riskatlas.admin_area (code),
    synthetic   boolean NOT NULL DEFAULT false,
    source      text,
    batch_id    bigint REFERENCES riskatlas.load_batch (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT current_user,
    geom        geometry(Point, 4326) NOT NULL CHECK (NOT ST_IsEmpty(geom))
);

CREATE TABLE riskatlas.water_reserve (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key               text NOT NULL UNIQUE,
    name              text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('river', 'lake-reservoir', 'groundwater')),
    water_body        text,
    size              text CHECK (size IN ('small', 'medium', 'large')),
    population_served integer CHECK (population_served >= 0),
    city_code         text REFERENCES riskatlas.admin_area (code),
    county_code       text REFERENCES riskatlas.admin_area (code),
    owner_city        text REFERENCES riskatlas.admin_area (code),
    synthetic         boolean NOT NULL DEFAULT false,
    source            text,
    batch_id          bigint REFERENCES riskatlas.load_batch (id),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        text NOT NULL DEFAULT current_user,
    geom              geometry(Point, 4326) NOT NULL CHECK (NOT ST_IsEmpty(geom))
);

CREATE TABLE riskatlas.protection_zone (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          text NOT NULL UNIQUE,
    reserve_key  text NOT NULL,
    name         text,
    level        text NOT NULL CHECK (level IN ('1', '2', 'quasi')),
    derived_zone boolean NOT NULL DEFAULT false,
    city_code    text REFERENCES riskatlas.admin_area (code),
    county_code  text REFERENCES riskatlas.admin_area (code),
    owner_city   text REFERENCES riskatlas.admin_area (code),
    synthetic    boolean NOT NULL DEFAULT false,
    source       text,
    batch_id     bigint REFERENCES riskatlas.load_batch (id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text NOT NULL DEFAULT current_user,
    geom         geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))
);

CREATE TABLE riskatlas.protected_area (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text NOT NULL UNIQUE,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('nature-reserve', 'ecological-red-line', 'wetland',
                  'forest-park', 'scenic')),
    rank        text CHECK (rank IN ('national', 'provincial', 'municipal')),
    city_code   text REFERENCES riskatlas.admin_area (code),
    county_code text REFERENCES riskatlas.admin_area (code),
    owner_city  text REFERENCES riskatlas.admin_area (code),
    synthetic   boolean NOT NULL DEFAULT false,
    source      text,
    batch_id    bigint REFERENCES riskatlas.load_batch (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT current_user,
    geom        geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))
);

CREATE TABLE riskatlas.river (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text NOT NULL UNIQUE,
    name        text NOT NULL,
    river_class text NOT NULL CHECK (river_class IN ('yangtze-main', 'major', 'minor', 'canal')),
    from_node   bigint,
    to_node     bigint,
    velocity_ms double precision CHECK (velocity_ms >= 0),
    flow_m3s    double precision CHECK (flow_m3s >= 0),
    width_m     double precision CHECK (width_m >= 0),
    depth_m     double precision CHECK (depth_m >= 0),
    slope       double precision CHECK (slope >= 0),
    city_code   text REFERENCES riskatlas.admin_area (code),
    county_code text REFERENCES riskatlas.admin_area (code),
    owner_city  text REFERENCES riskatlas.admin_area (code),
    synthetic   boolean NOT NULL DEFAULT false,
    source      text,
    batch_id    bigint REFERENCES riskatlas.load_batch (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT current_user,
    geom        geometry(LineString, 4326) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))
);
CREATE INDEX river_from_node ON riskatlas.river (from_node);
CREATE INDEX river_to_node ON riskatlas.river (to_node);

CREATE TABLE riskatlas.monitoring_station (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          text NOT NULL UNIQUE,
    name         text NOT NULL,
    medium       text NOT NULL CHECK (medium IN ('air', 'water')),
    kind         text NOT NULL CHECK (kind IN ('air-quality', 'national-section', 'cross-border-section',
                   'automatic-water')),
    target_class text CHECK (target_class IN ('I', 'II', 'III', 'IV', 'V')),
    city_code    text REFERENCES riskatlas.admin_area (code),
    county_code  text REFERENCES riskatlas.admin_area (code),
    owner_city   text REFERENCES riskatlas.admin_area (code),
    synthetic    boolean NOT NULL DEFAULT false,
    source       text,
    batch_id     bigint REFERENCES riskatlas.load_batch (id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text NOT NULL DEFAULT current_user,
    geom         geometry(Point, 4326) NOT NULL CHECK (NOT ST_IsEmpty(geom))
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['risk_source', 'water_reserve', 'protection_zone', 'protected_area',
                             'river', 'monitoring_station'] LOOP
        EXECUTE format('CREATE INDEX %1$s_geom_gist ON riskatlas.%1$s USING gist (geom)', t);
        EXECUTE format('CREATE INDEX %1$s_city ON riskatlas.%1$s (city_code)', t);
        EXECUTE format('CREATE INDEX %1$s_owner ON riskatlas.%1$s (owner_city)', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['risk_source', 'water_reserve', 'monitoring_station'] LOOP
        EXECUTE format('CREATE INDEX %1$s_geog_gist ON riskatlas.%1$s USING gist ((geom::geography))', t);
    END LOOP;
END $$;
CREATE INDEX risk_source_level ON riskatlas.risk_source (risk_level, category);

CREATE TABLE riskatlas.raster_layer (
    name        text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('population', 'land-use')),
    title       text NOT NULL,
    path        text NOT NULL,
    crs         text NOT NULL,
    width       integer NOT NULL,
    height      integer NOT NULL,
    unit        text,
    sha256      text NOT NULL,
    synthetic   boolean NOT NULL DEFAULT false,
    source      text,
    batch_id    bigint REFERENCES riskatlas.load_batch (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    footprint   geometry(Polygon, 4326) NOT NULL
);
CREATE INDEX raster_layer_footprint_gist ON riskatlas.raster_layer USING gist (footprint);

-- The metadata of the data set as a whole (synthetic flag, credits), shown by the API and the UI.
CREATE TABLE riskatlas.dataset_info (
    name  text PRIMARY KEY,
    value jsonb NOT NULL
);
