-- 0013: the change feed for neighbours (issue 11, DESIGN 11): the row history read by every role with
-- restricted fields filtered, located for distance filters, and cities' subscriptions that turn
-- matching changes into in-app alerts.
-- (0012 and 0014 are other changes' numbers.)
--
-- row_history stays private (layers.grants): the application role reads it only through the view
-- change_visible, owned by the schema owner, which drops the restricted fields of the catalogue
-- (table restricted_field, written from layers/catalogue.py by layers.grants after every upgrade)
-- from old and new for actors who may not see them, and hides an update whose only changed fields
-- are restricted, so that no diff reveals them.

-- Where a change happened (old and new location collected when a row moved) in WGS84, and the same in
-- the region's metric CRS, CGCS2000 / 3-degree Gauss-Kruger CM 120E (EPSG:4549; scale error under
-- 0.05 % over the region), for distance filters in metres that cost a planar distance per pair; and
-- which fields it changed (bookkeeping columns left out).
-- "A city's changes of one day within N m of its border" is answered from the border's side: a few
-- hundred border pieces each probe one GiST index on (changed_at, geom_m) (btree_gist), so the cost
-- follows the rows near the border that day, not the day's changes everywhere.
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;
ALTER TABLE riskatlas.row_history
    ADD COLUMN geom geometry(Geometry, 4326),
    ADD COLUMN geom_m geometry(Geometry, 4549),
    ADD COLUMN changed text[];

-- The city borders (admin_border, derived by services.hazards) in the metric CRS, cut into pieces of at
-- most 256 vertices: few enough that each probes the history once, short enough that a probe's
-- rectangle stays near the border.  Rebuilt by a statement trigger whenever the borders are.
CREATE TABLE riskatlas.feed_border_piece (
    code   text NOT NULL,
    geom_m geometry(LineString, 4549) NOT NULL
);
CREATE INDEX feed_border_piece_code ON riskatlas.feed_border_piece (code);
CREATE INDEX feed_border_piece_gist ON riskatlas.feed_border_piece USING gist (geom_m);

CREATE FUNCTION riskatlas.rebuild_feed_border_piece() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
BEGIN
    DELETE FROM riskatlas.feed_border_piece;
    INSERT INTO riskatlas.feed_border_piece (code, geom_m)
    SELECT b.code, d.geom
    FROM riskatlas.admin_border b
    CROSS JOIN LATERAL ST_Subdivide(ST_Transform(b.geom, 4549), 256) AS s(g)
    CROSS JOIN LATERAL ST_Dump(s.g) AS d
    WHERE b.level = 'city' AND GeometryType(d.geom) = 'LINESTRING';
    RETURN NULL;
END $$;
CREATE TRIGGER admin_border_feed_pieces AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON riskatlas.admin_border
    FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.rebuild_feed_border_piece();
INSERT INTO riskatlas.feed_border_piece (code, geom_m)
SELECT b.code, d.geom
FROM riskatlas.admin_border b
CROSS JOIN LATERAL ST_Subdivide(ST_Transform(b.geom, 4549), 256) AS s(g)
CROSS JOIN LATERAL ST_Dump(s.g) AS d
WHERE b.level = 'city' AND GeometryType(d.geom) = 'LINESTRING';

-- The columns that change with every write and say nothing of the feature.
CREATE FUNCTION riskatlas.history_changed(old_row jsonb, new_row jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(e.key ORDER BY e.key), '{}')
    FROM jsonb_each(new_row) e
    WHERE e.key NOT IN ('id', 'updated_at', 'updated_by', 'batch_id')
      AND e.value IS DISTINCT FROM old_row -> e.key
$$;

-- The location of a history row written before this migration, from its old and new rows' GeoJSON.
CREATE FUNCTION riskatlas.history_geom(old_row jsonb, new_row jsonb) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN old_row ? 'geom' AND new_row ? 'geom' AND old_row -> 'geom' IS DISTINCT FROM new_row -> 'geom'
            THEN ST_Collect(ST_GeomFromGeoJSON(old_row -> 'geom'), ST_GeomFromGeoJSON(new_row -> 'geom'))
        WHEN new_row ? 'geom' THEN ST_GeomFromGeoJSON(new_row -> 'geom')
        WHEN old_row ? 'geom' THEN ST_GeomFromGeoJSON(old_row -> 'geom')
    END
