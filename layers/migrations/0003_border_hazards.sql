-- 0003: derived neighbour relations and shared border lines of the administrative areas, and the
-- border-zone hazard flags of the risk sources (DESIGN 3, 5; issue 4).
-- Everything here is derived by services.hazards from the layer tables: nothing is typed in.  The
-- metric-distance joins use ST_DWithin(geom::geography, ...), so each table they probe carries a GiST
-- index on that expression (a cast the index does not match would fall back to a scan).

-- Pairs of areas of the same level whose boundaries meet within the snapping tolerance.
CREATE TABLE riskatlas.admin_neighbour (
    level       text NOT NULL CHECK (level IN ('province', 'city', 'county')),
    code_a      text NOT NULL REFERENCES riskatlas.admin_area (code) ON DELETE CASCADE,
    code_b      text NOT NULL REFERENCES riskatlas.admin_area (code) ON DELETE CASCADE,
    shared_m    double precision NOT NULL CHECK (shared_m >= 0),  -- mean of the two sides, geodesic m
    tolerance_m double precision NOT NULL CHECK (tolerance_m >= 0),
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code_a, code_b),
    CHECK (code_a < code_b)
);
CREATE INDEX admin_neighbour_level ON riskatlas.admin_neighbour (level);

-- The shared border seen from one side: the part of `code`'s boundary lying within the tolerance of
-- `other_code`.  Both directions are stored; a source in `code` is measured to this line.
CREATE TABLE riskatlas.admin_border (
    level       text NOT NULL CHECK (level IN ('province', 'city', 'county')),
    code        text NOT NULL REFERENCES riskatlas.admin_area (code) ON DELETE CASCADE,
    other_code  text NOT NULL REFERENCES riskatlas.admin_area (code) ON DELETE CASCADE,
    length_m    double precision NOT NULL CHECK (length_m >= 0),
    tolerance_m double precision NOT NULL CHECK (tolerance_m >= 0),
    computed_at timestamptz NOT NULL DEFAULT now(),
    geom        geometry(MultiLineString, 4326) NOT NULL,
    PRIMARY KEY (code, other_code),
    CHECK (code <> other_code)
);
CREATE INDEX admin_border_geom_gist ON riskatlas.admin_border USING gist (geom);
CREATE INDEX admin_border_geog_gist ON riskatlas.admin_border USING gist ((geom::geography));

-- The same lines cut into short pieces: a distance join then touches a few short pieces through the
-- GiST index instead of a line of thousands of vertices (the exact distance is then geodesic).
CREATE TABLE riskatlas.admin_border_piece (
    piece_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    level      text NOT NULL,
    code       text NOT NULL,
    other_code text NOT NULL,
    geom       geometry(LineString, 4326) NOT NULL,
    FOREIGN KEY (code, other_code) REFERENCES riskatlas.admin_border (code, other_code) ON DELETE CASCADE
);
CREATE INDEX admin_border_piece_geom_gist ON riskatlas.admin_border_piece USING gist (geom);
CREATE INDEX admin_border_piece_code ON riskatlas.admin_border_piece (level, code);

-- Which boundaries (a fingerprint of code + updated_at per level) and tolerance the borders were
-- derived from, so a refresh re-derives them only when the boundaries or the tolerance changed.
CREATE TABLE riskatlas.admin_border_state (
    level       text PRIMARY KEY CHECK (level IN ('province', 'city', 'county')),
    fingerprint text NOT NULL,
    tolerance_m double precision NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);

-- Protection zones, protected areas and river reaches cut into pieces of a few vertices, rebuilt by
-- every flag refresh from the layer rows: a distance join then touches a few short pieces near each
-- source instead of whole polygons or reaches.  A regular table (not a temporary one) so that the
-- refresh's joins can run as parallel queries.
CREATE TABLE riskatlas.hazard_piece (
    piece_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer      text NOT NULL CHECK (layer IN ('protection_zone', 'protected_area', 'river')),
    feature_id bigint NOT NULL,  -- id of the zone, area or reach
    geom       geometry(Geometry, 4326) NOT NULL
);
CREATE INDEX hazard_piece_zone_gist ON riskatlas.hazard_piece USING gist (geom) WHERE layer = 'protection_zone';
CREATE INDEX hazard_piece_area_gist ON riskatlas.hazard_piece USING gist (geom) WHERE layer = 'protected_area';
CREATE INDEX hazard_piece_river_gist ON riskatlas.hazard_piece USING gist (geom) WHERE layer = 'river';

