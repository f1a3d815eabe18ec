"""`make bench`: the service under load on PostgreSQL, with wrk, and what each part costs.

Scenarios (64 connections, BENCH_SECONDS long, one uvicorn worker, unless said):
  1. GET /api/v1/projects as a signed-in member, three runs alternating with (4)
  2. GET /api/v1/dashboard
  3. GET /health/live while 16 concurrent logins run (the event loop must stay free)
  4. the two queries of (1) served by Starlette + raw asyncpg (floor_app.py)
  5. page-1 latency of (1) with 1,000 and 1,000,000 projects (4 connections)
  6. (1) with 256 connections for 20 s; 7. the same with WEB_CONCURRENCY=2
Then: a worker's start-up time and idle memory, the time a logout takes to reach a
second worker (100 tries), the CPU of each step of (1) (`steps.py`), and the cache's
cost per store (`cache.py`).

Targets: (1) at least half of (4)'s throughput, as the median of the pairs' ratios;
(3) p99 under 25 ms; (5) the large table's p50 within 1.3 times the small one's;
(6, 7) no errors, no timeouts; start-up to ready within 2 s; idle RSS at most 120 MB;
a logout refused by the other worker within 1 s every time. Prints the tables, exits 1
if a target is missed. BENCH_POSTGRES_URL picks the server.
"""

import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import httpx
from jose import jwt

from tools.bench import cache as cache_bench
from tools.bench.load import (
    PASSWORD,
    Result,
    login_storm,
    login_storm_process,
    seed_projects,
    wrk,
)
from tools.bench.workers import revocation_latency, start_and_measure
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
EMAIL = "member@bench.example"
SERVICE = "app.main:create_app"


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


async def sign_in(base: str) -> str:
    async with httpx.AsyncClient(base_url=base) as http:
        registered = await http.post(
            "/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD}
        )
        registered.raise_for_status()
        tokens = await http.post(
            "/api/v1/auth/login", data={"username": EMAIL, "password": PASSWORD}
        )
    token: str = tokens.json()["access_token"]
    return token


