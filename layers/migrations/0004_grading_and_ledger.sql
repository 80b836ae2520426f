-- 0004: HJ 941-2018 grades kept with the inputs that produced them (issue 7), and the monthly records
-- of the cross-border water sections that the compensation ledger is computed from.
-- Grades are derived by services.grading; the levels themselves are also written to risk_source
-- (q_value, air_level, water_level, risk_level, grade_label) so every layer client sees them.

-- One row per `riskatlas grade` run: what it covered and which tables and raster it used.
CREATE TABLE riskatlas.grade_run (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope         text NOT NULL CHECK (scope IN ('all', 'batch', 'stale', 'keys')),
    batch_id      bigint,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    run_by        text NOT NULL DEFAULT current_user,
    sources       integer NOT NULL DEFAULT 0,
    graded        integer NOT NULL DEFAULT 0,
    rejected      integer NOT NULL DEFAULT 0,
    changed       integer NOT NULL DEFAULT 0,
    tables_sha256 text NOT NULL,          -- layers/data/hj941_grading.yaml + hj169_substances.csv
    raster        text,                   -- the population raster used (name), and its checksum
    raster_sha256 text,
    settings      jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- The grade of each risk source and everything it was computed from.  Keyed by the source's stable
-- key without a foreign key, so reloading or truncating risk_source is never blocked by grades; a
-- full run removes grades of sources that no longer exist.
CREATE TABLE riskatlas.risk_grade (
    source_key      text PRIMARY KEY,
    run_id          bigint NOT NULL REFERENCES riskatlas.grade_run (id),
    status          text NOT NULL CHECK (status IN ('graded', 'rejected')),
    reasons         jsonb,                       -- why the inputs could not be graded
    q_air           double precision CHECK (q_air >= 0),
    q_water         double precision CHECK (q_water >= 0),
    q_air_band      text CHECK (q_air_band IN ('Q0', 'Q1', 'Q2', 'Q3')),
    q_water_band    text CHECK (q_water_band IN ('Q0', 'Q1', 'Q2', 'Q3')),
    m_score         integer,
    m_band          text,
    pop_far         double precision,            -- persons within the far radius (5 km)
    pop_near        double precision,            -- persons within the near radius (500 m)
    e_air           text CHECK (e_air IN ('E1', 'E2', 'E3')),
    e_air_reason    text,
    e_water         text CHECK (e_water IN ('E1', 'E2', 'E3')),
    e_water_reasons jsonb,
    water           jsonb,                       -- reach snapped to, receptors met, provinces crossed
    substances      jsonb,                       -- q/Q line by line (restricted: it holds quantities)
    air_level       text CHECK (air_level IN ('general', 'larger', 'major')),
    water_level     text CHECK (water_level IN ('general', 'larger', 'major')),
    risk_level      text CHECK (risk_level IN ('general', 'larger', 'major')),
    air_cell        text,                        -- matrix cell used, e.g. E2/Q1/M3
    water_cell      text,
    label           text,
    computed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_grade_level ON riskatlas.risk_grade (risk_level);
CREATE INDEX risk_grade_run ON riskatlas.risk_grade (run_id);

-- Monthly records of water sections (cross-border and national): mean flow and concentrations.
-- Loaded by etl.section_records through load_batch / load_reject like every other load.
CREATE TABLE riskatlas.section_record (
    station_key text NOT NULL,
    month       date NOT NULL CHECK (extract(day FROM month) = 1),
    flow_m3s    double precision NOT NULL CHECK (flow_m3s >= 0),
    codmn       double precision CHECK (codmn >= 0),   -- mg/L
    cod         double precision CHECK (cod >= 0),
    nh3n        double precision CHECK (nh3n >= 0),
    tp          double precision CHECK (tp >= 0),
    tn          double precision CHECK (tn >= 0),
    batch_id    bigint REFERENCES riskatlas.load_batch (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT current_user,
    PRIMARY KEY (station_key, month),
    CHECK (coalesce(codmn, cod, nh3n, tp, tn) IS NOT NULL)
);
CREATE INDEX section_record_month ON riskatlas.section_record (month);
