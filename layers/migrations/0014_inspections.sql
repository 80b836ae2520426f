-- 0014: joint inspections and enforcement (issue 12, DESIGN 11): inspection tasks planned by one city
-- or jointly by several, inspection records synced from the phone (idempotent by the client's id),
-- findings, photos, and the enforcement cases opened from findings (立案, 复查, 结案).
--
-- Who may do what (row-level security, the actor verified by the database as in 0005):
--   * a steward plans the tasks whose lead city is theirs; an administrator any;
--   * a task is visible to its cities, to the inspectors assigned to it and to administrators;
--   * an inspector (or a steward) writes a record only for a site of their own city, or for a site of
--     a task they are assigned to; the inspector of a record is always the verified actor;
--   * records, findings, photos and cases of a site are read by the site's city, the cities of the
--     record's task, the border-zone neighbours of the site (riskatlas.hazard_flag, 0003) and
--     administrators; an inspector reads their own records;
--   * a case belongs to the city where the site lies: its steward opens, follows up and closes it.
-- Every write is kept in riskatlas.row_history with user, role, city, old and new (0005's trigger),
-- except the photo bytes (their metadata and SHA-256 are kept).
-- Nothing here depends on migrations 0012 and 0013.

-- Settings of the inspection records: the distance beyond which a record is flagged as made far from
-- its site (not refused: a gate or a roadside may be where the inspector stands).
CREATE TABLE riskatlas.inspection_config (
    id          integer PRIMARY KEY CHECK (id = 1),
    far_m       double precision NOT NULL CHECK (far_m > 0),
    note        text NOT NULL
);
INSERT INTO riskatlas.inspection_config VALUES
    (1, 500, 'project''s own: a record made more than 500 m (geodesic) from its site is flagged for review');

-- The verified actor's name, or the database user without a context (the owner's batch jobs).
CREATE FUNCTION riskatlas.actor_name() RETURNS text LANGUAGE sql STABLE AS $$ SELECT riskatlas.acting_user() $$;

CREATE TABLE riskatlas.inspection_task (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key              text NOT NULL UNIQUE DEFAULT public.gen_random_uuid()::text,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    title_en         text CHECK (length(title_en) <= 200),
    lead_city        text NOT NULL REFERENCES riskatlas.admin_area (code),
    cities           text[] NOT NULL CHECK (cardinality(cities) BETWEEN 1 AND 20),
    joint            boolean GENERATED ALWAYS AS (cardinality(cities) >= 2) STORED,
    teams            jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(teams) = 'array'),
    site_keys        text[] NOT NULL CHECK (cardinality(site_keys) BETWEEN 1 AND 1000),
    starts_on        date NOT NULL,
    ends_on          date NOT NULL,
    template         text NOT NULL CHECK (template ~ '^[a-z0-9-]{1,40}$'),
    template_version integer NOT NULL CHECK (template_version >= 1),
    inspectors       text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'done', 'cancelled')),
    synthetic        boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by       text NOT NULL DEFAULT riskatlas.acting_user(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (ends_on >= starts_on AND ends_on - starts_on <= 366),
    CHECK (lead_city = cities[1])
);
CREATE INDEX inspection_task_cities ON riskatlas.inspection_task USING gin (cities);
CREATE INDEX inspection_task_sites ON riskatlas.inspection_task USING gin (site_keys);
CREATE INDEX inspection_task_inspectors ON riskatlas.inspection_task USING gin (inspectors);

CREATE TABLE riskatlas.inspection_record (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key              text NOT NULL UNIQUE,          -- the client's UUID as text (row history key)
    client_id        uuid NOT NULL UNIQUE,          -- generated on the phone: a resent record is the same
    task_id          bigint REFERENCES riskatlas.inspection_task (id),
    site_key         text NOT NULL,
    site_city        text,                          -- the city the site lies in (set on insert)
    inspector        text NOT NULL,                 -- the verified actor (set on insert)
    inspector_city   text,
    template         text NOT NULL,
    template_version integer NOT NULL CHECK (template_version >= 1),
    answers          jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(answers) = 'object'),
    note             text CHECK (length(note) <= 4000),
    position         geometry(Point, 4326) NOT NULL,
    accuracy_m       double precision CHECK (accuracy_m >= 0),
    device_time      timestamptz NOT NULL,
    distance_m       double precision,              -- geodesic metres from the site (set on insert)
    far              boolean,                       -- distance_m > inspection_config.far_m
    synthetic        boolean NOT NULL DEFAULT false,
    received_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (key = client_id::text)
);
CREATE INDEX inspection_record_site_time ON riskatlas.inspection_record (site_key, device_time);
CREATE INDEX inspection_record_city_time ON riskatlas.inspection_record (site_city, device_time);
CREATE INDEX inspection_record_task ON riskatlas.inspection_record (task_id);

