"""`make bench`: the service under load on PostgreSQL, one uvicorn worker, with wrk.

Scenarios (64 connections each, BENCH_SECONDS long):
  1. GET /api/v1/projects as a signed-in member (the auth check and the app query)
  2. GET /api/v1/dashboard
  3. GET /health/live while 16 concurrent logins run (the event loop must stay free)
  4. the two queries of (1) served by Starlette + raw asyncpg (bench/floor_app.py)
  5. page-1 latency of GET /api/v1/projects with 1,000 and 1,000,000 projects
     (4 connections, so that the figure is latency rather than queueing)

Targets: (1) at least half of (4)'s throughput; (3) p99 under 25 ms; (5) the large
table's p50 within 1.3 times the small one's. Prints a table, exits 1 if a target
is missed. BENCH_POSTGRES_URL picks the server (an account that may create databases).
"""

import asyncio
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from jose import jwt

from tools.servers import (
    BACKEND,
    REPO,
    database_url,
    fresh_database,
    migrate,
    service_environment,
    uvicorn,
)

BENCH = Path(__file__).resolve().parent
ARTIFACTS = REPO / "artifacts" / "bench"  # the servers' logs
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
AUTH_DB, APP_DB = "dualbase_bench_auth", "dualbase_bench_app"
PASSWORD = "benchmark password"


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


async def wrk(url: str, token: str | None, connections: int = 64) -> Result:
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    # A short unmeasured run first: the first requests warm caches and pools.
    warm_up = await asyncio.create_subprocess_exec(
        "wrk", *headers, "-t1", f"-c{connections}", "-d2s", url, stdout=asyncio.subprocess.DEVNULL
    )
    await warm_up.wait()
    args = ["wrk", *headers, "-t1", f"-c{connections}", f"-d{SECONDS}s", "--latency", url]
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    output = (await process.communicate())[0].decode()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: .*", output)
    return Result(
        name=url,
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        p50_ms=_ms(re.search(r"\s50%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        p99_ms=_ms(re.search(r"\s99%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        errors=int(errors[1]) if errors else (1 if socket_errors else 0),
    )


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


async def seed_projects(owner_id: int, count: int, start: int = 0) -> None:
    """Insert projects straight into the app database (COPY), then refresh statistics."""
    connection = await asyncpg.connect(database_url(APP_DB))
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


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])  # type: ignore[index]
    postgres = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_kib / 1024 / 1024:.0f} GiB; "
        f"Python {platform.python_version()}; {postgres or 'PostgreSQL'}; "
        f"{SECONDS} s per scenario"
    )


async def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    env = service_environment(fresh_database(AUTH_DB), fresh_database(APP_DB))
    migrate(env)
    results: dict[str, Result] = {}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with uvicorn("app.main:create_app", env, log=ARTIFACTS / "service.log") as base:
        async with httpx.AsyncClient(base_url=base) as http:
            email = "member@bench.example"
            (
                await http.post(
                    "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
                )
            ).raise_for_status()
            tokens = (
                await http.post(
                    "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
                )
            ).json()
        token = tokens["access_token"]
        claims = jwt.get_unverified_claims(token)
        user_id, session_id = int(claims["sub"]), int(claims["sid"])
        await seed_projects(user_id, 1_000)

        results["1"] = await wrk(f"{base}/api/v1/projects", token)
        results["2"] = await wrk(f"{base}/api/v1/dashboard", token)
        storm = await login_storm_process(base, email, SECONDS + 2)
        await asyncio.sleep(1)  # the logins are under way
        results["3"] = await wrk(f"{base}/health/live", None)
        out, err = await storm.communicate()
        if storm.returncode != 0:
            print(f"the login clients failed:\n{err.decode()[-2000:]}", file=sys.stderr)
        logins = int(out or 0)
        results["5a"] = await wrk(f"{base}/api/v1/projects", token, connections=4)
        started = time.perf_counter()
        await seed_projects(user_id, 999_000, start=1_000)
        seeded_in = time.perf_counter() - started
        results["5b"] = await wrk(f"{base}/api/v1/projects", token, connections=4)

    floor_env = {
        **env,
        "FLOOR_AUTH_DSN": database_url(AUTH_DB),
        "FLOOR_APP_DSN": database_url(APP_DB),
        "FLOOR_USER_ID": str(user_id),
        "FLOOR_SESSION_ID": str(session_id),
    }
    with uvicorn(
        "floor_app:create_app", floor_env, cwd=BENCH, log=ARTIFACTS / "floor.log"
    ) as floor:
        results["4"] = await wrk(f"{floor}/api/v1/projects", None)

    rows = [
        ("1", "GET /api/v1/projects (member)", results["1"]),
        ("2", "GET /api/v1/dashboard", results["2"]),
        ("3", f"GET /health/live during 16 concurrent logins ({logins} logins)", results["3"]),
        ("4", "floor: Starlette + raw asyncpg, same two queries", results["4"]),
        ("5a", "GET /api/v1/projects page 1, 1,000 projects (4 conn.)", results["5a"]),
        ("5b", "GET /api/v1/projects page 1, 1,000,000 projects (4 conn.)", results["5b"]),
    ]
    print(f"\nmachine: {machine()}")
    print(f"(1,000,000 projects copied in {seeded_in:.1f} s)\n")
    print(f"| {'#':<3}| {'scenario':<58}| {'req/s':>9} | {'p50 ms':>8} | {'p99 ms':>8} | errors |")
    print(f"|{'-' * 4}|{'-' * 59}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 8}|")
    for key, label, result in rows:
        print(
            f"| {key:<3}| {label:<58}| {result.requests_per_second:>9.0f} | "
            f"{result.p50_ms:>8.2f} | {result.p99_ms:>8.2f} | {result.errors:>6} |"
        )

    ratio_1_4 = results["1"].requests_per_second / results["4"].requests_per_second
    ratio_5 = results["5b"].p50_ms / results["5a"].p50_ms
    targets = [
        (f"(1) is {ratio_1_4:.0%} of (4)'s throughput", "at least 50%", ratio_1_4 >= 0.5),
        (f"(3) p99 is {results['3'].p99_ms:.2f} ms", "under 25 ms", results["3"].p99_ms < 25),
        (f"(5) large/small p50 is {ratio_5:.2f}", "at most 1.3", ratio_5 <= 1.3),
        ("no errors", "0 non-2xx", all(result.errors == 0 for result in results.values())),
    ]
    # Where the CPU goes, step by step (bench/steps.py), the service's and the floor's.
    steps = subprocess.run(
        [sys.executable, str(BENCH / "steps.py")],
        cwd=BACKEND,
        env={
            **env,
            "PYTHONPATH": f"{BACKEND}:{REPO}",
            "BENCH_USER_ID": str(user_id),
            "BENCH_SESSION_ID": str(session_id),
            "BENCH_TOKEN": token,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    print(steps.stdout if steps.returncode == 0 else f"\nbench/steps.py failed:\n{steps.stderr}")
    print()
    for measured, target, met in targets:
        print(f"{'PASS' if met else 'MISS'}  {measured} (target: {target})")
    return 0 if all(met for *_, met in targets) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["login-storm"]:
        print(asyncio.run(login_storm(sys.argv[2], sys.argv[3], float(sys.argv[4]))))
    else:
        sys.exit(asyncio.run(main()))
