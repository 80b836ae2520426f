-- Jurisdictions (province, city, county) the downwind centreline of a capped zone enters beyond the drawn
-- zones (DESIGN 8.4: a zone cut at 10 km still names where it goes), with the distance from the source
-- where the centreline first enters each.  Parameters: line1 and line2 the centrelines of end-points 1
-- and 2 beyond the cap, from the cap to where each falls below its end-point, as WKT (EPSG:4326;
-- LINESTRING EMPTY when that zone is not capped; line1 is a prefix of line2), lon and lat the source.
WITH z AS (
    SELECT ST_GeomFromText(%(line1)s, 4326) AS l1, ST_GeomFromText(%(line2)s, 4326) AS l2,
           ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS src
), hits AS (
    SELECT p.code, ST_Intersects(p.geom, z.l1) AS in_ep1,
           ST_Distance(ST_Intersection(p.geom, z.l2)::geography, z.src::geography) AS distance_m
    FROM z JOIN riskatlas.admin_piece p ON ST_Intersects(p.geom, z.l2)
)
SELECT a.level, a.code, a.name, a.name_en, a.parent_code, bool_or(h.in_ep1) AS in_ep1,
       min(h.distance_m) AS distance_m
FROM hits h JOIN riskatlas.admin_area a ON a.code = h.code
GROUP BY a.level, a.code, a.name, a.name_en, a.parent_code
ORDER BY distance_m, a.level, a.code