-- A record's site, its city, its distance and the inspector come from the database, not the client:
-- an unknown site or a position outside the region is refused (22023/23503), a far one flagged.
CREATE FUNCTION riskatlas.inspection_record_before() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE s record;
BEGIN
    SELECT r.geom, coalesce(r.owner_city, r.city_code) AS city INTO s
      FROM riskatlas.risk_source r WHERE r.key = NEW.site_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'site % is not a known risk source', NEW.site_key USING ERRCODE = '23503';
    END IF;
    IF riskatlas.city_at(NEW.position) IS NULL THEN
        RAISE EXCEPTION 'position % lies outside the region', ST_AsText(NEW.position) USING ERRCODE = '22023';
    END IF;
    NEW.site_city := s.city;
    NEW.inspector := riskatlas.acting_user();
    NEW.inspector_city := CASE WHEN coalesce(current_setting('riskatlas.ctx', true), '') = '' THEN NULL
                               ELSE riskatlas.actor_city() END;
    NEW.distance_m := ST_Distance(NEW.position::geography, s.geom::geography, true);  -- on the spheroid
    NEW.far := NEW.distance_m > (SELECT far_m FROM riskatlas.inspection_config WHERE id = 1);
    NEW.received_at := clock_timestamp();
    RETURN NEW;
END $$;
CREATE TRIGGER inspection_record_before BEFORE INSERT ON riskatlas.inspection_record
    FOR EACH ROW EXECUTE FUNCTION riskatlas.inspection_record_before();

CREATE TABLE riskatlas.inspection_finding (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        text NOT NULL UNIQUE,               -- record client id + ':' + ordinal
    record_id  bigint NOT NULL REFERENCES riskatlas.inspection_record (id) ON DELETE CASCADE,
    ordinal    integer NOT NULL CHECK (ordinal BETWEEN 1 AND 100),
    site_key   text,                               -- copied from the record on insert
    site_city  text,
    kind       text NOT NULL CHECK (kind ~ '^[a-z0-9-]{1,40}$'),
    severity   text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    item       text CHECK (item ~ '^[A-Za-z0-9._-]{1,40}$'),  -- the checklist question it concerns
    note       text CHECK (length(note) <= 4000),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (record_id, ordinal)
);
CREATE INDEX inspection_finding_site ON riskatlas.inspection_finding (site_key, created_at);

CREATE TABLE riskatlas.inspection_photo (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        text NOT NULL UNIQUE,               -- record client id + ':' + sha256
    record_id  bigint NOT NULL REFERENCES riskatlas.inspection_record (id) ON DELETE CASCADE,
    site_key   text,
    site_city  text,
    filename   text NOT NULL CHECK (length(filename) BETWEEN 1 AND 200),
    media_type text NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png')),
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),  -- of the stored (re-encoded) bytes
    sha256_in  text NOT NULL CHECK (sha256_in ~ '^[0-9a-f]{64}$'),  -- of the file as sent
    width      integer NOT NULL CHECK (width > 0),
    height     integer NOT NULL CHECK (height > 0),
    size       integer NOT NULL CHECK (size > 0),
    exif_lon   double precision CHECK (exif_lon BETWEEN -180 AND 180),
    exif_lat   double precision CHECK (exif_lat BETWEEN -90 AND 90),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (record_id, sha256_in)
);
CREATE INDEX inspection_photo_record ON riskatlas.inspection_photo (record_id);

-- The re-encoded bytes apart from their metadata, so the row history does not copy megabytes.
CREATE TABLE riskatlas.inspection_photo_blob (
    photo_id bigint PRIMARY KEY REFERENCES riskatlas.inspection_photo (id) ON DELETE CASCADE,
    bytes    bytea NOT NULL
);

CREATE TABLE riskatlas.enforcement_case (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key                text NOT NULL UNIQUE DEFAULT public.gen_random_uuid()::text,
    finding_id         bigint NOT NULL UNIQUE REFERENCES riskatlas.inspection_finding (id),
    task_id            bigint REFERENCES riskatlas.inspection_task (id),
    site_key           text,                        -- from the finding (set on insert)
    owner_city         text,                        -- the city the site lies in: the case's owner
    cities             text[] NOT NULL DEFAULT '{}', -- the task's cities, who all read it
    status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    opened_by          text NOT NULL DEFAULT riskatlas.acting_user(),
    deadline           date NOT NULL,
    measures           text CHECK (length(measures) <= 4000),   -- 整改要求
    followup_record_id bigint REFERENCES riskatlas.inspection_record (id),
    followup_at        timestamptz,
    followup_by        text,
    rectified          boolean,
    followup_note      text CHECK (length(followup_note) <= 4000),
    closed_at          timestamptz,
    closed_by          text,
    closing_note       text CHECK (length(closing_note) <= 4000),
    CHECK (status <> 'closed' OR (closed_at IS NOT NULL AND rectified))
);
CREATE INDEX enforcement_case_site ON riskatlas.enforcement_case (site_key, opened_at);
CREATE INDEX enforcement_case_city ON riskatlas.enforcement_case (owner_city, opened_at);

