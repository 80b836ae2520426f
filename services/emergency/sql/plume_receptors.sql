-- Receptors inside a plume's threat zones (DESIGN 5 "Plume"): risk sources, drinking-water sources,
-- air-quality stations (points inside) and protected areas (the part inside), each with its nearest
-- distance from the source and the zones it lies in.  Parameters: ep1 and ep2 the two zones
-- as WKT (EPSG:4326; POLYGON EMPTY when a zone is empty), lon and lat the source.
WITH z AS (
    SELECT ST_GeomFromText(%(ep1)s, 4326) AS ep1, ST_GeomFromText(%(ep2)s, 4326) AS ep2,
           ST_Union(ST_GeomFromText(%(ep1)s, 4326), ST_GeomFromText(%(ep2)s, 4326)) AS outer_g,
           ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS src
), points AS (
    SELECT 'risk_source' AS layer, r.key, r.name, r.category AS kind, r.risk_level AS grade, r.city_code,
           r.county_code, NULL::integer AS population_served, r.geom
    FROM z JOIN riskatlas.risk_source r ON ST_Intersects(r.geom, z.outer_g)
    UNION ALL
    SELECT 'water_reserve', w.key, w.name, w.kind, NULL, w.city_code, w.county_code, w.population_served, w.geom
    FROM z JOIN riskatlas.water_reserve w ON ST_Intersects(w.geom, z.outer_g)
    UNION ALL
    SELECT 'monitoring_station', s.key, s.name, s.kind, NULL, s.city_code, s.county_code, NULL, s.geom
    FROM z JOIN riskatlas.monitoring_station s ON s.medium = 'air' AND ST_Intersects(s.geom, z.outer_g)
), areas AS (
    SELECT 'protected_area' AS layer, p.key, p.name, p.kind, p.rank AS grade, p.city_code, p.county_code,
           NULL::integer AS population_served,
           ST_CollectionExtract(ST_Intersection(p.geom, z.outer_g), 3) AS geom
    FROM z JOIN riskatlas.protected_area p ON ST_Intersects(p.geom, z.outer_g)
), found AS (
    SELECT * FROM points UNION ALL SELECT * FROM areas WHERE NOT ST_IsEmpty(geom)
)
SELECT f.layer, f.key, f.name, f.kind, f.grade, f.city_code, f.county_code, f.population_served,
       ST_Intersects(f.geom, z.ep1) AS in_ep1, ST_Intersects(f.geom, z.ep2) AS in_ep2,
       ST_Distance(f.geom::geography, z.src::geography) AS distance_m,
       ST_AsGeoJSON(f.geom, 6) AS geometry
FROM found f, z
ORDER BY distance_m, f.layer, f.key
