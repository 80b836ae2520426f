-- A row as JSON without PostGIS's per-value catalogue lookup.
--
-- The history (keep_history_statement) and the tile notes (note_tile_change) turned each row into JSON
-- with to_jsonb(row). For a geometry that calls PostGIS's cast jsonb(geometry), which looks up the SRID's
-- short name in spatial_ref_sys on every call (the cast is called without the cache an ordinary function
-- call keeps): about 0.1-0.35 ms a geometry, against 5 µs for ST_AsGeoJSON, whose cache lasts the statement
-- (measured on 100,000 risk sources: 35.0 s against 0.5 s, load average 7). A load of a million sources
-- paid it once a row, grading twice.
--
-- riskatlas.row_jsonb_sql(table, alias) gives the expression of the same JSON built column by column, the
-- geometry columns written by ST_AsGeoJSON(g, 15, 2): the cast's own precision (15 digits) and its short
-- CRS member ("EPSG:4326"), so the JSON is identical to to_jsonb(row) (checked on every layer of the demo
-- by tests/layers/test_history_json.py). Columns go in chunks of 40 pairs: jsonb_build_object takes at
-- most 100 arguments.

CREATE FUNCTION riskatlas.row_jsonb_sql(rel regclass, alias text) RETURNS text
LANGUAGE sql STABLE SET search_path = riskatlas, public AS $$
    SELECT '(' || string_agg('jsonb_build_object(' || c.pairs || ')', ' || ' ORDER BY c.grp) || ')'
    FROM (SELECT a.grp, string_agg(format('%L, %s', a.attname,
                  CASE WHEN a.atttypid = 'geometry'::regtype
                       THEN format('ST_AsGeoJSON(%I.%I, 15, 2)::jsonb', alias, a.attname)
                       ELSE format('%I.%I', alias, a.attname) END), ', ' ORDER BY a.attnum) AS pairs
          FROM (SELECT attname, atttypid, attnum, (row_number() OVER (ORDER BY attnum) - 1) / 40 AS grp
                FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped) a
          GROUP BY a.grp) c
$$;

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
    j_new text := riskatlas.row_jsonb_sql(TG_RELID, 'n');
    j_old text := riskatlas.row_jsonb_sql(TG_RELID, 'o');
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format($q$INSERT INTO riskatlas.row_history
                (layer, key, op, old_row, new_row, changed_by, acting_role, acting_city, batch_id, geom, geom_m)
            SELECT %L, n.key, 'insert', NULL, %s, $1, $2, $3, $4, %s, ST_Transform(%s, 4549)
            FROM new_rows n$q$, TG_TABLE_NAME, j_new, g_new, g_new)
            USING who, a.role, a.city, batch;
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE format($q$INSERT INTO riskatlas.row_history
                (layer, key, op, old_row, new_row, changed_by, acting_role, acting_city, batch_id, geom, geom_m,
                 changed)
            SELECT %1$L, o.key, 'update', oj, nj, $1, $2, $3, $4, g.g, ST_Transform(g.g, 4549),
                   riskatlas.history_changed(oj, nj)
            FROM old_rows o JOIN new_rows n USING (id)
            CROSS JOIN LATERAL (SELECT %4$s AS oj, %5$s AS nj) j
            CROSS JOIN LATERAL (SELECT CASE WHEN %3$s IS NOT DISTINCT FROM %2$s THEN %2$s
                                            ELSE ST_Collect(%3$s, %2$s) END AS g) g
            WHERE oj IS DISTINCT FROM nj$q$, TG_TABLE_NAME, g_new, g_old, j_old, j_new)
            USING who, a.role, a.city, batch;
    ELSE
        EXECUTE format($q$INSERT INTO riskatlas.row_history
                (layer, key, op, old_row, new_row, changed_by, acting_role, acting_city, batch_id, geom, geom_m)
            SELECT %L, o.key, 'delete', %s, NULL, $1, $2, $3, $4, %s, ST_Transform(%s, 4549)
            FROM old_rows o$q$, TG_TABLE_NAME, j_old, g_old, g_old)
            USING who, a.role, a.city, batch;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION riskatlas.note_tile_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE
    cells text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO riskatlas.tile_change (layer, extent)
        VALUES (TG_TABLE_NAME, ST_MakeEnvelope(-20037508.342789244, -20037508.342789244,
                                               20037508.342789244, 20037508.342789244, 3857));
        RETURN NULL;
    END IF;
    -- the shapes touched: old and new (an update, in tables with an id, only where the row changed)
    cells := CASE
        WHEN TG_OP = 'INSERT' THEN 'SELECT n.geom FROM new_rows n'
        WHEN TG_OP = 'DELETE' THEN 'SELECT o.geom FROM old_rows o'
        WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = TG_RELID AND attname = 'id' AND attnum > 0
                                                  AND NOT attisdropped)
            THEN format('SELECT g FROM old_rows o JOIN new_rows n USING (id), LATERAL (VALUES (o.geom), (n.geom)) v(g)
                  WHERE %s IS DISTINCT FROM %s', riskatlas.row_jsonb_sql(TG_RELID, 'o'),
                        riskatlas.row_jsonb_sql(TG_RELID, 'n'))
        ELSE 'SELECT o.geom FROM old_rows o UNION ALL SELECT n.geom FROM new_rows n' END;
    EXECUTE format($q$INSERT INTO riskatlas.tile_change (layer, extent)
        SELECT %L, ST_TileEnvelope(14, tx, ty)
        FROM (SELECT DISTINCT riskatlas.z14_col(ST_X(g)) AS tx, riskatlas.z14_row(ST_Y(g)) AS ty
              FROM (%s) s(g) WHERE GeometryType(g) = 'POINT') p
        UNION ALL
        SELECT %L, ST_MakeEnvelope(ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), 3857)
        FROM (SELECT ST_Transform(ST_Envelope(g), 3857) AS e FROM (%s) s(g) WHERE GeometryType(g) <> 'POINT') b
        $q$, TG_TABLE_NAME, cells, TG_TABLE_NAME, cells);
    RETURN NULL;
END $$;

-- The history is not a layer and no tile shows it: 0015 gave every table with a `geom` its tile-change
-- triggers, the history's included, so each history row noted a tile change too (14.8 s of a
-- million-row load's 297 s history insert, load average 9).
DROP TRIGGER row_history_tiles_insert ON riskatlas.row_history;
DROP TRIGGER row_history_tiles_update ON riskatlas.row_history;
DROP TRIGGER row_history_tiles_delete ON riskatlas.row_history;
DROP TRIGGER row_history_tiles_truncate ON riskatlas.row_history;