CREATE FUNCTION riskatlas.enforcement_case_before() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE f record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT fi.site_key, fi.site_city, r.task_id, coalesce(t.cities, '{}') AS cities INTO f
          FROM riskatlas.inspection_finding fi JOIN riskatlas.inspection_record r ON r.id = fi.record_id
          LEFT JOIN riskatlas.inspection_task t ON t.id = r.task_id
         WHERE fi.id = NEW.finding_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'finding % does not exist', NEW.finding_id USING ERRCODE = '23503';
        END IF;
        NEW.site_key := f.site_key;
        NEW.owner_city := f.site_city;
        NEW.task_id := f.task_id;
        NEW.cities := f.cities;
        NEW.opened_by := riskatlas.acting_user();
        NEW.opened_at := clock_timestamp();
        NEW.status := 'open';
    ELSE
        -- what a case is about and whose it is do not change
        NEW.finding_id := OLD.finding_id; NEW.site_key := OLD.site_key; NEW.owner_city := OLD.owner_city;
        NEW.task_id := OLD.task_id; NEW.cities := OLD.cities; NEW.opened_at := OLD.opened_at;
        NEW.opened_by := OLD.opened_by;
        IF OLD.status = 'closed' THEN
            RAISE EXCEPTION 'case % is closed', OLD.id USING ERRCODE = '55000';
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER enforcement_case_before BEFORE INSERT OR UPDATE ON riskatlas.enforcement_case
    FOR EACH ROW EXECUTE FUNCTION riskatlas.enforcement_case_before();

-- Findings and photos take their site from their record.
CREATE FUNCTION riskatlas.inspection_child_before() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    SELECT r.site_key, r.site_city INTO NEW.site_key, NEW.site_city
      FROM riskatlas.inspection_record r WHERE r.id = NEW.record_id;
    RETURN NEW;
END $$;
CREATE TRIGGER inspection_finding_before BEFORE INSERT ON riskatlas.inspection_finding
    FOR EACH ROW EXECUTE FUNCTION riskatlas.inspection_child_before();
CREATE TRIGGER inspection_photo_before BEFORE INSERT ON riskatlas.inspection_photo
    FOR EACH ROW EXECUTE FUNCTION riskatlas.inspection_child_before();

-- Cases with the overdue flag: open after their deadline (a day ends at midnight China Standard Time).
CREATE VIEW riskatlas.enforcement_case_state WITH (security_invoker = true) AS
    SELECT c.*, (c.status = 'open' AND c.deadline < (clock_timestamp() AT TIME ZONE 'Asia/Shanghai')::date) AS overdue
    FROM riskatlas.enforcement_case c;

-- Row history (0005's statement triggers: user, role, city, old and new).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['inspection_task', 'inspection_record', 'inspection_finding', 'inspection_photo',
                             'enforcement_case'] LOOP
        EXECUTE format($f$CREATE TRIGGER %1$s_history_insert AFTER INSERT ON riskatlas.%1$s
                         REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.keep_history_statement()$f$, t);
        EXECUTE format($f$CREATE TRIGGER %1$s_history_update AFTER UPDATE ON riskatlas.%1$s
                         REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.keep_history_statement()$f$, t);
        EXECUTE format($f$CREATE TRIGGER %1$s_history_delete AFTER DELETE ON riskatlas.%1$s
                         REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.keep_history_statement()$f$, t);
        EXECUTE format('ALTER TABLE riskatlas.%s ENABLE ROW LEVEL SECURITY', t);
    END LOOP;
END $$;
ALTER TABLE riskatlas.inspection_photo_blob ENABLE ROW LEVEL SECURITY;

-- Tasks: the lead city's steward plans; its cities, its inspectors and administrators read.
CREATE POLICY task_read ON riskatlas.inspection_task FOR SELECT
    USING ((SELECT riskatlas.actor_write_scope()) = '*' OR (SELECT riskatlas.actor_city()) = ANY (cities)
           OR (SELECT riskatlas.actor_name()) = ANY (inspectors));
CREATE POLICY task_insert ON riskatlas.inspection_task FOR INSERT
    WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*' OR lead_city = (SELECT riskatlas.actor_write_scope()));
