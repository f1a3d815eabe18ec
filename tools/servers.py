"""What the benchmark, the fuzzer and the fault drills share: throw-away PostgreSQL
databases and the service running in a uvicorn process of its own."""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BACKEND = REPO / "backend"
VENV_BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def database_url(name: str, server: str = POSTGRES) -> str:
    return re.sub(r"/[^/]*$", f"/{name}", server)


def fresh_database(name: str, server: str = POSTGRES) -> str:
    """Drop and create database `name` on the server; returns its URL."""
    for statement in (
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        f'CREATE DATABASE "{name}"',
    ):
        subprocess.run(
            ["psql", "-X", "-q", "-d", server, "-c", statement], check=True, capture_output=True
        )
    return database_url(name, server)


def service_environment(auth_url: str, app_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "AUTH_DATABASE_URL": auth_url,
        "APP_DATABASE_URL": app_url,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        **extra,
    }


def migrate(env: dict[str, str]) -> None:
    for tree in ("auth", "app"):
        subprocess.run(
            [str(VENV_BIN / "alembic"), "-n", tree, "upgrade", "head"],
            cwd=BACKEND,
            env=env,
            check=True,
            capture_output=True,
        )


@contextmanager
def uvicorn(
    target: str, env: dict[str, str], cwd: Path = BACKEND, log: Path | None = None
) -> Iterator[str]:
    """`uvicorn --factory target` with one worker until the block ends; yields its URL.
    With `log`, what the server prints goes to that file."""
    port = free_port()
    output = log.open("w") if log else None
    server = subprocess.Popen(
        [
            str(VENV_BIN / "uvicorn"),
            "--factory",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--loop",
            "asyncio",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=cwd,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                httpx.get(f"{base}/health/live", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if output:
            output.close()
