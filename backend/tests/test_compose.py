"""The compose setup, piece by piece, without a Docker engine.

`docker-compose config` validates the file; docker/init-db.sql and
docker/init-db.mariadb.sh run against the real local servers; the backend's start
script runs with the environment compose gives the backend container, with the
compose service host names pointed at 127.0.0.1.
"""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.core.config import BACKEND_DIR
from app.core.db.base import AppBase, AuthBase
from tests.conftest import SELECTED
from tests.processes import CliProcess

REPO = BACKEND_DIR.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
VENV_BIN = str(Path(sys.executable).parent)
NAMES = {
    "DB_USER": "dualbase_ci_user",
    "DB_PASSWORD": "ci-secret",
    "AUTH_DB_NAME": "dualbase_ci_auth",
    "APP_DB_NAME": "dualbase_ci_app",
}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(args: list[str], env: dict[str, str] | None = None, **kwargs: object) -> str:
    result = subprocess.run(
        args,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )  # type: ignore[call-overload]
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return str(result.stdout)


def psql(sql: str, database: str = "postgres") -> str:
    return run(
        [
            "psql",
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        ]
    )


def mariadb(sql: str) -> str:
    return run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-N", "-B", "-e", sql])


def compose_config(profile: str | None = None) -> dict[str, object]:
    docker_compose = require("docker-compose")
    args = [docker_compose, "-f", str(REPO / "docker-compose.yml")]
    if profile:
        args += ["--profile", profile]
    config = yaml.safe_load(run([*args, "config"], env=NAMES, cwd=REPO))
    assert isinstance(config, dict)
    return config


def backend_environment(service: str, compose_host: str) -> dict[str, str]:
    """The backend container's environment, with the database host made local."""
    config = compose_config("mysql")
    environment = config["services"][service]["environment"]  # type: ignore[index]
    return {
        key: str(value).replace(f"@{compose_host}:", "@127.0.0.1:")
        for key, value in environment.items()
    }


