#!/bin/sh
# Runs once, when the postgres container initialises an empty data volume
# (/docker-entrypoint-initdb.d). Creates a role and database for mediaflow and a role
# with its two databases for Temporal, each with its own password from the
# environment. A volume that already holds a cluster skips this script: see
# docs/DEPLOYMENT.md for creating the roles by hand there.
set -eu

: "${APP_DB_PASSWORD:?APP_DB_PASSWORD is not set}"
: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is not set}"

# psql substitutes :'name' as a quoted literal, so no password is spliced into SQL text.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=app_password="$APP_DB_PASSWORD" \
    --set=temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE mediaflow LOGIN PASSWORD :'app_password';
CREATE DATABASE mediaflow OWNER mediaflow;
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
