-- 0023: metric work in the UTM zone of the geometry at hand, not one projection for the whole region
-- (issue 17, "The national scale": nothing may assume the region's size).
--
-- The river snap found positions along a reach in a transverse Mercator centred on 118.5E: true within
-- 1e-4 around Nanjing, 1.15 times the ground in Xinjiang.  A UTM zone (WGS84, EPSG 32601-32660 north,
-- 32701-32760 south) keeps the scale within 0.9996-1.0010 inside its six degrees, and PostGIS keeps a
-- projection given by SRID for the session where one given as a PROJ string is built anew on every call.
CREATE FUNCTION riskatlas.utm_srid(g geometry) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN (ST_YMin(g) + ST_YMax(g)) / 2 < 0 THEN 32700 ELSE 32600 END
           + least(60, greatest(1, floor(((ST_XMin(g) + ST_XMax(g)) / 2 + 180) / 6)::integer + 1))
$$;
COMMENT ON FUNCTION riskatlas.utm_srid(geometry) IS
    'The SRID of the WGS84 UTM zone holding the centre of the bounding box of a lon/lat geometry';