-- Metric distance to polygons and lines: the layers 0001 indexed only on geom.
CREATE INDEX protection_zone_geog_gist ON riskatlas.protection_zone USING gist ((geom::geography));
CREATE INDEX protected_area_geog_gist ON riskatlas.protected_area USING gist ((geom::geography));
CREATE INDEX river_geog_gist ON riskatlas.river USING gist ((geom::geography));
CREATE INDEX admin_area_geog_gist ON riskatlas.admin_area USING gist ((geom::geography));

-- One row per (risk source, kind, other jurisdiction, feature): why the source matters across a border.
--   city-border      within the threshold of the border between its city and a neighbouring city
--   province-border  the same for the province border
--   upstream         a river walk from the source's nearest reach enters another city within the horizon
--   protection-zone  inside or near a drinking-water protection zone (the zone's owner city is `other`)
--   protected-area   inside or near a protected area (the area's owner city is `other`)
-- cross_border is false when the other jurisdiction is the source's own city (a protection-zone or
-- protected-area flag inside the city that owns the zone).  distance_m is geodesic metres: to the border
-- line, to the zone or area (0 inside), or along the river to the entry into the other city.
CREATE TABLE riskatlas.hazard_flag (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id     bigint NOT NULL REFERENCES riskatlas.risk_source (id) ON DELETE CASCADE,
    source_key    text NOT NULL,
    source_name   text NOT NULL,
    source_city   text NOT NULL REFERENCES riskatlas.admin_area (code),
    risk_level    text NOT NULL CHECK (risk_level IN ('general', 'larger', 'major')),
    kind          text NOT NULL CHECK (kind IN ('city-border', 'province-border', 'upstream',
                    'protection-zone', 'protected-area')),
    other_code    text NOT NULL REFERENCES riskatlas.admin_area (code),
    other_name    text NOT NULL,
    other_level   text NOT NULL CHECK (other_level IN ('province', 'city')),
    cross_border  boolean NOT NULL,
    feature_key   text NOT NULL DEFAULT '',  -- zone or protected-area key; '' for borders and rivers
    feature_name  text,
    zone_level    text CHECK (zone_level IN ('1', '2', 'quasi')),
    distance_m    double precision NOT NULL CHECK (distance_m >= 0),
    threshold_m   double precision,           -- the distance that applied (NULL for upstream)
    travel_time_s double precision CHECK (travel_time_s >= 0),  -- upstream only
    severity      text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    reason        text NOT NULL,
    reason_zh     text NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    batch_id      bigint REFERENCES riskatlas.load_batch (id) ON DELETE SET NULL,  -- load that triggered it
    computed_at   timestamptz NOT NULL DEFAULT now(),
    geom          geometry(Point, 4326) NOT NULL,  -- the risk source
    UNIQUE (source_id, kind, other_code, feature_key)
);
CREATE INDEX hazard_flag_geom_gist ON riskatlas.hazard_flag USING gist (geom);
CREATE INDEX hazard_flag_kind ON riskatlas.hazard_flag (kind, severity);
CREATE INDEX hazard_flag_cities ON riskatlas.hazard_flag (source_city, other_code);
CREATE INDEX hazard_flag_other ON riskatlas.hazard_flag (other_code);
CREATE INDEX hazard_flag_feature ON riskatlas.hazard_flag (kind, feature_key) WHERE feature_key <> '';

-- Every refresh: full or incremental, what triggered it, and what it wrote.
CREATE TABLE riskatlas.hazard_refresh (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mode           text NOT NULL CHECK (mode IN ('full', 'incremental')),
    layer          text,
    batch_id       bigint REFERENCES riskatlas.load_batch (id) ON DELETE SET NULL,
    kinds          text[] NOT NULL,
    sources        integer NOT NULL DEFAULT 0,   -- risk sources re-examined
    flags_deleted  integer NOT NULL DEFAULT 0,
    flags_written  integer NOT NULL DEFAULT 0,
    rules_sha256   text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at    timestamptz,
    refreshed_by   text NOT NULL DEFAULT current_user
);
