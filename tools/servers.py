"""What the benchmark, the fuzzer, the fault drills and some tests share: throw-away
PostgreSQL databases and clusters (with streaming replicas), and the service running in
a uvicorn process of its own."""

import glob
import os
import re
import secrets
import shutil
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
    target: str,
    env: dict[str, str],
    cwd: Path = BACKEND,
    log: Path | None = None,
    workers: int = 1,
    ready_path: str = "/health/live",
) -> Iterator[str]:
    """`uvicorn --factory target` until the block ends; yields its URL once `ready_path`
    answers. With `log`, what the server prints goes to that file."""
    with uvicorn_process(target, env, cwd, log, workers, ready_path) as (base, _):
        yield base


@contextmanager
def uvicorn_process(
    target: str,
    env: dict[str, str],
    cwd: Path = BACKEND,
    log: Path | None = None,
    workers: int = 1,
    ready_path: str = "/health/live",
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As `uvicorn`, also yielding the process (with one worker, the worker itself)."""
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
            str(workers),
            "--loop",
            os.environ.get("BENCH_LOOP", "asyncio"),  # the service's default; uvloop to compare
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
        for _ in range(300):
            try:
                if httpx.get(f"{base}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        yield base, server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if output:
            output.close()


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise SystemExit("initdb not found: install PostgreSQL's server package")
    return Path(initdb).parent


class Cluster:
    """A PostgreSQL cluster of our own (initdb, free port, trust auth, no fsync), for the
    fault drills and the replica tests; as root it runs as the postgres user. `root`
    must be a folder the postgres user may write."""

    def __init__(self, name: str, root: Path, *settings: str) -> None:
        self.name = name
        self.root = root
        self.data = root / name
        self.port = free_port()
        self.bin = postgres_bin()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.settings = settings  # more `-c name=value` server settings

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True)

    def create(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "-U",
            "postgres",
            "--no-sync",
            "--encoding=UTF8",
        )
        self.start()

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1",
                "-c fsync=off -c max_connections=100",
                *(f"-c {setting}" for setting in self.settings),
            ]
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / f"{self.name}.log"),
            "-w",
            "start",
        )

    def running(self) -> bool:
        status = subprocess.run(
            [*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        url = self.url.rsplit("/", 1)[0] + f"/{database}"
        result = subprocess.run(
            ["psql", "-X", "-A", "-t", "-d", url, "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def standby(self, name: str) -> "Cluster":
        """A streaming replica of this cluster (`pg_basebackup -R`), started; this cluster
        must run with wal_level=replica (the default) and allow replication connections
        from 127.0.0.1 (initdb's trust configuration does)."""
        replica = Cluster(name, self.root, "hot_standby=on", *self.settings)
        replica._run(
            str(self.bin / "pg_basebackup"),
            f"--dbname=postgresql://postgres@127.0.0.1:{self.port}/postgres",
            "-D",
            str(replica.data),
            "-R",
            "-X",
            "stream",
            "--no-sync",
            "--checkpoint=fast",  # a spread checkpoint would take minutes
        )
        replica.start()
        return replica
