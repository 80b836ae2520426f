-- Risk sources counted per Web Mercator cell, kept in the same transaction as every write of risk_source, so
-- that a binned vector tile (services/web/ogc/mvt.py, `bins-above`) of a low zoom reads a few thousand
-- counts instead of aggregating every point of the tile (seconds at a million sources).
--
-- The cells are those of the bins: a tile of zoom z is cut into 64 x 64 cells (64 MVT units of 4096), so a
-- cell of zoom z is one of 2^(z+6) per side of the world.  Cell (tx * 64 + i, ty * 64 + j) of zoom z is cell
-- (i, j) of tile (tx, ty).  Each zoom from 0 to riskatlas.risk_source_grid_max_zoom() is kept (a tile reads
-- exactly its own rows); a cell's index at zoom z - 1 is its index at zoom z divided by two, so the coarser
-- zooms are summed from the finer ones.  The column and row of a point are computed with the very formulas
-- of the point bins (longitude and Mercator latitude scaled by a power of two, which is exact in floating
-- point), so the counts of a tile read from the grid equal those aggregated from its points.
--
-- A row counts the sources of a cell by the fields the map colours and filters by: city_code, category and
-- risk_level (NULL: not graded yet).  They are public fields of the catalogue, and risk_source is readable
-- row by row by every role (policy read_all, migration 0002), so the counts show nothing the points do not;
-- tests/layers/test_risk_source_grid.py fails if either changes.  The application role reads the table
-- (layers.grants) and cannot write it: only the owner's trigger does.
--
-- Writes: statement-level triggers with transition tables, generic on risk_source (a load, an upload, an
-- edit, a grading run: whatever changes a position, a city, a category or a level).  An update counts only
-- the rows where one of those changed.  Counts that fall to zero are removed.

CREATE TABLE riskatlas.risk_source_grid (
    z          smallint NOT NULL,
    tx         integer  NOT NULL,
    ty         integer  NOT NULL,
    i          smallint NOT NULL,
    j          smallint NOT NULL,
    city_code  text,
    category   text,
    risk_level text,
    n          integer  NOT NULL,
    CONSTRAINT risk_source_grid_cell UNIQUE NULLS NOT DISTINCT (z, tx, ty, i, j, city_code, category, risk_level)
) WITH (fillfactor = 80);  -- room for the updates of counts in place (n is in no index)

-- The deepest zoom kept.  Deeper tiles hold few enough sources to be binned from the points; keep
-- services/web/ogc/mvt.py BIN_GRIDS in step (a test compares them).
CREATE FUNCTION riskatlas.risk_source_grid_max_zoom() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 8 $$;

-- The statement that adds the rows of `pts` (a query giving lon, lat, city_code, category, risk_level and
-- d: +1 for a source that arrives, -1 for one that leaves) to the grid, and returns the ctids of the rows
-- whose count fell to zero.  Inserts are ordered by cell, so concurrent writers lock rows in one order.
CREATE FUNCTION riskatlas.risk_source_grid_sql(pts text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    top int := riskatlas.risk_source_grid_max_zoom();
    q   text;
    u   text;
BEGIN
    q := format($q$WITH l%s AS (
        SELECT floor((lon + 180.0) / 360.0 * %s)::int AS cx,
               floor((1.0 - ln(tan(radians(lat)) + 1.0 / cos(radians(lat))) / pi()) / 2.0 * %s)::int AS cy,
               city_code, category, risk_level, sum(d)::int AS n
        FROM (%s) p
        WHERE lon BETWEEN -180.0 AND 180.0 AND lat BETWEEN -85.0511287798066 AND 85.0511287798066
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(d) <> 0)$q$, top, 2 ^ (top + 6), 2 ^ (top + 6), pts);
    u := format('SELECT %s AS z, * FROM l%s', top, top);
    FOR z IN REVERSE top - 1 .. 0 LOOP
        q := q || format($q$, l%s AS (SELECT cx >> 1 AS cx, cy >> 1 AS cy, city_code, category, risk_level,
                                           sum(n)::int AS n FROM l%s GROUP BY 1, 2, 3, 4, 5)$q$, z, z + 1);
        u := u || format(' UNION ALL SELECT %s, * FROM l%s', z, z);
    END LOOP;
    RETURN q || format($q$, up AS (
        INSERT INTO riskatlas.risk_source_grid AS g (z, tx, ty, i, j, city_code, category, risk_level, n)
        SELECT z, cx >> 6, cy >> 6, cx & 63, cy & 63, city_code, category, risk_level, n
        FROM (%s) d WHERE n <> 0
        ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
        ON CONFLICT ON CONSTRAINT risk_source_grid_cell DO UPDATE SET n = g.n + excluded.n
        RETURNING g.ctid, g.n)
    SELECT array_agg(ctid) FROM up WHERE n = 0$q$, u);
END $$;

CREATE FUNCTION riskatlas.keep_risk_source_grid() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE
    zeros tid[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE riskatlas.risk_source_grid;
        RETURN NULL;
    END IF;
    EXECUTE riskatlas.risk_source_grid_sql(CASE TG_OP
        WHEN 'INSERT' THEN
            'SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, city_code, category, risk_level, 1 AS d FROM new_rows'
        WHEN 'DELETE' THEN
            'SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, city_code, category, risk_level, -1 AS d FROM old_rows'
        ELSE  -- an update: the rows whose position, city, category or level changed, out of the old cell, into the new
            'SELECT v.* FROM old_rows o JOIN new_rows n USING (id),
                    LATERAL (VALUES (ST_X(o.geom), ST_Y(o.geom), o.city_code, o.category, o.risk_level, -1),
                                    (ST_X(n.geom), ST_Y(n.geom), n.city_code, n.category, n.risk_level, 1))
                      v(lon, lat, city_code, category, risk_level, d)
             WHERE (ST_X(o.geom), ST_Y(o.geom), o.city_code, o.category, o.risk_level)
                   IS DISTINCT FROM (ST_X(n.geom), ST_Y(n.geom), n.city_code, n.category, n.risk_level)'
        END) INTO zeros;
    IF zeros IS NOT NULL THEN
        DELETE FROM riskatlas.risk_source_grid WHERE ctid = ANY (zeros) AND n = 0;
    END IF;
    RETURN NULL;
END $$;

-- The grid made again from the sources (after a restore of the table alone, or to check it): returns its rows.
CREATE FUNCTION riskatlas.rebuild_risk_source_grid() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
BEGIN
    LOCK TABLE riskatlas.risk_source IN SHARE MODE;  -- no write between the truncate and the count
    TRUNCATE riskatlas.risk_source_grid;
    EXECUTE riskatlas.risk_source_grid_sql(
        'SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, city_code, category, risk_level, 1 AS d
         FROM riskatlas.risk_source');
    RETURN (SELECT count(*) FROM riskatlas.risk_source_grid);
END $$;
REVOKE ALL ON FUNCTION riskatlas.rebuild_risk_source_grid() FROM PUBLIC;

CREATE TRIGGER risk_source_grid_insert AFTER INSERT ON riskatlas.risk_source
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.keep_risk_source_grid();
CREATE TRIGGER risk_source_grid_update AFTER UPDATE ON riskatlas.risk_source
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION riskatlas.keep_risk_source_grid();
CREATE TRIGGER risk_source_grid_delete AFTER DELETE ON riskatlas.risk_source
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.keep_risk_source_grid();
CREATE TRIGGER risk_source_grid_truncate AFTER TRUNCATE ON riskatlas.risk_source
    FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.keep_risk_source_grid();

SELECT riskatlas.rebuild_risk_source_grid();
