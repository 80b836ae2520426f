-- 0012: incidents across borders (DESIGN 11): the directory of agencies, incidents with their status
-- history, notices to the agencies of the notify list with their deliveries (a queue in PostgreSQL),
-- acknowledgements, and the append-only consultation log (会商).
--
-- Who may do what is decided here, by row-level security on the verified actor (migration 0005):
--   * a new role `duty` (duty officer of one city) opens incidents and acknowledges for its city;
--   * a city sees an incident it is involved in: the city it lies in, the city that opened it, or a
--     city named (itself or one of its counties) in the notify list; nothing else, so an id of another
--     city's incident reads as absent (404), not as forbidden;
--   * only the addressed city acknowledges a notice; the log is readable and writable by every involved
--     city and can be neither changed nor deleted by anyone, the schema owner included.

ALTER TABLE riskatlas.account DROP CONSTRAINT account_role_check;
ALTER TABLE riskatlas.account ADD CONSTRAINT account_role_check
    CHECK (role IN ('analyst', 'inspector', 'steward', 'duty', 'admin'));
ALTER TABLE riskatlas.account ADD CONSTRAINT duty_has_city CHECK (role <> 'duty' OR city IS NOT NULL);

-- Contexts may name a duty officer (0005's issue_context knew the roles of its time); a duty officer,
-- like a steward, acts for one city.
CREATE OR REPLACE FUNCTION riskatlas.issue_context(p_user text, p_role text, p_city text, p_key bigint DEFAULT 0,
                                                   p_ttl interval DEFAULT interval '10 minutes') RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE payload text;
BEGIN
    IF p_user IS NULL OR p_user !~ '^[A-Za-z0-9._@-]{1,64}$' THEN
        RAISE EXCEPTION 'user name % is not allowed in a context', p_user USING ERRCODE = '22023';
    END IF;
    IF p_role NOT IN ('public', 'analyst', 'inspector', 'steward', 'duty', 'admin') THEN
        RAISE EXCEPTION 'role % is not known', p_role USING ERRCODE = '22023';
    END IF;
    IF p_role IN ('steward', 'duty') AND (p_city IS NULL OR p_city !~ '^[0-9]{6}$') THEN
        RAISE EXCEPTION 'a % context needs a city code', p_role USING ERRCODE = '22023';
    END IF;
    payload := concat_ws(':', 'v1', coalesce(p_key, 0)::text,
                         floor(extract(epoch FROM clock_timestamp() + p_ttl))::bigint::text,
                         p_user, p_role, coalesce(p_city, ''));
    RETURN payload || ':' || riskatlas.context_signature(payload);
END $$;
REVOKE ALL ON FUNCTION riskatlas.issue_context(text, text, text, bigint, interval) FROM PUBLIC;

-- Duty officers see restricted fields (quantities on site, contacts): they need them in an emergency.
CREATE OR REPLACE FUNCTION riskatlas.actor_sees_restricted() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT session_user = (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'riskatlas')
           OR (riskatlas.actor()).role IN ('analyst', 'steward', 'duty', 'admin')
$$;

-- The city for which this actor acts in incidents and the directory: '*' for an administrator, the
-- account's city for a steward or a duty officer, NULL for everyone else.
CREATE FUNCTION riskatlas.actor_duty_scope() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE a.role WHEN 'admin' THEN '*' WHEN 'steward' THEN a.city WHEN 'duty' THEN a.city END
    FROM riskatlas.actor() a
$$;

-- ---------------------------------------------------------------------------------------------------
-- The directory: one agency row per jurisdiction and kind (bureau, duty office).  Contacts are
-- restricted (layers.grants: read through agency_visible); each city writes its own rows.
CREATE TABLE riskatlas.agency (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key           text NOT NULL UNIQUE,
    jurisdiction  text NOT NULL REFERENCES riskatlas.admin_area (code),
    kind          text NOT NULL DEFAULT 'bureau' CHECK (kind IN ('bureau', 'duty_office')),
    name          text NOT NULL,
    name_en       text,
    duty_phone    text,
    duty_email    text CHECK (duty_email IS NULL OR duty_email ~ '^[^@\s]+@[^@\s]+$'),
    webhook_url   text CHECK (webhook_url IS NULL OR webhook_url ~ '^https?://'),
    webhook_secret text,
    on_duty       jsonb NOT NULL DEFAULT '[]',   -- [{"name", "phone", "from", "to"}]
    synthetic     boolean NOT NULL DEFAULT false,
    owner_city    text NOT NULL REFERENCES riskatlas.admin_area (code),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_by    text NOT NULL DEFAULT riskatlas.acting_user()
);
CREATE INDEX agency_jurisdiction ON riskatlas.agency (jurisdiction, kind);

-- Who changed a directory entry, when, old and new (contacts included: the table is the owner's only).
CREATE TABLE riskatlas.agency_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agency_key text NOT NULL,
    op         text NOT NULL,
    old_row    jsonb,
    new_row    jsonb,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    changed_by text NOT NULL,
    acting_role text,
    acting_city text
);

CREATE FUNCTION riskatlas.agency_keep_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE a riskatlas.actor_t := CASE WHEN coalesce(current_setting('riskatlas.ctx', true), '') = ''
                                    THEN ROW(NULL, NULL, NULL, NULL)::riskatlas.actor_t ELSE riskatlas.actor() END;
BEGIN
    INSERT INTO riskatlas.agency_history (agency_key, op, old_row, new_row, changed_by, acting_role, acting_city)
    VALUES (coalesce(NEW.key, OLD.key), lower(TG_OP),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
            riskatlas.acting_user(), a.role, a.city);
    RETURN NULL;
END $$;
CREATE TRIGGER agency_history AFTER INSERT OR UPDATE OR DELETE ON riskatlas.agency
    FOR EACH ROW EXECUTE FUNCTION riskatlas.agency_keep_history();

ALTER TABLE riskatlas.agency ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON riskatlas.agency FOR SELECT USING (true);
CREATE POLICY scoped_insert ON riskatlas.agency FOR INSERT
    WITH CHECK ((SELECT riskatlas.actor_duty_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_duty_scope()));
CREATE POLICY scoped_update ON riskatlas.agency FOR UPDATE
    USING ((SELECT riskatlas.actor_duty_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_duty_scope()))
    WITH CHECK ((SELECT riskatlas.actor_duty_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_duty_scope()));
CREATE POLICY scoped_delete ON riskatlas.agency FOR DELETE
    USING ((SELECT riskatlas.actor_duty_scope()) = '*' OR owner_city = (SELECT riskatlas.actor_duty_scope()));

-- ---------------------------------------------------------------------------------------------------
-- Incidents.  `analysis` is the spill or plume result as it was returned when the incident was opened;
-- `involved` the cities that see it (territory, opener, the notify list's cities), fixed at opening
-- and widened by updates.
CREATE TABLE riskatlas.incident (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_request_id text NOT NULL CHECK (length(client_request_id) BETWEEN 1 AND 128),
    kind              text NOT NULL CHECK (kind IN ('spill', 'plume')),
    title             text NOT NULL,
    substance         text NOT NULL,
    quantity          double precision CHECK (quantity IS NULL OR quantity >= 0),
    quantity_unit     text,
    description       text NOT NULL DEFAULT '',
    occurred_at       timestamptz NOT NULL,
    geom              geometry(Point, 4326) NOT NULL,
    severity          text NOT NULL DEFAULT 'Severe' CHECK (severity IN ('Extreme', 'Severe', 'Moderate', 'Minor')),
    analysis          jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'monitoring', 'closed')),
    territory_city    text,
    opened_city       text NOT NULL,
    involved          text[] NOT NULL,
    opened_by         text NOT NULL DEFAULT riskatlas.acting_user(),
    opened_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (opened_by, client_request_id)
);
CREATE INDEX incident_involved ON riskatlas.incident USING gin (involved);
CREATE INDEX incident_geom ON riskatlas.incident USING gist (geom);

