"""The service as it runs for real: uvicorn in a subprocess, on a free port, on SQLite files."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.core.config import BACKEND_DIR
from tests.conftest import TEST_SECRET


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sqlite_environment(data_dir: Path) -> dict[str, str]:
    """The process environment for both databases as SQLite files in `data_dir`.

    The URLs are explicit so that a developer's `.env` cannot point the server elsewhere.
    """
    return {
        **os.environ,
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET,
        "DATA_DIR": str(data_dir),
        "AUTH_DATABASE_URL": f"sqlite:///{data_dir / 'auth.db'}",
        "APP_DATABASE_URL": f"sqlite:///{data_dir / 'app.db'}",
    }


def migrate_both(env: dict[str, str]) -> None:
    """`alembic -n auth upgrade head` and `-n app`, as `make migrate` runs them."""
    alembic = str(Path(sys.executable).parent / "alembic")
    for database in ("auth", "app"):
        subprocess.run(
            [alembic, "-n", database, "upgrade", "head"],
            cwd=BACKEND_DIR,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self) -> None:
        """SIGTERM, as a container runtime stops the service."""
        self.process.send_signal(signal.SIGTERM)


@contextmanager
def serving(factory: str, env: dict[str, str], log: Path, *uvicorn_args: str) -> Iterator[Server]:
    """`uvicorn --factory FACTORY`, answering /health/live, stopped (SIGTERM) on exit."""
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                factory,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "asyncio",  # the loop scripts/start.sh serves on
                *uvicorn_args,
            ],
            cwd=BACKEND_DIR,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_live(server)
        yield server
    finally:
        if process.poll() is None:
            server.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_live(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server never answered:\n{server.output()}")
