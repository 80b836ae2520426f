-- 0021: the change feed's "within N m of my border" true on the ground at any longitude (issue 17,
-- "The national scale").  (0019 and 0020 are other changes' numbers.)
--
-- Migration 0013 measured planar metres in EPSG:4549 (CGCS2000 3-degree Gauss-Kruger, CM 120E): under
-- 0.05 % off around Nanjing, but the scale factor grows away from 120E (1.15 at 80E 40N in Xinjiang, 1.47
-- at the far corner of China's envelope), so a 5 km subscription there reached only 4.3 km.  The GiST
-- index on (changed_at, geom_m) stays as it is (every writer of row_history keeps filling geom_m): it now
-- only finds candidates, within the planar reach that covers N true metres wherever the piece lies, and
-- the decision is the geodesic distance on the ellipsoid (geography) between the border piece and the
-- change.  So the border pieces carry their WGS84 line as well.

ALTER TABLE riskatlas.feed_border_piece ADD COLUMN geom geometry(LineString, 4326);

-- How far, in EPSG:4549 planar metres, a geodesic distance of within_m from the piece can reach: within_m
-- times an upper bound of the projection's scale factor over the piece's box grown by the reach (the
-- spherical cosh(x / R) with R = 6,300 km, 0.1 % added; checked against PROJ's factors over China's
-- envelope (73-135.5E, 3-54N): always above the true factor, by at most 0.7 %).  The scale factor is 1 or
-- more everywhere, so the planar distance of two places is never less than their geodesic distance.
CREATE FUNCTION riskatlas.gk120_reach(piece geometry, within_m double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT within_m * 1.001 * cosh((greatest(abs(ST_XMin(piece) - 500000), abs(ST_XMax(piece) - 500000))
                                    + 1.5 * within_m) / 6300000.0)
$$;

CREATE OR REPLACE FUNCTION riskatlas.rebuild_feed_border_piece() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
BEGIN
    DELETE FROM riskatlas.feed_border_piece;
    INSERT INTO riskatlas.feed_border_piece (code, geom_m, geom)
    SELECT b.code, d.geom, ST_Transform(d.geom, 4326)
    FROM riskatlas.admin_border b
    CROSS JOIN LATERAL ST_Subdivide(ST_Transform(b.geom, 4549), 256) AS s(g)
    CROSS JOIN LATERAL ST_Dump(s.g) AS d
    WHERE b.level = 'city' AND GeometryType(d.geom) = 'LINESTRING';
    RETURN NULL;
END $$;

UPDATE riskatlas.feed_border_piece SET geom = ST_Transform(geom_m, 4326);
ALTER TABLE riskatlas.feed_border_piece ALTER COLUMN geom SET NOT NULL;
