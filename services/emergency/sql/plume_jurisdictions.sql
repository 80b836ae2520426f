-- Jurisdictions (province, city, county) a plume's threat zones cover, with the part covered and its
-- nearest distance from the source.  Intersected against the subdivided admin_piece polygons (small
-- pieces keep the GiST index and ST_Intersection cheap), then the pieces of each code merged.
-- Parameters as in plume_receptors.sql.
WITH z AS (
    SELECT ST_GeomFromText(%(ep1)s, 4326) AS ep1, ST_GeomFromText(%(ep2)s, 4326) AS ep2,
           ST_Union(ST_GeomFromText(%(ep1)s, 4326), ST_GeomFromText(%(ep2)s, 4326)) AS outer_g,
           ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS src
), pieces AS (
    SELECT p.code, ST_CollectionExtract(ST_Intersection(p.geom, z.outer_g), 3) AS part,
           ST_Intersects(p.geom, z.ep1) AS in_ep1, ST_Intersects(p.geom, z.ep2) AS in_ep2
    FROM z JOIN riskatlas.admin_piece p ON ST_Intersects(p.geom, z.outer_g)
), merged AS (
    SELECT code, ST_UnaryUnion(ST_Collect(part)) AS part, bool_or(in_ep1) AS in_ep1, bool_or(in_ep2) AS in_ep2
    FROM pieces WHERE NOT ST_IsEmpty(part) GROUP BY code
)
SELECT a.level, a.code, a.name, a.name_en, a.parent_code, m.in_ep1, m.in_ep2,
       ST_Distance(m.part::geography, z.src::geography) AS distance_m,
       ST_AsGeoJSON(m.part, 7) AS part
FROM merged m JOIN riskatlas.admin_area a ON a.code = m.code CROSS JOIN z
ORDER BY distance_m, a.level, a.code