$$;

-- one rewrite of the existing history, then its indexes
UPDATE riskatlas.row_history SET
    geom = riskatlas.history_geom(old_row, new_row),
    geom_m = ST_Transform(riskatlas.history_geom(old_row, new_row), 4549),
    changed = CASE WHEN op = 'update' THEN riskatlas.history_changed(old_row, new_row) END;
CREATE INDEX row_history_changed_at ON riskatlas.row_history (changed_at);
CREATE INDEX row_history_time_geom_m ON riskatlas.row_history USING gist (changed_at, geom_m);

-- Tables without a geometry (inspections, cases) keep their history too, located nowhere.
CREATE OR REPLACE FUNCTION riskatlas.keep_history_statement() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE
    who   text := riskatlas.acting_user();
    a     riskatlas.actor_t := CASE WHEN coalesce(current_setting('riskatlas.ctx', true), '') = ''
                                    THEN ROW(NULL, NULL, NULL, NULL)::riskatlas.actor_t
                                    ELSE riskatlas.actor() END;
    batch bigint := nullif(current_setting('riskatlas.batch_id', true), '')::bigint;
    located boolean := EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = TG_RELID AND attname = 'geom'
                                                            AND attnum > 0 AND NOT attisdropped);
    g_new text := CASE WHEN located THEN 'n.geom' ELSE 'NULL::geometry' END;
    g_old text := CASE WHEN located THEN 'o.geom' ELSE 'NULL::geometry' END;
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format($q$INSERT INTO riskatlas.row_history
                (layer, key, op, old_row, new_row, changed_by, acting_role, acting_city, batch_id, geom, geom_m)
            SELECT %L, n.key, 'insert', NULL, to_jsonb(n), $1, $2, $3, $4, %2$s, ST_Transform(%2$s, 4549)
            FROM new_rows n$q$, TG_TABLE_NAME, g_new)
            USING who, a.role, a.city, batch;
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE format($q$INSERT INTO riskatlas.row_history
                (layer, key, op, old_row, new_row, changed_by, acting_role, acting_city, batch_id, geom, geom_m,
                 changed)
            SELECT %1$L, o.key, 'update', oj, nj, $1, $2, $3, $4, g.g, ST_Transform(g.g, 4549),
                   riskatlas.history_changed(oj, nj)
            FROM old_rows o JOIN new_rows n USING (id)
            CROSS JOIN LATERAL (SELECT to_jsonb(o) AS oj, to_jsonb(n) AS nj) j
            CROSS JOIN LATERAL (SELECT CASE WHEN %3$s IS NOT DISTINCT FROM %2$s THEN %2$s
                                            ELSE ST_Collect(%3$s, %2$s) END AS g) g
            WHERE oj IS DISTINCT FROM nj$q$, TG_TABLE_NAME, g_new, g_old)
            USING who, a.role, a.city, batch;
    ELSE
        EXECUTE format($q$INSERT INTO riskatlas.row_history
                (layer, key, op, old_row, new_row, changed_by, acting_role, acting_city, batch_id, geom, geom_m)
            SELECT %L, o.key, 'delete', to_jsonb(o), NULL, $1, $2, $3, $4, %2$s, ST_Transform(%2$s, 4549)
            FROM old_rows o$q$, TG_TABLE_NAME, g_old)
            USING who, a.role, a.city, batch;
    END IF;
    RETURN NULL;
END $$;

-- The restricted fields of each layer, as the catalogue declares them (written by layers.grants).
CREATE TABLE riskatlas.restricted_field (
    layer  text PRIMARY KEY,
    fields text[] NOT NULL
);

