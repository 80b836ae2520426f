-- 0010: the observation store (issue 13, DESIGN 12): station measurements as long rows partitioned by
-- month, corrections kept in history, the latest value of every station and parameter, the GB 3838
-- reference table with riskatlas.water_class(), events raised by exceedances at cross-border sections,
-- and the mark on a monthly section record that it was derived from observations.
--
-- The contract with the readers is /work/notes/observation_contract.md: names here do not change.
--
-- Who writes: only the station's owner city (a steward of that city) or an administrator; the
-- owner_city of every row must be its station's owner city (checked set-based per statement), and
-- row-level security refuses a row whose owner_city is not the actor's city (as migration 0005 does
-- for the inventory layers).  Reading is open to every role: nothing in an observation is restricted.
-- (0011 and 0012 are other changes' numbers.)

-- The reference tables are filled from layers/data/*.csv by layers.reference after every upgrade, so
-- the data files stay the one truth and a correction there needs no new migration.
CREATE TABLE riskatlas.gb3838_limit (
    factor  text PRIMARY KEY CHECK (factor = lower(factor)),   -- gb3838_limits.csv `factor`, lower-case
    name_zh text NOT NULL,
    kind    text NOT NULL CHECK (kind IN ('max', 'min')),      -- min: DO (higher is better)
    limits  double precision[] NOT NULL CHECK (array_length(limits, 1) = 5),  -- classes I..V, mg/L
    clause  text NOT NULL,
    "check" boolean NOT NULL
);

CREATE TABLE riskatlas.obs_parameter (
    code      text PRIMARY KEY CHECK (code ~ '^[a-z0-9_-]+$'),
    medium    text NOT NULL CHECK (medium IN ('air', 'water')),
    name_zh   text NOT NULL,
    name_en   text NOT NULL,
    unit      text NOT NULL,             -- canonical unit: every stored value is in it
    units     jsonb NOT NULL,            -- accepted unit (normalised spelling) -> factor to canonical
    min_value double precision,          -- plausible range in the canonical unit
    max_value double precision,
    gb3838    text,                      -- gb3838_limit.factor it is classed by
    hj633     text,                      -- HJ 633-2012 pollutant it is indexed by
    clause    text NOT NULL,
    "check"   boolean NOT NULL
);

-- water_class(factor, value, lake): GB 3838-2002 class 1..5 (I..V), 6 worse than V, NULL when the
-- factor has no limit.  `factor` is a GB 3838 factor ('NH3-N') or an observation parameter code
-- ('nh3n'), in any case; for lakes and reservoirs TP is classed by its lake limits (TP-lake).
-- A value that meets two classes' equal limits gets the better class (COD 15 mg/L is class I).
CREATE FUNCTION riskatlas.water_class(factor text, value double precision, lake boolean DEFAULT false)
RETURNS smallint LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH f AS (
        SELECT coalesce((SELECT p.gb3838 FROM riskatlas.obs_parameter p WHERE p.code = lower(factor)),
                        lower(factor)) AS name
    ), l AS (
        SELECT g.kind, g.limits FROM riskatlas.gb3838_limit g, f
        WHERE g.factor = CASE WHEN lake AND f.name = 'tp' THEN 'tp-lake' ELSE f.name END
    )
    SELECT CASE WHEN value IS NULL OR value = 'NaN'::float8 THEN NULL
                ELSE coalesce((SELECT min(i) FROM generate_subscripts(l.limits, 1) i
                               WHERE CASE l.kind WHEN 'max' THEN value <= l.limits[i]
                                                 ELSE value >= l.limits[i] END), 6)::smallint END
    FROM l
$$;

-- Observations: one row per station, parameter and time; the value in the parameter's canonical unit.
CREATE TABLE riskatlas.observation (
    station_key text NOT NULL,
    parameter   text NOT NULL,
    observed_at timestamptz NOT NULL,
    value       double precision NOT NULL CHECK (value = value),   -- never NaN
    flag        text NOT NULL DEFAULT 'valid'
                CHECK (flag IN ('valid', 'estimated', 'suspect', 'invalid', 'calibration', 'maintenance')),
    owner_city  text NOT NULL,
    batch_id    bigint,
    updated_at  timestamptz,
    updated_by  text,
    PRIMARY KEY (station_key, parameter, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX observation_time_brin ON riskatlas.observation USING brin (observed_at);
COMMENT ON TABLE riskatlas.observation IS
    'station measurements, long rows, canonical units (obs_parameter.unit); monthly partitions observation_yYYYYmMM';

-- A changed value or flag (a correction): the row as it was, and who changed it, when, in which batch.
CREATE TABLE riskatlas.observation_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    station_key  text NOT NULL,
    parameter    text NOT NULL,
    observed_at  timestamptz NOT NULL,
    old_value    double precision NOT NULL,
    old_flag     text NOT NULL,
    old_batch_id bigint,
    new_value    double precision NOT NULL,
    new_flag     text NOT NULL,
    batch_id     bigint,
    changed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    changed_by   text NOT NULL,
    acting_city  text
);
CREATE INDEX observation_history_key ON riskatlas.observation_history (station_key, parameter, observed_at);

-- The latest observation of every station and parameter (one small read for the whole map), kept by
-- the write trigger below: a later time replaces it, a correction of the same time too.
CREATE TABLE riskatlas.observation_latest (
    station_key text NOT NULL,
    parameter   text NOT NULL,
    observed_at timestamptz NOT NULL,
    value       double precision NOT NULL,
    flag        text NOT NULL,
    owner_city  text NOT NULL,
    batch_id    bigint,
    PRIMARY KEY (station_key, parameter)
);

-- Monthly partitions from the month of `from_date` to the month of `to_date`, those missing only;
-- returns how many it created.  Callable by the application role (a push may bring a new month); at
-- most 600 months (50 years) per call, between 1970 and 2200.
CREATE FUNCTION riskatlas.ensure_observation_partitions(from_date date, to_date date) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    m       date := date_trunc('month', from_date)::date;
    last    date := date_trunc('month', to_date)::date;
    name    text;
    created integer := 0;
BEGIN
    IF from_date IS NULL OR to_date IS NULL OR from_date > to_date THEN
        RAISE EXCEPTION 'partitions from % to %: give a range whose start is not after its end', from_date, to_date
            USING ERRCODE = '22023';
    END IF;
    IF m < date '1970-01-01' OR last > date '2200-01-01' OR (last - m) > 600 * 31 THEN
        RAISE EXCEPTION 'partitions from % to %: at most 600 months between 1970 and 2200', from_date, to_date
            USING ERRCODE = '22023';
    END IF;
    WHILE m <= last LOOP
        name := format('observation_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(format('riskatlas.%I', name)) IS NULL THEN
            -- bounds at midnight China Standard Time would split a Beijing day less often, but the
            -- month in UTC is what every client computes the same way; a partition is storage only
            EXECUTE format('CREATE TABLE riskatlas.%I PARTITION OF riskatlas.observation '
                           'FOR VALUES FROM (%L) TO (%L)', name,
                           (m::timestamp AT TIME ZONE 'UTC'), ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;
REVOKE ALL ON FUNCTION riskatlas.ensure_observation_partitions(date, date) FROM PUBLIC;

-- After every write statement (set-based, with transition tables): every row's owner_city is its
-- station's owner city; a changed value or flag goes to observation_history; observation_latest follows.
CREATE FUNCTION riskatlas.observation_after_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE
    bad   record;
    who   text := riskatlas.acting_user();
    city  text := CASE WHEN coalesce(current_setting('riskatlas.ctx', true), '') = '' THEN NULL
                       ELSE riskatlas.actor_city() END;
    batch bigint := nullif(current_setting('riskatlas.batch_id', true), '')::bigint;
BEGIN
    SELECT n.station_key, n.owner_city, m.owner_city AS station_owner, m.key IS NOT NULL AS known
      INTO bad
      FROM (SELECT DISTINCT station_key, owner_city FROM new_rows) n
      LEFT JOIN riskatlas.monitoring_station m ON m.key = n.station_key
     WHERE m.owner_city IS DISTINCT FROM n.owner_city
     LIMIT 1;
    IF bad.station_key IS NOT NULL THEN
        IF NOT bad.known THEN
            RAISE EXCEPTION 'station % is not in monitoring_station', bad.station_key USING ERRCODE = '23503';
        END IF;
        RAISE EXCEPTION 'station % is owned by city %, not by city %', bad.station_key,
              coalesce(bad.station_owner, '(none)'), bad.owner_city USING ERRCODE = '42501';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO riskatlas.observation_history (station_key, parameter, observed_at, old_value, old_flag,
                                                   old_batch_id, new_value, new_flag, batch_id, changed_by, acting_city)
        SELECT o.station_key, o.parameter, o.observed_at, o.value, o.flag, o.batch_id, n.value, n.flag,
               coalesce(n.batch_id, batch), who, city
        FROM old_rows o JOIN new_rows n USING (station_key, parameter, observed_at)
        WHERE (o.value, o.flag) IS DISTINCT FROM (n.value, n.flag);
    END IF;
    INSERT INTO riskatlas.observation_latest AS l (station_key, parameter, observed_at, value, flag, owner_city, batch_id)
    SELECT DISTINCT ON (station_key, parameter) station_key, parameter, observed_at, value, flag, owner_city, batch_id
    FROM new_rows ORDER BY station_key, parameter, observed_at DESC
    ON CONFLICT (station_key, parameter) DO UPDATE SET observed_at = EXCLUDED.observed_at, value = EXCLUDED.value,
        flag = EXCLUDED.flag, owner_city = EXCLUDED.owner_city, batch_id = EXCLUDED.batch_id
    WHERE EXCLUDED.observed_at >= l.observed_at;
    RETURN NULL;
END $$;

CREATE TRIGGER observation_after_insert AFTER INSERT ON riskatlas.observation
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.observation_after_write();
CREATE TRIGGER observation_after_update AFTER UPDATE ON riskatlas.observation
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION riskatlas.observation_after_write();

ALTER TABLE riskatlas.observation ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON riskatlas.observation FOR SELECT USING (true);
CREATE POLICY scoped_insert ON riskatlas.observation FOR INSERT
    WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_write_scope()));
CREATE POLICY scoped_update ON riskatlas.observation FOR UPDATE
    USING ((SELECT riskatlas.actor_write_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_write_scope()))
    WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_write_scope()));

-- An exceedance at a cross-border section: a sample worse than the section's target class, addressed
-- to the downstream city (from the river network, as services.ledger.sections finds it).  Shown in the
-- app to the cities it concerns.  The incident/notice machinery (DESIGN 11) does not exist yet: when it
-- does, it sends a notice per open event and records it in notice_id; until then the event row is the
-- in-app notification.
CREATE TABLE riskatlas.observation_event (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL DEFAULT 'exceedance' CHECK (kind IN ('exceedance')),
    station_key     text NOT NULL,
    parameter       text NOT NULL,
    observed_at     timestamptz NOT NULL,
    value           double precision NOT NULL,
    water_class     smallint NOT NULL CHECK (water_class BETWEEN 1 AND 6),
    target_class    smallint NOT NULL CHECK (target_class BETWEEN 1 AND 5),
    owner_city      text NOT NULL,       -- the station's owner city (who measured)
    upstream_city   text,                -- NULL: the river enters from outside the loaded region
    downstream_city text,                -- the addressee; NULL: the river leaves the loaded region
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'withdrawn')),
    message_zh      text NOT NULL,
    message_en      text NOT NULL,
    batch_id        bigint,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by      text NOT NULL DEFAULT riskatlas.acting_user(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    notice_id       bigint,              -- the notice sent for it, once notices exist
    UNIQUE (kind, station_key, parameter, observed_at)
);
CREATE INDEX observation_event_downstream ON riskatlas.observation_event (downstream_city, created_at);
CREATE INDEX observation_event_time ON riskatlas.observation_event (observed_at);

ALTER TABLE riskatlas.observation_event ENABLE ROW LEVEL SECURITY;
-- a city sees the events at its own stations and those where it is upstream or downstream
CREATE POLICY involved_read ON riskatlas.observation_event FOR SELECT
    USING ((SELECT riskatlas.actor_write_scope()) = '*'
           OR (SELECT riskatlas.actor_city()) IN (owner_city, upstream_city, downstream_city));
CREATE POLICY scoped_insert ON riskatlas.observation_event FOR INSERT
    WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_write_scope()));
-- the addressee acknowledges; the measuring city withdraws (after a correction)
CREATE POLICY involved_update ON riskatlas.observation_event FOR UPDATE
    USING ((SELECT riskatlas.actor_write_scope()) = '*'
           OR (SELECT riskatlas.actor_write_scope()) IN (owner_city, downstream_city))
    WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*'
                OR (SELECT riskatlas.actor_write_scope()) IN (owner_city, downstream_city));

-- A monthly section record typed in (loaded from a file) or derived from observations, and from which.
ALTER TABLE riskatlas.section_record
    ADD COLUMN origin  text NOT NULL DEFAULT 'loaded' CHECK (origin IN ('loaded', 'derived')),
    ADD COLUMN derived jsonb;   -- derived: observation counts per factor, batches, the month's span
COMMENT ON COLUMN riskatlas.section_record.derived IS
    'for origin = derived: {"observations": {factor: n}, "batches": [...], "from": ..., "to": ..., "run_at": ...}';
