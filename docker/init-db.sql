-- Runs once, on the first start of the postgres service (docker-entrypoint-initdb.d),
-- as the superuser: creates the service's login role and its two databases.
-- Names and password come from the environment that docker-compose.yml sets.
\set ON_ERROR_STOP on
\getenv db_user DUALBASE_DB_USER
\getenv db_password DUALBASE_DB_PASSWORD
\getenv auth_db DUALBASE_AUTH_DB
\getenv app_db DUALBASE_APP_DB

CREATE ROLE :"db_user" LOGIN PASSWORD :'db_password';

-- The auth database: users, credentials, sessions, API keys, roles.
CREATE DATABASE :"auth_db" OWNER :"db_user" ENCODING 'UTF8';
GRANT ALL PRIVILEGES ON DATABASE :"auth_db" TO :"db_user";
REVOKE ALL ON DATABASE :"auth_db" FROM PUBLIC;

-- The app database: the application's own data.
CREATE DATABASE :"app_db" OWNER :"db_user" ENCODING 'UTF8';
GRANT ALL PRIVILEGES ON DATABASE :"app_db" TO :"db_user";
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
