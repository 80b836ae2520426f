-- 0009: a reach's measured longitudinal dispersion coefficient (m²/s), e.g. from a tracer study.
-- The spill model uses it before any estimate (DESIGN 8.5: a measured value first; the request's
-- dispersion_m2_s overrides it for one run). Empty: Deng et al. (2001) from the reach's hydraulics.
-- (0007 and 0008 are other changes' numbers.)
ALTER TABLE riskatlas.river
    ADD COLUMN dispersion_m2_s double precision CHECK (dispersion_m2_s > 0);
COMMENT ON COLUMN riskatlas.river.dispersion_m2_s IS
    'measured longitudinal dispersion coefficient, m²/s (tracer study); NULL: estimated (Deng et al. 2001)';
