"""`python -m tools.bench.cache` (from the repository root): what a cache hit and a put
cost on each store, in one run: the database store on PostgreSQL, MariaDB and SQLite,
and Redis.

Each database store gets a database of its own, migrated (`alembic -n auth`); Redis a
prefix of its own. The measuring runs in bench/cache_steps.py, from backend/, through
the `Cache` the application uses. Target: a PostgreSQL hit within 2x a Redis hit.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from tools.servers import BACKEND, REPO, fresh_database, migrate, service_environment

BENCH = Path(__file__).resolve().parent
MYSQL = os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE = "dualbase_bench_cache"


def fresh_mariadb_database(name: str, server: str = MYSQL) -> str:
    """Drop and create database `name` on the MariaDB server; returns its URL."""
    parts = urlsplit(server)
    login = ["-h", parts.hostname or "127.0.0.1", "-P", str(parts.port or 3306)]
    login += ["-u", parts.username or "root"]
    if parts.password:
        login.append(f"-p{parts.password}")
    statement = (
        f"DROP DATABASE IF EXISTS `{name}`; "
        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    subprocess.run(["mariadb", *login, "-e", statement], check=True, capture_output=True)
    return server.rsplit("/", 1)[0] + f"/{name}"


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        stores = {
            "postgresql": fresh_database(DATABASE),
            "mariadb": fresh_mariadb_database(DATABASE),
            "sqlite": f"sqlite:///{scratch}/cache.db",
        }
        for url in stores.values():
            migrate(service_environment(url, url))
        targets = ";".join(f"{name}={url}" for name, url in stores.items())
        measured = subprocess.run(
            [sys.executable, "-m", "tools.bench.cache_steps"],
            cwd=BACKEND,
            env={
                **os.environ,
                "PYTHONPATH": f"{BACKEND}:{REPO}",
                "BENCH_CACHE_TARGETS": f"{targets};redis={REDIS}",
                "DATA_DIR": scratch,  # Redis' run needs no database: files that stay unused
            },
            text=True,
            check=False,
        )
    return measured.returncode


if __name__ == "__main__":
    sys.exit(main())
