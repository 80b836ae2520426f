-- 0008: what HJ 338-2018 needs to derive a water source's protection zones (layers/data/
-- hj338_protection_zones.yaml, gis/protection_zones.py).
--   Lakes and reservoirs: the size class that decides the zone rule is defined by a reservoir's total
--   storage (10^8 m3) and a lake's area (km2), and a medium reservoir follows a different rule from a
--   medium lake, so the source says which it is.
--   Groundwater (wells): zones by aquifer (porous, fissure, karst), confinement (phreatic, confined),
--   aquifer medium (the empirical radii of porous phreatic aquifers), the well field's daily yield
--   (large fields need a numerical model), and the aquifer's K, I and n for R = alpha K I T / n.
-- (0007 is another change's number.)

ALTER TABLE riskatlas.water_reserve
    ADD COLUMN water_body_type    text CHECK (water_body_type IN ('lake', 'reservoir')),
    ADD COLUMN storage_1e8_m3     double precision CHECK (storage_1e8_m3 >= 0),
    ADD COLUMN area_km2           double precision CHECK (area_km2 >= 0),
    ADD COLUMN aquifer            text CHECK (aquifer IN ('porous', 'fissure', 'karst')),
    ADD COLUMN confinement        text CHECK (confinement IN ('phreatic', 'confined')),
    ADD COLUMN aquifer_medium     text CHECK (aquifer_medium IN ('fine-sand', 'medium-sand', 'coarse-sand',
                                                                 'gravel', 'pebble')),
    ADD COLUMN yield_m3_per_day   double precision CHECK (yield_m3_per_day >= 0),
    ADD COLUMN k_m_per_day        double precision CHECK (k_m_per_day >= 0),
    ADD COLUMN hydraulic_gradient double precision CHECK (hydraulic_gradient >= 0),
    ADD COLUMN effective_porosity double precision CHECK (effective_porosity >= 0 AND effective_porosity <= 1);