def run_script(name: str, env: dict[str, str], **extra: str) -> str:
    """Another of the bench's scripts, from backend/ with the service's environment."""
    done = subprocess.run(
        [sys.executable, "-m", f"tools.bench.{Path(name).stem}"],  # no script dir on the path
        cwd=BACKEND,
        env={**env, "PYTHONPATH": f"{BACKEND}:{REPO}", **extra},
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 else f"\n{name} failed:\n{done.stderr[-3000:]}"


def print_results(rows: list[tuple[str, str, Result]]) -> None:
    heads = f"{'req/s':>9} | {'p50 ms':>8} | {'p99 ms':>8} | errors | timeouts"
    print(f"| {'#':<4}| {'scenario':<58}| {heads} |")
    print(f"|{'-' * 5}|{'-' * 59}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 8}|{'-' * 10}|")
    for key, label, result in rows:
        print(
            f"| {key:<4}| {label:<58}| {result.requests_per_second:>9.0f} | "
            f"{result.p50_ms:>8.2f} | {result.p99_ms:>8.2f} | {result.errors:>6} | "
            f"{result.timeouts:>8} |"
        )


async def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    env = service_environment(fresh_database(AUTH_DB), fresh_database(APP_DB))
    migrate(env)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, Result]] = []
    with uvicorn(SERVICE, env, log=ARTIFACTS / "service.log") as base:
        token = await sign_in(base)
        claims = jwt.get_unverified_claims(token)
        user_id, session_id = int(claims["sub"]), int(claims["sid"])
        await seed_projects(database_url(APP_DB), user_id, 1_000)
        floor_env = {
            **env,
            "FLOOR_AUTH_DSN": database_url(AUTH_DB),
            "FLOOR_APP_DSN": database_url(APP_DB),
            "FLOOR_USER_ID": str(user_id),
            "FLOOR_SESSION_ID": str(session_id),
        }
        projects = f"{base}/api/v1/projects"
        pairs: list[tuple[Result, Result]] = []
        with uvicorn(
            "floor_app:create_app", floor_env, cwd=BENCH, log=ARTIFACTS / "floor.log"
        ) as floor:
            for run in range(3):
                service = await wrk(projects, token, SECONDS)
                floored = await wrk(f"{floor}/api/v1/projects", None, SECONDS)
                pairs.append((service, floored))
                rows.append((f"1.{run + 1}", "GET /api/v1/projects (member)", service))
                rows.append(
                    (f"4.{run + 1}", "floor: Starlette + raw asyncpg, same two queries", floored)
                )
        rows.append(
            ("2", "GET /api/v1/dashboard", await wrk(f"{base}/api/v1/dashboard", token, SECONDS))
        )
        storm = await login_storm_process(base, EMAIL, SECONDS + 2)
        await asyncio.sleep(1)  # the logins are under way
        during_logins = await wrk(f"{base}/health/live", None, SECONDS)
        out, err = await storm.communicate()
        if storm.returncode != 0:
            print(f"the login clients failed:\n{err.decode()[-2000:]}", file=sys.stderr)
        rows.append(
            ("3", f"GET /health/live during 16 logins ({int(out or 0)} logins)", during_logins)
        )
        crowd = await wrk(projects, token, 20, connections=256)
        rows.append(("6", "GET /api/v1/projects, 256 connections, 20 s", crowd))
        small = await wrk(projects, token, SECONDS, connections=4)
        rows.append(("5a", "GET /api/v1/projects page 1, 1,000 projects (4 conn.)", small))
        await seed_projects(database_url(APP_DB), user_id, 999_000, start=1_000)
        large = await wrk(projects, token, SECONDS, connections=4)
        rows.append(("5b", "GET /api/v1/projects page 1, 1,000,000 projects (4 conn.)", large))
    two_env = {**env, "WEB_CONCURRENCY": "2"}
    with uvicorn(SERVICE, two_env, log=ARTIFACTS / "two-workers.log", workers=2) as base:
        crowd_two = await wrk(f"{base}/api/v1/projects", token, 20, connections=256)
        rows.append(("7", "the same, WEB_CONCURRENCY=2", crowd_two))
    startup = start_and_measure(env, ARTIFACTS / "startup.log")
    revocations = await revocation_latency(env, EMAIL, ARTIFACTS)

    print(f"\nmachine: {machine()}\n")
    print_results(rows)
    ratios = [
        service.requests_per_second / floored.requests_per_second for service, floored in pairs
    ]
    ratio = statistics.median(ratios)
    print(
        f"\nstart-up to /health/ready 200: {startup.seconds_to_ready:.2f} s; "
        f"idle RSS of one worker: {startup.idle_rss_mb:.0f} MB"
    )
    print(
        f"logout on one worker, refused by the other: {revocations.tries} tries, "
        f"p50 {revocations.p50_ms:.0f} ms, p99 {revocations.p99_ms:.0f} ms, "
        f"max {revocations.max_ms:.0f} ms"
    )
    print(
        run_script(
            "steps.py",
            env,
            BENCH_USER_ID=str(user_id),
            BENCH_SESSION_ID=str(session_id),
            BENCH_TOKEN=token,
        )
    )
    print(run_script("request_profile.py", env), flush=True)
    print("\nThe cache, per store (tools/bench/cache.py):", flush=True)
    cache_bench.main()
    ratio_5 = large.p50_ms / small.p50_ms
    targets = [
        (
            f"(1) is {ratio:.0%} of (4)'s throughput (runs: "
            + ", ".join(f"{each:.0%}" for each in ratios)
            + ")",
            "at least 50%",
            ratio >= 0.5,
        ),
        (f"(3) p99 is {during_logins.p99_ms:.2f} ms", "under 25 ms", during_logins.p99_ms < 25),
        (f"(5) large/small p50 is {ratio_5:.2f}", "at most 1.3", ratio_5 <= 1.3),
        (
            f"(6, 7) p99 {crowd.p99_ms:.0f} ms and {crowd_two.p99_ms:.0f} ms",
            "no errors, no timeouts",
            all(each.errors == each.timeouts == 0 for each in (crowd, crowd_two)),
        ),
        (
            f"start-up {startup.seconds_to_ready:.2f} s",
            "at most 2 s",
            startup.seconds_to_ready <= 2,
        ),
        (f"idle RSS {startup.idle_rss_mb:.0f} MB", "at most 120 MB", startup.idle_rss_mb <= 120),
        (f"revocation max {revocations.max_ms:.0f} ms", "under 1 s", revocations.max_ms < 1000),
        ("no errors", "0 non-2xx", all(result.errors == 0 for *_, result in rows)),
    ]
    print()
    for measured, target, met in targets:
        print(f"{'PASS' if met else 'MISS'}  {measured} (target: {target})")
    return 0 if all(met for *_, met in targets) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["login-storm"]:
        print(asyncio.run(login_storm(sys.argv[2], sys.argv[3], float(sys.argv[4]))))
    else:
        sys.exit(asyncio.run(main()))