def test_compose_file_is_valid_and_wires_the_services() -> None:
    config = compose_config("mysql")
    services = config["services"]
    assert isinstance(services, dict)

    assert set(services) == {
        "postgres",
        "backend",
        "worker",
        "mariadb",
        "backend-mysql",
        "worker-mysql",
        "redis",
        "rabbitmq",
    }
    # The brokers start only with their profile, for QUEUE_BACKEND=redis|rabbitmq.
    assert (services["redis"]["profiles"], services["rabbitmq"]["profiles"]) == (
        ["redis"],
        ["rabbitmq"],
    )
    assert services["backend"]["environment"]["QUEUE_BACKEND"] == "database"
    assert services["backend"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["backend-mysql"]["depends_on"]["mariadb"]["condition"] == "service_healthy"
    # Workers start once their backend is healthy, that is migrated, and share its settings.
    for worker, backend in (("worker", "backend"), ("worker-mysql", "backend-mysql")):
        assert services[worker]["depends_on"][backend]["condition"] == "service_healthy"
        assert services[worker]["environment"] == services[backend]["environment"]
        assert services[worker]["command"][:5] == ["python", "-m", "app.cli", "queue", "work"]
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["mariadb"]
    # docker-compose 1.x prints short volume strings, Compose v2 long mappings.
    mounts = [str(volume) for volume in services["postgres"]["volumes"]]
    assert any(
        str(REPO / "docker" / "init-db.sql") in mount and "/docker-entrypoint-initdb.d/" in mount
        for mount in mounts
    )
    assert (BACKEND_DIR / "Dockerfile").is_file()
    # Without --profile mysql, only PostgreSQL and its backend come up.
    assert {name for name, service in services.items() if "profiles" not in service} == {
        "postgres",
        "backend",
        "worker",
    }
    for name in ("mariadb", "backend-mysql", "worker-mysql"):
        assert services[name]["profiles"] == ["mysql"]


def only_with_backend(name: str) -> None:
    """The compose databases have fixed names (those of .env.example): their tests run
    in the test run of that server's backend only, so that runs of the other backends
    at the same time (CI runs the three side by side) do not meet them."""
    if name not in SELECTED:
        pytest.skip(f"the compose databases are tested in the {name} run")


@pytest.fixture
def postgres_from_init_sql() -> Iterator[None]:
    """docker/init-db.sql applied by psql, as the postgres image's entrypoint does."""
    only_with_backend("postgresql")
    require("psql")
    try:
        psql("SELECT 1")
    except AssertionError as unreachable:
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL is not reachable: {unreachable}")

    def drop() -> None:
        for database in (NAMES["AUTH_DB_NAME"], NAMES["APP_DB_NAME"]):
            psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        psql(f'DROP ROLE IF EXISTS "{NAMES["DB_USER"]}"')

    drop()
    init_env = {
        "DUALBASE_DB_USER": NAMES["DB_USER"],
        "DUALBASE_DB_PASSWORD": NAMES["DB_PASSWORD"],
        "DUALBASE_AUTH_DB": NAMES["AUTH_DB_NAME"],
        "DUALBASE_APP_DB": NAMES["APP_DB_NAME"],
    }
    run(
        [
            "psql",
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-f",
            str(REPO / "docker" / "init-db.sql"),
        ],
        env=init_env,
    )
    yield
    drop()


def test_init_db_sql_creates_both_databases_owned_by_the_service_user(
    postgres_from_init_sql: None,
) -> None:
    owners = psql(
        "SELECT datname || '=' || pg_get_userbyid(datdba) FROM pg_database "
        "WHERE datname LIKE 'dualbase_ci_%' ORDER BY datname"
    ).split()

    assert owners == ["dualbase_ci_app=dualbase_ci_user", "dualbase_ci_auth=dualbase_ci_user"]
    assert psql("SELECT rolsuper FROM pg_roles WHERE rolname = 'dualbase_ci_user'").strip() == "f"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_start_script_waits_migrates_and_serves_with_the_compose_environment(
    postgres_from_init_sql: None, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        **backend_environment("backend", "postgres"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
    }
    server = CliProcess.run(["sh", "scripts/start.sh"], env, tmp_path / "server.log")
    try:
        ready = await wait_until_ready(f"http://127.0.0.1:{port}/health/ready", server)
        assert ready["databases"]["auth"]["status"] == "up"
        assert ready["mode"] == "separate"
        # Migrated by the service's own user, each tree into its own database.
        assert "users" in psql("SELECT tablename FROM pg_tables", NAMES["AUTH_DB_NAME"])
        assert "projects" in psql("SELECT tablename FROM pg_tables", NAMES["APP_DB_NAME"])
        assert "users" not in psql("SELECT tablename FROM pg_tables", NAMES["APP_DB_NAME"])
    finally:
        server.signal(signal.SIGTERM)
        output = await server.finished(within=30)
    # uvicorn finishes its shutdown, then exits by the signal it was sent.
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output


def test_the_worker_command_runs_jobs_with_the_compose_environment(
    postgres_from_init_sql: None,
) -> None:
    env = {
        **os.environ,
        **backend_environment("worker", "postgres"),
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
    }
    run(["sh", "scripts/prestart.sh"], env=env, cwd=BACKEND_DIR)
    command = compose_config()["services"]["worker"]["command"]  # type: ignore[index]

    worker = subprocess.run(
        [*command, "--stop-when-empty"],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert worker.returncode == 0, worker.stderr
    assert "started: queues default, concurrency 10" in worker.stderr
    assert "stopped after 0 jobs" in worker.stderr


async def wait_until_ready(url: str, server: CliProcess) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        for _ in range(120):
            if not server.running():
                raise AssertionError(f"server exited: {server.output()}")
            try:
                response = await http.get(url)
                if response.status_code == 200:
                    body = response.json()
                    assert isinstance(body, dict)
                    return body
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError("the service never became ready")


@pytest.fixture
def mariadb_from_init_script() -> Iterator[None]:
    """docker/init-db.mariadb.sh run after what the mariadb image itself creates."""
    only_with_backend("mariadb")
    require("mariadb")
    try:
        mariadb("SELECT 1")
    except AssertionError as unreachable:
        if IN_CI:
            raise
        pytest.skip(f"MariaDB is not reachable: {unreachable}")
    user, password = NAMES["DB_USER"], NAMES["DB_PASSWORD"]

    def drop() -> None:
        mariadb(
            f"DROP DATABASE IF EXISTS {NAMES['AUTH_DB_NAME']}; "
            f"DROP DATABASE IF EXISTS {NAMES['APP_DB_NAME']}; DROP USER IF EXISTS '{user}'@'%'"
        )

    drop()
    # What the image does from MARIADB_USER, MARIADB_PASSWORD and MARIADB_DATABASE:
    mariadb(
        f"CREATE DATABASE {NAMES['AUTH_DB_NAME']}; "
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; "
        f"GRANT ALL ON {NAMES['AUTH_DB_NAME']}.* TO '{user}'@'%'"
    )
    run(
        ["sh", str(REPO / "docker" / "init-db.mariadb.sh")],
        env={
            "MARIADB_ROOT_PASSWORD": "",
            "MARIADB_HOST": "127.0.0.1",
            "MARIADB_USER": user,
            "MARIADB_DATABASE": NAMES["AUTH_DB_NAME"],
            "DUALBASE_APP_DB": NAMES["APP_DB_NAME"],
        },
    )
    yield
    drop()


def test_mariadb_profile_prestart_migrates_both_databases_as_the_service_user(
    mariadb_from_init_script: None,
) -> None:
    env = {
        **backend_environment("backend-mysql", "mariadb"),
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "DB_WAIT_TIMEOUT": "10",
    }

    run(["sh", "scripts/prestart.sh"], env=env, cwd=BACKEND_DIR)

    tables = mariadb(
        "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables "
        "WHERE table_schema LIKE 'dualbase_ci_%'"
    ).split()
    assert sorted(tables) == sorted(
        [f"dualbase_ci_auth.{name}" for name in [*AuthBase.metadata.tables, "alembic_version_auth"]]
        + [f"dualbase_ci_app.{name}" for name in [*AppBase.metadata.tables, "alembic_version_app"]]
    )
    charset = mariadb(
        "SELECT default_character_set_name FROM information_schema.schemata "
        "WHERE schema_name LIKE 'dualbase_ci_%'"
    ).split()
    assert charset == ["utf8mb4", "utf8mb4"]
