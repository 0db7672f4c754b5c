#!/bin/sh
# One-shot (service temporal-schema, image temporalio/admin-tools): bring Temporal's
# two PostgreSQL databases to the schema of this admin-tools version. Both steps are
# idempotent, so this runs on every `docker compose up` and doubles as the schema
# upgrade when TEMPORAL_VERSION is raised. The databases themselves are created by
# docker/postgres/10-create-databases.sh.
#
# temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD
# from the environment.
set -eu

SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

attempt=0
until nc -z -w 2 "$SQL_HOST" "$SQL_PORT"; do
    attempt=$((attempt + 1))
    [ "$attempt" -ge 30 ] && { echo "PostgreSQL at $SQL_HOST:$SQL_PORT never answered" >&2; exit 1; }
    sleep 2
done

temporal-sql-tool --db temporal setup-schema -v 0.0
temporal-sql-tool --db temporal update-schema -d "$SCHEMA_ROOT/temporal/versioned"
temporal-sql-tool --db temporal_visibility setup-schema -v 0.0
temporal-sql-tool --db temporal_visibility update-schema -d "$SCHEMA_ROOT/visibility/versioned"
echo "Temporal schema is up to date"