CREATE POLICY task_update ON riskatlas.inspection_task FOR UPDATE
    USING ((SELECT riskatlas.actor_write_scope()) = '*' OR lead_city = (SELECT riskatlas.actor_write_scope()))
    WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*' OR lead_city = (SELECT riskatlas.actor_write_scope()));

-- Records: see the header.  Reading a site's records: its city, the task's cities, border neighbours.
-- The policies spell their conditions out instead of calling helper functions: a SQL function whose body
-- holds a subquery is not inlined, and each call would verify the actor's context again, row by row;
-- written here, every (SELECT riskatlas.actor_...()) is one InitPlan per statement.
CREATE INDEX hazard_flag_source_other ON riskatlas.hazard_flag (source_key, other_code) WHERE cross_border;

CREATE POLICY record_read ON riskatlas.inspection_record FOR SELECT
    USING (inspector = (SELECT riskatlas.actor_name())
           OR (SELECT riskatlas.actor_write_scope()) = '*'
           OR site_city = (SELECT riskatlas.actor_city())
           OR (task_id IS NOT NULL AND EXISTS (SELECT 1 FROM riskatlas.inspection_task t
                                               WHERE t.id = task_id AND (SELECT riskatlas.actor_city()) = ANY (t.cities)))
           OR EXISTS (SELECT 1 FROM riskatlas.hazard_flag f WHERE f.source_key = site_key AND f.cross_border
                      AND f.other_code = (SELECT riskatlas.actor_city())));
CREATE POLICY record_insert ON riskatlas.inspection_record FOR INSERT
    WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*'
                OR ((SELECT riskatlas.actor_role()) IN ('inspector', 'steward')
                    AND inspector = (SELECT riskatlas.actor_name())
                    AND (site_city = (SELECT riskatlas.actor_city())
                         OR (task_id IS NOT NULL AND EXISTS (
                                SELECT 1 FROM riskatlas.inspection_task t
                                WHERE t.id = task_id AND site_key = ANY (t.site_keys) AND t.status = 'planned'
                                  AND (SELECT riskatlas.actor_name()) = ANY (t.inspectors))))));

-- Findings and photos: read with their record (the record's own policy applies inside), written by the
-- record's inspector or an administrator.
CREATE POLICY finding_read ON riskatlas.inspection_finding FOR SELECT
    USING (EXISTS (SELECT 1 FROM riskatlas.inspection_record r WHERE r.id = record_id));
CREATE POLICY finding_insert ON riskatlas.inspection_finding FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM riskatlas.inspection_record r WHERE r.id = record_id
                        AND (r.inspector = (SELECT riskatlas.actor_name()) OR (SELECT riskatlas.actor_write_scope()) = '*')));
-- photos: never to the public (an anonymous actor has no city and records no inspections)
CREATE POLICY photo_read ON riskatlas.inspection_photo FOR SELECT
    USING ((SELECT riskatlas.actor_role()) <> 'public'
           AND EXISTS (SELECT 1 FROM riskatlas.inspection_record r WHERE r.id = record_id));
CREATE POLICY photo_insert ON riskatlas.inspection_photo FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM riskatlas.inspection_record r WHERE r.id = record_id
                        AND (r.inspector = (SELECT riskatlas.actor_name()) OR (SELECT riskatlas.actor_write_scope()) = '*')));
CREATE POLICY blob_read ON riskatlas.inspection_photo_blob FOR SELECT
    USING (EXISTS (SELECT 1 FROM riskatlas.inspection_photo p WHERE p.id = photo_id));
CREATE POLICY blob_insert ON riskatlas.inspection_photo_blob FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM riskatlas.inspection_photo p JOIN riskatlas.inspection_record r ON r.id = p.record_id
                        WHERE p.id = photo_id
                          AND (r.inspector = (SELECT riskatlas.actor_name()) OR (SELECT riskatlas.actor_write_scope()) = '*')));

-- Cases: the site's city writes (its steward, or an administrator); it, the task's cities and the
-- border neighbours read.
CREATE POLICY case_read ON riskatlas.enforcement_case FOR SELECT
    USING ((SELECT riskatlas.actor_write_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_city())
           OR (SELECT riskatlas.actor_city()) = ANY (cities)
           OR EXISTS (SELECT 1 FROM riskatlas.hazard_flag f WHERE f.source_key = site_key AND f.cross_border
                      AND f.other_code = (SELECT riskatlas.actor_city())));
CREATE POLICY case_insert ON riskatlas.enforcement_case FOR INSERT
    WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_write_scope()));
CREATE POLICY case_update ON riskatlas.enforcement_case FOR UPDATE
    USING ((SELECT riskatlas.actor_write_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_write_scope()))
    WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_write_scope()));
