-- 0011: where in the write-ahead log each load batch began, so that a point-in-time restore can stop
-- exactly before it (`riskatlas db restore --before-batch ID`: recovery_target_lsn = start_lsn with
-- recovery_target_inclusive = false). The default is taken by the batch's own INSERT, the first write
-- of the load's transaction: every transaction committed before it lies below start_lsn, the batch's
-- commit above. started_at (already there) is the same moment on the clock.
-- (0010 is another change's number.)
ALTER TABLE riskatlas.load_batch
    ADD COLUMN start_lsn pg_lsn DEFAULT pg_current_wal_insert_lsn();
COMMENT ON COLUMN riskatlas.load_batch.start_lsn IS
    'WAL insert position when the batch began (its own records and commit lie after it); NULL for older batches';
