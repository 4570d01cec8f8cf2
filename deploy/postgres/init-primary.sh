#!/bin/bash
# First start of the primary: a replication role, and the key database under its own role (the data keys are
# kept apart from the records they protect: docs/encryption.md, issue #12 item 2).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '${POSTGRES_REPLICATION_PASSWORD}';
CREATE ROLE faceleads_keys WITH LOGIN PASSWORD '${POSTGRES_KEYS_PASSWORD}';
CREATE DATABASE faceleads_keys OWNER faceleads_keys;
REVOKE ALL ON DATABASE faceleads_keys FROM PUBLIC;
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
