-- 0005: accounts and API keys in the database, a request context the database itself verifies, and
-- row history for every insert, update and delete with who (user, role, city), old and new.
--
-- Before this migration the policies trusted transaction settings (riskatlas.role, riskatlas.city)
-- that the application role could set itself, so its password alone held every city's write rights.
-- Now "who is asking" is a context string signed with a secret that only the schema owner can read:
--   * riskatlas.authenticate(key) (SECURITY DEFINER, callable by the application role) checks a
--     presented API key against its slow hash and returns a signed context;
--   * the owner (the CLI, batch jobs) may mint one with riskatlas.issue_context(...);
--   * riskatlas.actor() verifies the signature, the expiry and that the key is still valid (revocation
--     takes effect at once) every time a policy or trigger asks.
-- The application role may set riskatlas.ctx to anything, but only a signed context means anything.

CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;

CREATE TABLE riskatlas.account (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    role       text NOT NULL CHECK (role IN ('analyst', 'inspector', 'steward', 'admin')),
    city       text CHECK (city ~ '^[0-9]{6}$'),
    disabled   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- a steward acts for one city: an account without one would be a configuration error at every request
    CONSTRAINT steward_has_city CHECK (role <> 'steward' OR city IS NOT NULL)
);

CREATE TABLE riskatlas.api_key (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account    text NOT NULL REFERENCES riskatlas.account (name) ON DELETE CASCADE,
    label      text,
    lookup     text NOT NULL,  -- first 8 hex digits of sha256(key): narrows the candidates, reveals 32 bits
    hash       text NOT NULL,  -- bcrypt (pgcrypto crypt with gen_salt('bf'))
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_key_lookup ON riskatlas.api_key (lookup);
CREATE INDEX api_key_account ON riskatlas.api_key (account);

CREATE TABLE riskatlas.auth_secret (
    id     integer PRIMARY KEY CHECK (id = 1),
    secret bytea NOT NULL
);
INSERT INTO riskatlas.auth_secret VALUES (1, public.gen_random_bytes(32));

CREATE TYPE riskatlas.actor_t AS (name text, role text, city text, key_id bigint);

-- The signature of a context payload (owner only).
CREATE FUNCTION riskatlas.context_signature(payload text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT encode(public.hmac(convert_to(payload, 'UTF8'),
                              (SELECT secret FROM riskatlas.auth_secret WHERE id = 1), 'sha256'), 'hex')
$$;

-- A signed context for an actor: "v1:key_id:expires_epoch:user:role:city:signature" (owner only).
CREATE FUNCTION riskatlas.issue_context(p_user text, p_role text, p_city text, p_key bigint DEFAULT 0,
                                        p_ttl interval DEFAULT interval '10 minutes') RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE payload text;
BEGIN
    IF p_user IS NULL OR p_user !~ '^[A-Za-z0-9._@-]{1,64}$' THEN
        RAISE EXCEPTION 'user name % is not allowed in a context', p_user USING ERRCODE = '22023';
    END IF;
    IF p_role NOT IN ('public', 'analyst', 'inspector', 'steward', 'admin') THEN
        RAISE EXCEPTION 'role % is not known', p_role USING ERRCODE = '22023';
    END IF;
    IF p_role = 'steward' AND (p_city IS NULL OR p_city !~ '^[0-9]{6}$') THEN
        RAISE EXCEPTION 'a steward context needs a city code' USING ERRCODE = '22023';
    END IF;
    payload := concat_ws(':', 'v1', coalesce(p_key, 0)::text,
                         floor(extract(epoch FROM clock_timestamp() + p_ttl))::bigint::text,
                         p_user, p_role, coalesce(p_city, ''));
    RETURN payload || ':' || riskatlas.context_signature(payload);
END $$;

-- Check a presented API key; on success return the account and a signed context, else no row.
CREATE FUNCTION riskatlas.authenticate(presented text)
RETURNS TABLE (account text, role text, city text, key_id bigint, context text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE k record;
BEGIN
    IF presented IS NULL OR length(presented) NOT BETWEEN 8 AND 256 THEN
        RETURN;
    END IF;
    FOR k IN SELECT ak.id, ak.hash, a.name, a.role, a.city
             FROM riskatlas.api_key ak JOIN riskatlas.account a ON a.name = ak.account
             WHERE ak.lookup = left(encode(public.digest(presented, 'sha256'), 'hex'), 8)
               AND ak.revoked_at IS NULL AND (ak.expires_at IS NULL OR ak.expires_at > clock_timestamp())
               AND NOT a.disabled
    LOOP
        IF public.crypt(presented, k.hash) = k.hash THEN
            account := k.name; role := k.role; city := k.city; key_id := k.id;
            context := riskatlas.issue_context(k.name, k.role, k.city, k.id);
            RETURN NEXT;
            RETURN;
        END IF;
    END LOOP;
    -- the same slow hash when nothing matched, so timing does not tell a known lookup from an unknown one
    PERFORM public.crypt(presented, '$2a$08$5Wm9sV0CnRkq9D2bR3Wm7eJb1d8h5w3zVq4T3bJ2wJ8Vg6p5F8y9e');
    RETURN;
END $$;

-- Who acts in this transaction: verified from riskatlas.ctx on every call; anonymous without one.
-- An invalid, expired or revoked context is an error (SQLSTATE 28000), never a silent downgrade.
CREATE FUNCTION riskatlas.actor() RETURNS riskatlas.actor_t
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    ctx   text := current_setting('riskatlas.ctx', true);
    parts text[];
BEGIN
    IF ctx IS NULL OR ctx = '' THEN
        RETURN ROW('anonymous', 'public', NULL, NULL)::riskatlas.actor_t;
    END IF;
    parts := string_to_array(ctx, ':');
    IF coalesce(array_length(parts, 1), 0) <> 7 OR parts[1] <> 'v1' OR parts[2] !~ '^[0-9]{1,18}$'
       OR parts[3] !~ '^[0-9]{1,12}$' THEN
        RAISE EXCEPTION 'the request context is malformed' USING ERRCODE = '28000';
    END IF;
    IF riskatlas.context_signature(array_to_string(parts[1:6], ':')) <> parts[7] THEN
        RAISE EXCEPTION 'the request context is not signed by this database' USING ERRCODE = '28000';
    END IF;
    IF to_timestamp(parts[3]::bigint) < clock_timestamp() THEN
        RAISE EXCEPTION 'the request context has expired' USING ERRCODE = '28000';
    END IF;
    IF parts[2] <> '0' AND NOT EXISTS (
            SELECT 1 FROM riskatlas.api_key k JOIN riskatlas.account a ON a.name = k.account
            WHERE k.id = parts[2]::bigint AND k.revoked_at IS NULL
              AND (k.expires_at IS NULL OR k.expires_at > clock_timestamp()) AND NOT a.disabled) THEN
        RAISE EXCEPTION 'the API key of this request was revoked or has expired' USING ERRCODE = '28000';
    END IF;
    RETURN ROW(parts[4], parts[5], nullif(parts[6], ''), parts[2]::bigint)::riskatlas.actor_t;
END $$;

-- Policies call these through scalar subqueries, so each statement verifies the context once.
CREATE FUNCTION riskatlas.actor_role() RETURNS text LANGUAGE sql STABLE AS $$ SELECT (riskatlas.actor()).role $$;
CREATE FUNCTION riskatlas.actor_city() RETURNS text LANGUAGE sql STABLE AS $$ SELECT (riskatlas.actor()).city $$;
-- The schema owner's own sessions (batch grading, the CLI) see everything; others by their role.
CREATE FUNCTION riskatlas.actor_sees_restricted() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT session_user = (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'riskatlas')
           OR (riskatlas.actor()).role IN ('analyst', 'steward', 'admin')
$$;

-- The city whose rows this actor may write: every city for an administrator ('*'), one for a steward.
CREATE FUNCTION riskatlas.actor_write_scope() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE a.role WHEN 'admin' THEN '*' WHEN 'steward' THEN a.city END FROM riskatlas.actor() a
$$;

-- Kept for callers of 0002: the acting user is the verified actor, or the database user without one.
CREATE OR REPLACE FUNCTION riskatlas.acting_user() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF coalesce(current_setting('riskatlas.ctx', true), '') = '' THEN
        RETURN session_user::text;
    END IF;
    RETURN (riskatlas.actor()).name;
END $$;

CREATE OR REPLACE FUNCTION riskatlas.may_write(owner text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE riskatlas.actor_write_scope() WHEN '*' THEN true ELSE owner = riskatlas.actor_write_scope() END
$$;

-- The city a point lies in, by the subdivided counties (the lower code on a shared edge, as the loader).
CREATE FUNCTION riskatlas.city_at(g geometry) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT a.parent_code FROM riskatlas.admin_piece p JOIN riskatlas.admin_area a ON a.code = p.code
    WHERE p.level = 'county' AND ST_Intersects(p.geom, g) ORDER BY p.code LIMIT 1
$$;

-- Row history: who (user, role, city), when, which batch, old and new, for inserts too.
ALTER TABLE riskatlas.row_history
    ALTER COLUMN old_row DROP NOT NULL,
    ADD COLUMN new_row jsonb,
    ADD COLUMN acting_role text,
    ADD COLUMN acting_city text;
ALTER TABLE riskatlas.row_history DROP CONSTRAINT row_history_op_check;
ALTER TABLE riskatlas.row_history ADD CONSTRAINT row_history_op_check CHECK (op IN ('insert', 'update', 'delete'));
ALTER TABLE riskatlas.load_batch ALTER COLUMN loaded_by SET DEFAULT riskatlas.acting_user();

-- Statement-level triggers with transition tables: the actor is verified once per statement and the
-- history written set-based, so a million-row load pays one INSERT ... SELECT, not a million calls.
CREATE FUNCTION riskatlas.keep_history_statement() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE
    who   text := riskatlas.acting_user();
    a     riskatlas.actor_t := CASE WHEN coalesce(current_setting('riskatlas.ctx', true), '') = ''
                                    THEN ROW(NULL, NULL, NULL, NULL)::riskatlas.actor_t
                                    ELSE riskatlas.actor() END;
    batch bigint := nullif(current_setting('riskatlas.batch_id', true), '')::bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format($q$INSERT INTO riskatlas.row_history
                (layer, key, op, old_row, new_row, changed_by, acting_role, acting_city, batch_id)
            SELECT %L, n.key, 'insert', NULL, to_jsonb(n), $1, $2, $3, $4 FROM new_rows n$q$, TG_TABLE_NAME)
            USING who, a.role, a.city, batch;
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE format($q$INSERT INTO riskatlas.row_history
                (layer, key, op, old_row, new_row, changed_by, acting_role, acting_city, batch_id)
            SELECT %L, o.key, 'update', to_jsonb(o), to_jsonb(n), $1, $2, $3, $4
            FROM old_rows o JOIN new_rows n USING (id)
            WHERE to_jsonb(o) IS DISTINCT FROM to_jsonb(n)$q$, TG_TABLE_NAME)
            USING who, a.role, a.city, batch;
    ELSE
        EXECUTE format($q$INSERT INTO riskatlas.row_history
                (layer, key, op, old_row, new_row, changed_by, acting_role, acting_city, batch_id)
            SELECT %L, o.key, 'delete', to_jsonb(o), NULL, $1, $2, $3, $4 FROM old_rows o$q$, TG_TABLE_NAME)
            USING who, a.role, a.city, batch;
    END IF;
    RETURN NULL;
END $$;

-- A row's owner is the city it lies in: a non-administrator cannot write a row owned by one city
-- while it lies in another (planting rows in a neighbour's territory), whatever the file says.
CREATE FUNCTION riskatlas.check_owner_statement() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE bad record;
BEGIN
    -- administrators; the schema owner's own batch jobs (inside this SECURITY DEFINER function
    -- current_user is the owner); superusers
    IF riskatlas.actor_write_scope() = '*' OR session_user = current_user
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) THEN
        RETURN NULL;
    END IF;
    EXECUTE format($q$SELECT n.key, n.owner_city, riskatlas.city_at(%s) AS lies_in FROM new_rows n
                      WHERE n.owner_city IS DISTINCT FROM riskatlas.city_at(%s) LIMIT 1$q$,
                   CASE WHEN TG_ARGV[0] = 'point' THEN 'n.geom' ELSE 'ST_PointOnSurface(n.geom)' END,
                   CASE WHEN TG_ARGV[0] = 'point' THEN 'n.geom' ELSE 'ST_PointOnSurface(n.geom)' END)
        INTO bad;
    IF bad.key IS NOT NULL THEN
        RAISE EXCEPTION 'row % is owned by city % but lies in city %', bad.key, bad.owner_city,
              coalesce(bad.lies_in, '(none)') USING ERRCODE = '42501';
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE t text;
DECLARE kind text;
BEGIN
    FOREACH t IN ARRAY ARRAY['risk_source', 'water_reserve', 'protection_zone', 'protected_area',
                             'river', 'monitoring_station'] LOOP
        EXECUTE format('DROP TRIGGER %1$s_history ON riskatlas.%1$s', t);
        EXECUTE format('DROP TRIGGER %1$s_history_delete ON riskatlas.%1$s', t);
        EXECUTE format($f$CREATE TRIGGER %1$s_history_insert AFTER INSERT ON riskatlas.%1$s
                         REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.keep_history_statement()$f$, t);
        EXECUTE format($f$CREATE TRIGGER %1$s_history_update AFTER UPDATE ON riskatlas.%1$s
                         REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.keep_history_statement()$f$, t);
        EXECUTE format($f$CREATE TRIGGER %1$s_history_delete AFTER DELETE ON riskatlas.%1$s
                         REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.keep_history_statement()$f$, t);
        kind := CASE WHEN t IN ('risk_source', 'water_reserve', 'monitoring_station') THEN 'point' ELSE 'area' END;
        EXECUTE format($f$CREATE TRIGGER %1$s_owner_insert AFTER INSERT ON riskatlas.%1$s
                         REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.check_owner_statement(%2$L)$f$, t, kind);
        EXECUTE format($f$CREATE TRIGGER %1$s_owner_update AFTER UPDATE ON riskatlas.%1$s
                         REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.check_owner_statement(%2$L)$f$, t, kind);
        -- writes: a scalar subquery makes the actor a per-statement InitPlan instead of a per-row call
        EXECUTE format('DROP POLICY steward_write ON riskatlas.%s', t);
        EXECUTE format($f$CREATE POLICY scoped_insert ON riskatlas.%1$s FOR INSERT
                         WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*'
                                     OR owner_city = (SELECT riskatlas.actor_write_scope()))$f$, t);
        EXECUTE format($f$CREATE POLICY scoped_update ON riskatlas.%1$s FOR UPDATE
                         USING ((SELECT riskatlas.actor_write_scope()) = '*'
                                OR owner_city = (SELECT riskatlas.actor_write_scope()))
                         WITH CHECK ((SELECT riskatlas.actor_write_scope()) = '*'
                                     OR owner_city = (SELECT riskatlas.actor_write_scope()))$f$, t);
        EXECUTE format($f$CREATE POLICY scoped_delete ON riskatlas.%1$s FOR DELETE
                         USING ((SELECT riskatlas.actor_write_scope()) = '*'
                                OR owner_city = (SELECT riskatlas.actor_write_scope()))$f$, t);
    END LOOP;
END $$;

DROP FUNCTION riskatlas.keep_history();

-- Nothing in this migration is callable by PUBLIC unless granted (layers.migrate grants the app role
-- authenticate() and the actor functions; issue_context and context_signature stay the owner's).
REVOKE ALL ON FUNCTION riskatlas.context_signature(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION riskatlas.issue_context(text, text, text, bigint, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION riskatlas.authenticate(text) FROM PUBLIC;
