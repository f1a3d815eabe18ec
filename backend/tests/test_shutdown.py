"""Stopping the service, as a container runtime does, and the image that runs it.

On SIGTERM uvicorn stops accepting connections, lets the requests in flight finish
within the grace period (GRACEFUL_SHUTDOWN_SECONDS in scripts/start.sh), then runs
the lifespan's shutdown, which disposes both engines. There is no Docker engine here:
the Dockerfile and the compose file are checked as text.
"""

import asyncio
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
import yaml

from app.core.config import BACKEND_DIR
from tests.server import Server, serving, sqlite_environment

SLOW_APP = "tests.slow_app:create_app"
EXITED_ON_SIGTERM = (0, -signal.SIGTERM)  # uvicorn may re-raise the signal once it is done


async def wait_for_exit(server: Server) -> int:
    return await asyncio.to_thread(server.process.wait, 20)


def slow_server(tmp_path: Path, grace_seconds: int) -> AbstractContextManager[Server]:
    """The service plus /slow, as scripts/start.sh runs it with GRACEFUL_SHUTDOWN_SECONDS."""
    return serving(
        SLOW_APP,
        sqlite_environment(tmp_path),
        tmp_path / "server.log",
        "--timeout-graceful-shutdown",
        str(grace_seconds),
    )


def assert_engines_disposed(output: str) -> None:
    assert "Application shutdown complete." in output
    assert "disposed the auth engine" in output
    assert "disposed the app engine" in output


async def test_a_request_in_flight_at_sigterm_completes_and_new_connections_are_refused(
    tmp_path: Path,
) -> None:
    with slow_server(tmp_path, grace_seconds=10) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            slow = asyncio.create_task(http.get("/slow", params={"seconds": 2}))
            await asyncio.sleep(0.5)  # the request is in its handler
            server.terminate()
            await asyncio.sleep(0.3)

            async with httpx.AsyncClient(base_url=server.url) as newcomer:
                with pytest.raises(httpx.ConnectError):
                    await newcomer.get("/health/live")
            assert server.process.poll() is None, "exited with a request in flight"
            response = await slow

        assert response.status_code == 200
        assert response.json() == {"status": "finished"}
        assert await wait_for_exit(server) in EXITED_ON_SIGTERM
        output = server.output()
    assert_engines_disposed(output)


async def test_shutdown_waits_no_longer_than_the_grace_period(tmp_path: Path) -> None:
    with slow_server(tmp_path, grace_seconds=1) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            slow = asyncio.create_task(http.get("/slow", params={"seconds": 20}))
            await asyncio.sleep(0.5)
            started = time.monotonic()
            server.terminate()

            assert await wait_for_exit(server) in EXITED_ON_SIGTERM
            waited = time.monotonic() - started
            cut = await slow
        output = server.output()

    assert waited < 5
    assert cut.status_code == 500  # uvicorn's answer for a request cut by the grace period
    assert_engines_disposed(output)


@pytest.mark.parametrize(
    ("settings", "workers", "grace", "loop"),
    [
        ({}, "1", "20", "asyncio"),
        (
            {"WEB_CONCURRENCY": "4", "GRACEFUL_SHUTDOWN_SECONDS": "45", "UVICORN_LOOP": "uvloop"},
            "4",
            "45",
            "uvloop",
        ),
    ],
    ids=["defaults", "from-environment"],
)
def test_start_script_takes_workers_grace_period_and_loop_from_the_environment(
    tmp_path: Path, settings: dict[str, str], workers: str, grace: str, loop: str
) -> None:
    # A stand-in uvicorn that prints the arguments the script gives it, one per line.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    uvicorn = fake_bin / "uvicorn"
    uvicorn.write_text("#!/bin/sh\nprintf 'uvicorn-arg %s\\n' \"$@\"\n")
    uvicorn.chmod(uvicorn.stat().st_mode | stat.S_IEXEC)
    env = sqlite_environment(tmp_path)
    env.pop("WEB_CONCURRENCY", None)
    env.pop("GRACEFUL_SHUTDOWN_SECONDS", None)
    env.pop("UVICORN_LOOP", None)
    env.update(settings)
    env["PATH"] = f"{fake_bin}:{Path(sys.executable).parent}:{os.environ['PATH']}"

    result = subprocess.run(
        ["sh", "scripts/start.sh"],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    args = [line.removeprefix("uvicorn-arg ") for line in result.stdout.splitlines()]
    assert args[args.index("--workers") + 1] == workers
    assert args[args.index("--timeout-graceful-shutdown") + 1] == grace
    assert args[args.index("--loop") + 1] == loop


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (keyword, arguments), one list per build stage."""
    text = re.sub(r"\\\n", " ", (BACKEND_DIR / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


def test_image_is_multi_stage_unprivileged_with_a_healthcheck_and_the_start_script() -> None:
    stages = dockerfile_stages()
    final = dict(stages[-1])  # the last value of each keyword wins, as in the image

    assert len(stages) >= 2
    assert any(keyword == "COPY" and "--from=" in args for keyword, args in stages[-1])
    assert final["USER"].split(":")[0] not in ("root", "0")
    assert "/health/live" in final["HEALTHCHECK"]
    assert json.loads(final["CMD"]) == ["sh", "scripts/start.sh"]
    # sh replaces itself with uvicorn, which so becomes PID 1 and receives the SIGTERM.
    assert re.search(r"^exec uvicorn ", (BACKEND_DIR / "scripts" / "start.sh").read_text(), re.M)


def test_compose_lets_the_backends_drain_before_killing_them() -> None:
    compose = yaml.safe_load((BACKEND_DIR.parent / "docker-compose.yml").read_text())
    start_script = (BACKEND_DIR / "scripts" / "start.sh").read_text()

    for name in ("backend", "backend-mysql"):
        service = compose["services"][name]
        configured = service["environment"]["GRACEFUL_SHUTDOWN_SECONDS"]
        graces = [
            int(default)
            for text in (configured, start_script)
            for default in re.findall(r"GRACEFUL_SHUTDOWN_SECONDS:-(\d+)", text)
        ]
        assert len(graces) == 2, name
        assert int(service["stop_grace_period"].removesuffix("s")) > max(graces), name
