#!/bin/bash
# Runs once, when the primary's data folder is created (docker-entrypoint-initdb.d): the replication
# role the replica streams as, allowed from the compose network only for replication; and the WAL
# archive folder on the backups volume.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v pw="$RISKATLAS_REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE riskatlas_replicator LOGIN REPLICATION PASSWORD :'pw';
SQL
echo "host replication riskatlas_replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
mkdir -p /backups/wal /backups/base