-- The history as a role may read it.  The actor checks are scalar subqueries (one InitPlan per query),
-- so the view stays simple: the planner inlines it and the history's indexes serve its filters.
-- `detail` is false when the actor may not see every changed field: the update is then listed only if
-- a visible field changed, with the restricted ones left out of old, new and changed.
CREATE VIEW riskatlas.change_visible AS
SELECT h.id, h.layer, h.key, h.op, h.changed_at, h.changed_by, h.acting_role, h.acting_city, h.batch_id,
       h.geom, h.geom_m,
       CASE WHEN (SELECT riskatlas.actor_sees_restricted()) OR r.fields IS NULL THEN h.old_row
            ELSE h.old_row - r.fields END AS old_row,
       CASE WHEN (SELECT riskatlas.actor_sees_restricted()) OR r.fields IS NULL THEN h.new_row
            ELSE h.new_row - r.fields END AS new_row,
       CASE WHEN (SELECT riskatlas.actor_sees_restricted()) OR r.fields IS NULL THEN h.changed
            ELSE ARRAY(SELECT c FROM unnest(h.changed) c WHERE c <> ALL (r.fields)) END AS changed,
       coalesce(h.new_row ->> 'city_code', h.old_row ->> 'city_code') AS city_code,
       coalesce(h.new_row ->> 'name', h.old_row ->> 'name') AS name
FROM riskatlas.row_history h
LEFT JOIN riskatlas.restricted_field r ON r.layer = h.layer
WHERE (SELECT riskatlas.actor_sees_restricted()) OR h.op <> 'update' OR r.fields IS NULL
      OR NOT (coalesce(h.changed, '{}') <@ r.fields);

-- HJ 941-2018 levels in order, for "this level or larger".
CREATE FUNCTION riskatlas.risk_level_rank(level text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE level WHEN 'general' THEN 1 WHEN 'larger' THEN 2 WHEN 'major' THEN 3 END::smallint
$$;

-- A city's standing question: "changes to <layer> rows of <min_level> or larger within <within_m> of
-- my border" (others_only: rows lying in another city).  A city manages its own.
CREATE TABLE riskatlas.feed_subscription (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    city        text NOT NULL CHECK (city ~ '^[0-9]{6}$'),
    layer       text NOT NULL DEFAULT 'risk_source',
    min_level   text CHECK (min_level IN ('general', 'larger', 'major')),
    within_m    double precision NOT NULL CHECK (within_m > 0 AND within_m <= 200000),
    others_only boolean NOT NULL DEFAULT true,
    label       text,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT riskatlas.acting_user(),
    CHECK (min_level IS NULL OR layer = 'risk_source')
);
CREATE INDEX feed_subscription_city ON riskatlas.feed_subscription (city);

-- One alert per (subscription, change): what a city has been told, and whether someone read it.
CREATE TABLE riskatlas.feed_alert (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    city            text NOT NULL,
    subscription_id bigint NOT NULL REFERENCES riskatlas.feed_subscription (id) ON DELETE CASCADE,
    history_id      bigint NOT NULL REFERENCES riskatlas.row_history (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    seen_at         timestamptz,
    seen_by         text,
    UNIQUE (subscription_id, history_id)
);
CREATE INDEX feed_alert_city ON riskatlas.feed_alert (city, seen_at, id);

-- How far the matching has read the history (one row).
CREATE TABLE riskatlas.feed_match_state (
    id              integer PRIMARY KEY CHECK (id = 1),
    last_history_id bigint NOT NULL DEFAULT 0,
    matched_at      timestamptz
);
INSERT INTO riskatlas.feed_match_state (id, last_history_id) VALUES (1, 0);

-- A city's steward or duty officer (migration 0012's actor_duty_scope) manages its subscriptions and alerts.
ALTER TABLE riskatlas.feed_subscription ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_city ON riskatlas.feed_subscription FOR ALL
    USING ((SELECT riskatlas.actor_duty_scope()) = '*' OR city = (SELECT riskatlas.actor_duty_scope()))
    WITH CHECK ((SELECT riskatlas.actor_duty_scope()) = '*' OR city = (SELECT riskatlas.actor_duty_scope()));

ALTER TABLE riskatlas.feed_alert ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_city_read ON riskatlas.feed_alert FOR SELECT
    USING ((SELECT riskatlas.actor_duty_scope()) = '*' OR city = (SELECT riskatlas.actor_duty_scope()));
CREATE POLICY own_city_seen ON riskatlas.feed_alert FOR UPDATE
    USING ((SELECT riskatlas.actor_duty_scope()) = '*' OR city = (SELECT riskatlas.actor_duty_scope()))
    WITH CHECK ((SELECT riskatlas.actor_duty_scope()) = '*' OR city = (SELECT riskatlas.actor_duty_scope()));
