"""What the scenarios are made of: wrk runs and their figures, the seeded projects, and
the login storm."""

import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx

from tools.servers import REPO

PASSWORD = "benchmark password"


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers, and socket errors but timeouts
    timeouts: int = 0


async def wrk(
    url: str, token: str | None, seconds: int, connections: int = 64, give_up_after: int = 10
) -> Result:
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    # A short unmeasured run first: the first requests warm caches and pools.
    warm_up = await asyncio.create_subprocess_exec(
        "wrk", *headers, "-t1", f"-c{connections}", "-d2s", url, stdout=asyncio.subprocess.DEVNULL
    )
    await warm_up.wait()
    args = [
        "wrk",
        *headers,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={give_up_after}s",
        "--latency",
        url,
    ]
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    output = (await process.communicate())[0].decode()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    connect, read, write, timeouts = (
        (int(number) for number in socket_errors.groups()) if socket_errors else (0, 0, 0, 0)
    )
    return Result(
        name=url,
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        p50_ms=_ms(re.search(r"\s50%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        p99_ms=_ms(re.search(r"\s99%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        errors=(int(errors[1]) if errors else 0) + connect + read + write,
        timeouts=timeouts,
    )


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


async def seed_projects(app_url: str, owner_id: int, count: int, start: int = 0) -> None:
    """Insert projects straight into the app database (COPY), then refresh statistics."""
    connection = await asyncpg.connect(app_url)
    try:
        now = datetime.now(UTC)
        batch = 100_000
        for offset in range(start, start + count, batch):
            rows = [
                (owner_id, f"project {number}", None, now, now)
                for number in range(offset, min(offset + batch, start + count))
            ]
            await connection.copy_records_to_table(
                "projects",
                records=rows,
                columns=["owner_id", "name", "description", "created_at", "updated_at"],
            )
        await connection.execute("ANALYZE projects")
    finally:
        await connection.close()


async def login_storm(base: str, email: str, seconds: float) -> int:
    """16 clients signing in over and over for `seconds`; returns the logins done."""
    done = 0
    deadline = time.monotonic() + seconds

    async def one_client() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while time.monotonic() < deadline:
                response = await http.post(
                    "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
                )
                response.raise_for_status()
                done += 1

    await asyncio.gather(*(one_client() for _ in range(16)))
    return done


async def login_storm_process(base: str, email: str, seconds: float) -> asyncio.subprocess.Process:
    """The login clients in a process of their own, niced: on two cores the load
    generators share the CPU with the server, and this measures the server."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools.bench.run",
        "login-storm",
        base,
        email,
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        preexec_fn=lambda: os.nice(10),
    )