-- Every status an incident had, with who and when (written by the trigger below, never by clients).
CREATE TABLE riskatlas.incident_status (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES riskatlas.incident (id),
    status      text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    changed_by  text NOT NULL,
    changed_city text
);
CREATE INDEX incident_status_incident ON riskatlas.incident_status (incident_id, changed_at);

-- Is `city` involved in incident `id`?  (SECURITY DEFINER: policies of the notices and the log ask it
-- without the incident's own policy recursing.)
CREATE FUNCTION riskatlas.incident_involves(p_incident bigint, p_city text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (SELECT 1 FROM riskatlas.incident WHERE id = p_incident AND p_city = ANY (involved))
$$;

CREATE FUNCTION riskatlas.incident_before_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE a riskatlas.actor_t := CASE WHEN coalesce(current_setting('riskatlas.ctx', true), '') = ''
                                    THEN ROW(NULL, NULL, NULL, NULL)::riskatlas.actor_t ELSE riskatlas.actor() END;
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.opened_by := riskatlas.acting_user();
        NEW.opened_at := clock_timestamp();
        NEW.status := 'open';
        NEW.territory_city := riskatlas.city_at(NEW.geom);
        IF a.role IS NOT NULL AND a.role <> 'admin' THEN
            NEW.opened_city := a.city;   -- never trusted from the client
        END IF;
        NEW.involved := ARRAY(SELECT DISTINCT c FROM unnest(NEW.involved || NEW.opened_city || NEW.territory_city) c
                              WHERE c IS NOT NULL ORDER BY c);
    ELSE
        IF NEW.id <> OLD.id OR NEW.opened_by <> OLD.opened_by OR NEW.opened_at <> OLD.opened_at
           OR NEW.analysis <> OLD.analysis OR NEW.client_request_id <> OLD.client_request_id
           OR NEW.opened_city <> OLD.opened_city THEN
            RAISE EXCEPTION 'incident %: what was known at opening (analysis, opener, time) cannot be changed',
                  OLD.id USING ERRCODE = '42501';
        END IF;
        IF OLD.status = 'closed' THEN
            RAISE EXCEPTION 'incident % is closed', OLD.id USING ERRCODE = '55000';
        END IF;
        IF NEW.status = 'open' AND OLD.status <> 'open' THEN
            RAISE EXCEPTION 'incident %: status goes open -> monitoring -> closed, not % -> open', OLD.id, OLD.status
                  USING ERRCODE = '22023';
        END IF;
        NEW.involved := ARRAY(SELECT DISTINCT c FROM unnest(NEW.involved || OLD.involved) c WHERE c IS NOT NULL
                              ORDER BY c);   -- an involved city stays involved
        NEW.updated_at := clock_timestamp();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER incident_before_write BEFORE INSERT OR UPDATE ON riskatlas.incident
    FOR EACH ROW EXECUTE FUNCTION riskatlas.incident_before_write();

CREATE FUNCTION riskatlas.incident_after_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE a riskatlas.actor_t := CASE WHEN coalesce(current_setting('riskatlas.ctx', true), '') = ''
                                    THEN ROW(NULL, NULL, NULL, NULL)::riskatlas.actor_t ELSE riskatlas.actor() END;
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO riskatlas.incident_status (incident_id, status, changed_by, changed_city)
        VALUES (NEW.id, NEW.status, riskatlas.acting_user(), coalesce(a.city, NEW.opened_city));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER incident_after_write AFTER INSERT OR UPDATE ON riskatlas.incident
    FOR EACH ROW EXECUTE FUNCTION riskatlas.incident_after_write();

ALTER TABLE riskatlas.incident ENABLE ROW LEVEL SECURITY;
CREATE POLICY involved_read ON riskatlas.incident FOR SELECT
    USING ((SELECT riskatlas.actor_duty_scope()) = '*' OR (SELECT riskatlas.actor_city()) = ANY (involved));
-- a duty officer opens for the city it acts for (the trigger sets opened_city from the actor)
CREATE POLICY duty_insert ON riskatlas.incident FOR INSERT
    WITH CHECK ((SELECT riskatlas.actor_role()) = 'admin'
                OR ((SELECT riskatlas.actor_role()) = 'duty' AND opened_city = (SELECT riskatlas.actor_city())));
-- the opening city's duty officers, and the territory's, move the status on
CREATE POLICY duty_update ON riskatlas.incident FOR UPDATE
    USING ((SELECT riskatlas.actor_role()) = 'admin'
           OR ((SELECT riskatlas.actor_role()) = 'duty'
               AND (SELECT riskatlas.actor_city()) IN (opened_city, territory_city)));

ALTER TABLE riskatlas.incident_status ENABLE ROW LEVEL SECURITY;
CREATE POLICY involved_read ON riskatlas.incident_status FOR SELECT
    USING ((SELECT riskatlas.actor_duty_scope()) = '*'
           OR riskatlas.incident_involves(incident_id, (SELECT riskatlas.actor_city())));

-- ---------------------------------------------------------------------------------------------------
-- Notices: one message per addressed jurisdiction and CAP message (Alert, then Update, then Cancel).
-- `city` is the addressed city (the jurisdiction itself, or a county's city): only its users acknowledge.
CREATE TABLE riskatlas.notice (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id      bigint NOT NULL REFERENCES riskatlas.incident (id),
    jurisdiction     text NOT NULL,
    jurisdiction_level text NOT NULL CHECK (jurisdiction_level IN ('city', 'county')),
    jurisdiction_name text NOT NULL,
    city             text NOT NULL,
    agency_id        bigint REFERENCES riskatlas.agency (id),
    msg_type         text NOT NULL DEFAULT 'Alert' CHECK (msg_type IN ('Alert', 'Update', 'Cancel')),
    cap_identifier   text NOT NULL UNIQUE,
    cap_references   text[] NOT NULL DEFAULT '{}',   -- identifiers of the earlier messages it refers to
    expected_arrival timestamptz,
    arrival_basis    text,
    bulletin         text NOT NULL,
    severity         text NOT NULL,
    cap_xml          text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by       text NOT NULL DEFAULT riskatlas.acting_user(),
    delivered_app_at timestamptz NOT NULL DEFAULT clock_timestamp(),   -- in the application: at once
    ack_due_at       timestamptz,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    acknowledged_via text CHECK (acknowledged_via IN ('api', 'link')),
    ack_token_sha256 text,
    overdue_at       timestamptz,
    resent           integer NOT NULL DEFAULT 0
);
CREATE INDEX notice_incident ON riskatlas.notice (incident_id, city);
CREATE INDEX notice_due ON riskatlas.notice (ack_due_at) WHERE acknowledged_at IS NULL AND msg_type <> 'Cancel';

-- Deliveries: one row per notice and outside channel, picked by workers (FOR UPDATE SKIP LOCKED),
-- retried with backoff; a failure leaves the row queued with its last error, never drops it.
CREATE TABLE riskatlas.delivery (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice_id     bigint NOT NULL REFERENCES riskatlas.notice (id),
    channel       text NOT NULL CHECK (channel IN ('email', 'webhook')),
    target        text NOT NULL,
    status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'delivered')),
    attempts      integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_error    text,
    delivered_at  timestamptz,
    reason        text NOT NULL DEFAULT 'notice' CHECK (reason IN ('notice', 'resend')),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX delivery_due ON riskatlas.delivery (next_attempt_at) WHERE status = 'queued';
CREATE INDEX delivery_notice ON riskatlas.delivery (notice_id);

-- A new notice queues one delivery per channel its agency has (the owner reads the contacts), and wakes
-- the workers and the live streams.
CREATE FUNCTION riskatlas.notice_after_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
BEGIN
    INSERT INTO riskatlas.delivery (notice_id, channel, target)
    SELECT n.id, c.channel, c.target
    FROM new_rows n JOIN riskatlas.agency a ON a.id = n.agency_id
    CROSS JOIN LATERAL (VALUES ('email', a.duty_email), ('webhook', a.webhook_url)) c (channel, target)
    WHERE c.target IS NOT NULL;
    PERFORM pg_notify('riskatlas_delivery', '');
    PERFORM pg_notify('riskatlas_notice', json_build_object('incident', n.incident_id, 'notice', n.id,
                                                            'city', n.city, 'msg_type', n.msg_type)::text)
    FROM new_rows n;
    RETURN NULL;
END $$;
CREATE TRIGGER notice_after_insert AFTER INSERT ON riskatlas.notice
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.notice_after_insert();

-- Only the acknowledgement of a notice changes, once, and only to the acting user and now.
CREATE FUNCTION riskatlas.notice_before_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
BEGIN
    IF session_user <> current_user AND coalesce(current_setting('riskatlas.ctx', true), '') <> ''
       AND NEW.acknowledged_via IS NOT DISTINCT FROM OLD.acknowledged_via THEN
        -- a client's acknowledgement: who and when come from the database, not from the request
        IF OLD.acknowledged_at IS NOT NULL THEN
            RAISE EXCEPTION 'notice % was acknowledged already', OLD.id USING ERRCODE = '55000';
        END IF;
        NEW.acknowledged_at := clock_timestamp();
        NEW.acknowledged_by := riskatlas.acting_user();
        NEW.acknowledged_via := 'api';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER notice_before_update BEFORE UPDATE ON riskatlas.notice
    FOR EACH ROW EXECUTE FUNCTION riskatlas.notice_before_update();

ALTER TABLE riskatlas.notice ENABLE ROW LEVEL SECURITY;
CREATE POLICY involved_read ON riskatlas.notice FOR SELECT
    USING ((SELECT riskatlas.actor_duty_scope()) = '*'
           OR riskatlas.incident_involves(incident_id, (SELECT riskatlas.actor_city())));
-- notices are written by the duty officer who opens or updates an incident it may update
CREATE POLICY duty_insert ON riskatlas.notice FOR INSERT
    WITH CHECK ((SELECT riskatlas.actor_role()) = 'admin'
                OR ((SELECT riskatlas.actor_role()) = 'duty' AND EXISTS (
                    SELECT 1 FROM riskatlas.incident i WHERE i.id = incident_id
                      AND (SELECT riskatlas.actor_city()) IN (i.opened_city, i.territory_city))));
-- only the addressed city acknowledges (its duty officers and stewards; administrators too)
CREATE POLICY addressed_ack ON riskatlas.notice FOR UPDATE
    USING ((SELECT riskatlas.actor_duty_scope()) = '*' OR city = (SELECT riskatlas.actor_duty_scope()))
    WITH CHECK ((SELECT riskatlas.actor_duty_scope()) = '*' OR city = (SELECT riskatlas.actor_duty_scope()));

ALTER TABLE riskatlas.delivery ENABLE ROW LEVEL SECURITY;
CREATE POLICY involved_read ON riskatlas.delivery FOR SELECT
    USING ((SELECT riskatlas.actor_duty_scope()) = '*' OR EXISTS (
        SELECT 1 FROM riskatlas.notice n WHERE n.id = notice_id));   -- the notice's own policy decides

-- The one-time link of an e-mail: acknowledges the notice whose token it carries, once (callable by
-- the application role without a key: the token is the proof).  Returns the notice id, or NULL.
CREATE FUNCTION riskatlas.acknowledge_by_token(p_token text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE nid bigint;
BEGIN
    IF p_token IS NULL OR length(p_token) NOT BETWEEN 20 AND 128 THEN
        RETURN NULL;
    END IF;
    UPDATE riskatlas.notice n
       SET acknowledged_at = clock_timestamp(), acknowledged_via = 'link', ack_token_sha256 = NULL,
           acknowledged_by = coalesce((SELECT 'link:' || a.duty_email FROM riskatlas.agency a WHERE a.id = n.agency_id),
                                      'link')
     WHERE n.ack_token_sha256 = encode(public.digest(p_token, 'sha256'), 'hex') AND n.acknowledged_at IS NULL
    RETURNING n.id INTO nid;
    RETURN nid;
END $$;
REVOKE ALL ON FUNCTION riskatlas.acknowledge_by_token(text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------------
-- The consultation log (会商): append-only.  Who and which city come from the verified actor.
CREATE TABLE riskatlas.consultation_entry (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES riskatlas.incident (id),
    kind        text NOT NULL CHECK (kind IN ('message', 'decision', 'measurement', 'file')),
    body        text NOT NULL DEFAULT '' CHECK (length(body) <= 20000),
    corrects    bigint REFERENCES riskatlas.consultation_entry (id),
    measurement jsonb,
    file_name   text,
    file_type   text,
    file_size   integer CHECK (file_size IS NULL OR file_size BETWEEN 0 AND 10485760),
    file_sha256 text,
    file_bytes  bytea,
    posted_by   text NOT NULL,
    posted_city text NOT NULL,
    posted_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX consultation_incident ON riskatlas.consultation_entry (incident_id, posted_at);

CREATE FUNCTION riskatlas.consultation_before_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE a riskatlas.actor_t := CASE WHEN coalesce(current_setting('riskatlas.ctx', true), '') = ''
                                    THEN ROW(NULL, NULL, NULL, NULL)::riskatlas.actor_t ELSE riskatlas.actor() END;
BEGIN
    NEW.posted_by := riskatlas.acting_user();
    NEW.posted_at := clock_timestamp();
    IF a.role IS NOT NULL AND a.role <> 'admin' THEN
        NEW.posted_city := a.city;
    END IF;
    IF NEW.corrects IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM riskatlas.consultation_entry e WHERE e.id = NEW.corrects AND e.incident_id = NEW.incident_id) THEN
        RAISE EXCEPTION 'entry % corrects entry %, which is not in incident %', NEW.id, NEW.corrects, NEW.incident_id
              USING ERRCODE = '23503';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER consultation_before_insert BEFORE INSERT ON riskatlas.consultation_entry
    FOR EACH ROW EXECUTE FUNCTION riskatlas.consultation_before_insert();

-- Nothing in the log is changed or deleted, by anyone: corrections are new entries.
CREATE FUNCTION riskatlas.consultation_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the consultation log is append-only: post a correction that refers to entry % instead',
          coalesce(OLD.id::text, '(all)') USING ERRCODE = '42501';
END $$;
CREATE TRIGGER consultation_no_update BEFORE UPDATE OR DELETE ON riskatlas.consultation_entry
    FOR EACH ROW EXECUTE FUNCTION riskatlas.consultation_append_only();
CREATE TRIGGER consultation_no_truncate BEFORE TRUNCATE ON riskatlas.consultation_entry
    FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.consultation_append_only();

ALTER TABLE riskatlas.consultation_entry ENABLE ROW LEVEL SECURITY;
CREATE POLICY involved_read ON riskatlas.consultation_entry FOR SELECT
    USING ((SELECT riskatlas.actor_duty_scope()) = '*'
           OR riskatlas.incident_involves(incident_id, (SELECT riskatlas.actor_city())));
CREATE POLICY involved_insert ON riskatlas.consultation_entry FOR INSERT
    WITH CHECK ((SELECT riskatlas.actor_role()) = 'admin'
                OR ((SELECT riskatlas.actor_role()) IN ('duty', 'steward', 'analyst', 'inspector')
                    AND posted_city = (SELECT riskatlas.actor_city())
                    AND riskatlas.incident_involves(incident_id, (SELECT riskatlas.actor_city()))));
