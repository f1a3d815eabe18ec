#!/bin/sh
# Runs once, on the first start of the mariadb service (docker-entrypoint-initdb.d).
# The image has already made MARIADB_USER and MARIADB_DATABASE (the auth database);
# this makes the app database and grants it to the same user.
set -eu
mariadb --user=root --password="${MARIADB_ROOT_PASSWORD}" ${MARIADB_HOST:+--host="$MARIADB_HOST"} <<SQL
ALTER DATABASE \`${MARIADB_DATABASE}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS \`${DUALBASE_APP_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
GRANT ALL PRIVILEGES ON \`${DUALBASE_APP_DB}\`.* TO '${MARIADB_USER}'@'%';
SQL
