"""What one worker costs at rest, how fast it starts, and how fast a logout reaches a
second worker."""

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tools.bench.load import PASSWORD
from tools.servers import uvicorn, uvicorn_process

TRIES = 100


@dataclass
class Startup:
    seconds_to_ready: float
    idle_rss_mb: float


def start_and_measure(env: dict[str, str], log: Path) -> Startup:
    """One worker: seconds from process start to `/health/ready` 200, then its resident
    memory after a second at rest."""
    started = time.monotonic()
    with uvicorn_process("app.main:create_app", env, log=log, ready_path="/health/ready") as (
        _,
        process,
    ):
        ready = time.monotonic() - started
        time.sleep(1)
        status = Path(f"/proc/{process.pid}/status").read_text()
        rss_kib = int(
            next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]
        )
    return Startup(ready, rss_kib / 1024)


@dataclass
class Revocations:
    tries: int
    max_ms: float
    p50_ms: float
    p99_ms: float


async def revocation_latency(env: dict[str, str], email: str, log_dir: Path) -> Revocations:
    """Two workers (two uvicorn processes on the same databases): sign in, use the token on
    both, log out through the first, and time until the second refuses it."""
    with (
        uvicorn("app.main:create_app", env, log=log_dir / "worker-1.log") as one,
        uvicorn("app.main:create_app", env, log=log_dir / "worker-2.log") as two,
    ):
        async with (
            httpx.AsyncClient(base_url=one) as first,
            httpx.AsyncClient(base_url=two) as second,
        ):
            latencies: list[float] = []
            for _ in range(TRIES):
                login = await first.post(
                    "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
                )
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                for http in (first, second):
                    assert (await http.get("/api/v1/users/me", headers=headers)).status_code == 200
                assert (await first.post("/api/v1/auth/logout", headers=headers)).status_code == 204
                logged_out = time.perf_counter()
                # Polled as a client would: the other worker has no event to wait on.
                me = "/api/v1/users/me"
                while (await second.get(me, headers=headers)).status_code != 401:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                latencies.append((time.perf_counter() - logged_out) * 1000)
    latencies.sort()
    return Revocations(
        tries=len(latencies),
        max_ms=latencies[-1],
        p50_ms=statistics.median(latencies),
        p99_ms=latencies[int(len(latencies) * 0.99) - 1],
    )
