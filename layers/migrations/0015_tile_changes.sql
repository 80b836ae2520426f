-- Where each layer changed, for the tile cache (services.tiles): a cached tile stays good while no change
-- of its layers that the tile's snapshot did not see touches the tile's envelope (with the tile's buffer).
-- Changes are compared by transaction against the snapshot the tile was made in, not by a counter: a
-- change that took a lower number but committed after the tile was made is still seen as newer.
--
-- Every insert, update, delete or truncate of a layer table writes, in the same statement, the cells it
-- touched: for points the z14 tile holding the old and the new position (one row per distinct cell, so a
-- load of a million points writes a few thousand rows), for lines and areas the envelope of the old and
-- the new shape (a polygon even for a straight line along a meridian); a truncate touches the whole world. An update that changes nothing writes nothing.
-- The application role cannot read the table; it asks riskatlas.tile_version() and riskatlas.tile_fresh().

CREATE TABLE riskatlas.tile_change (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer      text NOT NULL,
    extent     geometry(Polygon, 3857) NOT NULL,
    xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tile_change_extent ON riskatlas.tile_change USING gist (extent);
CREATE INDEX tile_change_xid ON riskatlas.tile_change (xid);

-- The cache's epoch: a database restored to an earlier time, or a copy, must not trust tiles cached
-- before (`riskatlas db restore` draws a new token).  `pruned_through`: changes of transactions up to this
-- one are gone, so only tiles whose snapshot saw all of them are still known to be good.
CREATE TABLE riskatlas.tile_epoch (
    only_row       boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    token          uuid NOT NULL DEFAULT gen_random_uuid(),
    pruned_through xid8 NOT NULL DEFAULT '0'
);
INSERT INTO riskatlas.tile_epoch DEFAULT VALUES;

-- The column and row of the z14 Web Mercator tile holding a longitude / latitude (the tile grid's
-- formulas, no per-row transform).
CREATE FUNCTION riskatlas.z14_col(lon double precision) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT least(greatest(floor((lon + 180.0) / 360.0 * 16384)::int, 0), 16383)
$$;
CREATE FUNCTION riskatlas.z14_row(lat double precision) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT least(greatest(floor((1.0 - ln(tan(radians(greatest(least(lat, 85.0511), -85.0511)))
                                           + 1.0 / cos(radians(greatest(least(lat, 85.0511), -85.0511)))) / pi())
                                / 2.0 * 16384)::int, 0), 16383)
$$;

CREATE FUNCTION riskatlas.note_tile_change() RETURNS trigger
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
            THEN 'SELECT g FROM old_rows o JOIN new_rows n USING (id), LATERAL (VALUES (o.geom), (n.geom)) v(g)
                  WHERE to_jsonb(o) IS DISTINCT FROM to_jsonb(n)'
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

-- Every table with a geometry `geom` notes its changes (the layers, boundaries included, and what is derived
-- from them; tiles ask only for their own layers).
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
             WHERE s.nspname = 'riskatlas' AND c.relkind = 'r'
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'geom'
                                                          AND a.attnum > 0 AND NOT a.attisdropped)
             ORDER BY 1
    LOOP
        EXECUTE format($f$CREATE TRIGGER %1$s_tiles_insert AFTER INSERT ON riskatlas.%1$s
                         REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.note_tile_change()$f$, t);
        EXECUTE format($f$CREATE TRIGGER %1$s_tiles_update AFTER UPDATE ON riskatlas.%1$s
                         REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.note_tile_change()$f$, t);
        EXECUTE format($f$CREATE TRIGGER %1$s_tiles_delete AFTER DELETE ON riskatlas.%1$s
                         REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
                         EXECUTE FUNCTION riskatlas.note_tile_change()$f$, t);
        EXECUTE format($f$CREATE TRIGGER %1$s_tiles_truncate AFTER TRUNCATE ON riskatlas.%1$s
                         FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.note_tile_change()$f$, t);
    END LOOP;
END $$;

-- The version a tile made in this statement is of: the epoch's token and the statement's snapshot.
CREATE FUNCTION riskatlas.tile_version(OUT token uuid, OUT snapshot pg_snapshot)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = riskatlas, public AS $$
    SELECT e.token, pg_current_snapshot() FROM riskatlas.tile_epoch e
$$;

-- Whether a tile of `layers` made at (`token`, `snapshot`) is still good: same epoch, every pruned change
-- seen by it, and no change of those layers it did not see within `margin` (a share of the tile's width).
-- Transactions before the snapshot's xmin were all seen (the xid index limits the search to later ones).
CREATE FUNCTION riskatlas.tile_fresh(p_token uuid, p_snapshot pg_snapshot, p_layers text[], z int, x int, y int,
                                     margin double precision) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = riskatlas, public AS $$
    SELECT e.token = p_token AND (e.pruned_through = '0' OR pg_snapshot_xmin(p_snapshot) > e.pruned_through)
       AND NOT EXISTS (SELECT 1 FROM riskatlas.tile_change c
                       WHERE c.xid >= pg_snapshot_xmin(p_snapshot) AND NOT pg_visible_in_snapshot(c.xid, p_snapshot)
                         AND c.layer = ANY (p_layers)
                         AND c.extent && ST_TileEnvelope(z, x, y, margin => margin))
    FROM riskatlas.tile_epoch e
$$;

-- Forget changes older than `keep`: tiles whose snapshot did not see all of them are then made again.
CREATE FUNCTION riskatlas.prune_tile_changes(keep interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE
    upto xid8;
    n    bigint;
BEGIN
    SELECT max(xid) INTO upto FROM riskatlas.tile_change WHERE changed_at < now() - keep;
    IF upto IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM riskatlas.tile_change WHERE xid <= upto;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE riskatlas.tile_epoch SET pruned_through = greatest(pruned_through, upto);
    RETURN n;
END $$;

-- A new epoch: every cached tile is made again (after a restore).
CREATE FUNCTION riskatlas.new_tile_epoch() RETURNS uuid
LANGUAGE sql SECURITY DEFINER SET search_path = riskatlas, public AS $$
    UPDATE riskatlas.tile_epoch SET token = gen_random_uuid() RETURNING token
$$;

REVOKE ALL ON FUNCTION riskatlas.tile_version(), riskatlas.tile_fresh(uuid, pg_snapshot, text[], int, int, int,
    double precision), riskatlas.prune_tile_changes(interval), riskatlas.new_tile_epoch() FROM PUBLIC;
