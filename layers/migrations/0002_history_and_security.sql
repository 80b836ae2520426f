-- 0002: row history for inventory layers, and row-level security scoping writes to a steward's city.
-- The application role is granted its privileges by layers.migrate (its name is a setting); the
-- policies below hold for every role that is not the table owner.

CREATE TABLE riskatlas.row_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer      text NOT NULL,
    key        text NOT NULL,
    op         text NOT NULL CHECK (op IN ('update', 'delete')),
    old_row    jsonb NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    changed_by text NOT NULL,
    batch_id   bigint
);
CREATE INDEX row_history_key ON riskatlas.row_history (layer, key, changed_at);

-- Who is acting, and for which city, travel as transaction-local settings set by riskatlas.
CREATE FUNCTION riskatlas.acting_user() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('riskatlas.user', true), ''), session_user::text)
$$;

CREATE FUNCTION riskatlas.may_write(owner text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE coalesce(current_setting('riskatlas.role', true), '')
        WHEN 'admin' THEN true
        WHEN 'steward' THEN owner IS NOT NULL AND owner = current_setting('riskatlas.city', true)
        ELSE false
    END
$$;

CREATE FUNCTION riskatlas.keep_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
BEGIN
    INSERT INTO riskatlas.row_history (layer, key, op, old_row, changed_by, batch_id)
    VALUES (TG_TABLE_NAME, OLD.key, lower(TG_OP), to_jsonb(OLD), riskatlas.acting_user(),
            nullif(current_setting('riskatlas.batch_id', true), '')::bigint);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['risk_source', 'water_reserve', 'protection_zone', 'protected_area',
                             'river', 'monitoring_station'] LOOP
        EXECUTE format($f$CREATE TRIGGER %1$s_history AFTER UPDATE ON riskatlas.%1$s
                         FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
                         EXECUTE FUNCTION riskatlas.keep_history()$f$, t);
        EXECUTE format($f$CREATE TRIGGER %1$s_history_delete AFTER DELETE ON riskatlas.%1$s
                         FOR EACH ROW EXECUTE FUNCTION riskatlas.keep_history()$f$, t);
        EXECUTE format('ALTER TABLE riskatlas.%s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY read_all ON riskatlas.%s FOR SELECT USING (true)', t);
        EXECUTE format($f$CREATE POLICY steward_write ON riskatlas.%1$s FOR ALL
                         USING (riskatlas.may_write(owner_city))
                         WITH CHECK (riskatlas.may_write(owner_city))$f$, t);
    END LOOP;
END $$;
