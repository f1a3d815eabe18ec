"""`python -m tools.bench.queue` (from the repository root): how fast the queue drains
10,000 no-op jobs with 1 and 2 worker processes, on the database backend (PostgreSQL,
MariaDB, SQLite) and on the brokers (Redis, RabbitMQ, with PostgreSQL as the auth
database), and how many jobs were lost or run twice (both must be 0).

For each run: fresh auth and app databases, migrated; K `queue work` processes started
(10 jobs at once each, the default) and registered (idle, polling every 50 ms); then
10,000 jobs enqueued in one transaction (on a broker: published at once, in batches).
The clock runs from that commit until the jobs table is empty (on a broker: until
`queue status` counts no job, polled every 50 ms by `queue_jobs wait`). Each worker
writes the uuids it ran when it exits (tools/bench/queue_jobs.py); lost and duplicated
jobs are counted from those files against the uuids enqueued. Worker logs go to
artifacts/bench/queue-*.log.

Target: at least 1,000 jobs/s with one worker on PostgreSQL. Exits 1 if it is missed
or a job is lost or duplicated. BENCH_QUEUE_JOBS, BENCH_QUEUE_CONCURRENCY,
BENCH_POSTGRES_URL and BENCH_MYSQL_URL change the defaults.
"""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tools.servers import BACKEND, REPO, VENV_BIN, fresh_database, migrate, service_environment

JOBS = int(os.environ.get("BENCH_QUEUE_JOBS", "10000"))
# The worker as shipped: QUEUE_CONCURRENCY's default, unless BENCH_QUEUE_CONCURRENCY says.
CONCURRENCY = os.environ.get("BENCH_QUEUE_CONCURRENCY", "10")
MYSQL = os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql")
BACKENDS = os.environ.get("BENCH_QUEUE_BACKENDS", "postgresql,mariadb,sqlite,redis,rabbitmq").split(
    ","
)
BROKERS = ("redis", "rabbitmq")
TARGET = 1000.0  # jobs/s, one worker, PostgreSQL
AUTH_DB, APP_DB = "dualbase_bench_queue_auth", "dualbase_bench_queue_app"
DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "mariadb": "mysql+aiomysql",
    "sqlite": "sqlite+aiosqlite",
}


@dataclass
class Result:
    backend: str
    workers: int
    seconds: float
    dispatch_seconds: float
    lost: int
    duplicated: int

    @property
    def jobs_per_second(self) -> float:
        return JOBS / self.seconds


def mariadb_database(name: str) -> str:
    server = MYSQL.rsplit("/", 1)[0]
    for statement in (f"DROP DATABASE IF EXISTS `{name}`", f"CREATE DATABASE `{name}`"):
        subprocess.run(
            ["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", statement],
            check=True,
            capture_output=True,
        )
    return f"{server}/{name}"


def databases(backend: str, workdir: Path) -> tuple[str, str]:
    if backend in ("postgresql", *BROKERS):
        return fresh_database(AUTH_DB), fresh_database(APP_DB)
    if backend == "mariadb":
        return mariadb_database(AUTH_DB), mariadb_database(APP_DB)
    for name in ("auth", "app"):
        for suffix in ("", "-wal", "-shm"):
            (workdir / f"{name}.db{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{workdir / 'auth.db'}", f"sqlite:///{workdir / 'app.db'}"


def in_backend(args: list[str], env: dict[str, str], **popen: object) -> "subprocess.Popen[str]":
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [str(VENV_BIN / "python"), *args], cwd=BACKEND, env=env, text=True, **popen
    )


async def count(engine_url: str, table: str) -> int:
    engine = create_async_engine(engine_url)
    try:
        async with engine.connect() as connection:
            counted = await connection.execute(text(f"SELECT count(*) FROM {table}"))
            return int(counted.scalar_one())
    finally:
        await engine.dispose()


async def until(measure: Callable[[], Awaitable[int]], wanted: int) -> None:
    """Poll `measure` every 20 ms until it gives `wanted`."""
    while True:
        if await measure() == wanted:
            return
        await asyncio.sleep(0.02)


async def table_drained(driver_url: str) -> float:
    """When the jobs table is empty. Each count in its own transaction: one transaction
    would keep counting from the snapshot it began with on MariaDB (REPEATABLE READ)."""
    engine = create_async_engine(driver_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:

        async def left() -> int:
            counted = await connection.execute(text("SELECT count(*) FROM jobs"))
            return int(counted.scalar_one())

        await until(left, 0)
    drained = time.time()
    await engine.dispose()
    return drained


async def watching(env: dict[str, str]) -> "subprocess.Popen[str]":
    """`queue_jobs wait`, once it watches the broker's queue (before the jobs come)."""
    watcher = in_backend(["-m", "tools.bench.queue_jobs", "wait"], env, stdout=subprocess.PIPE)
    assert watcher.stdout is not None
    assert await asyncio.to_thread(watcher.stdout.readline) == "watching\n"
    return watcher


async def broker_drained(watcher: "subprocess.Popen[str]") -> float:
    """When the watcher saw the broker's queue, once filled, empty."""
    output, _ = await asyncio.to_thread(watcher.communicate, timeout=600)
    return float(output)


async def run(backend: str, workers: int, workdir: Path) -> Result:
    auth_url, app_url = databases(backend, workdir)
    seen = workdir / "seen"
    seen.mkdir(exist_ok=True)
    for old in seen.iterdir():
        old.unlink()
    env = service_environment(
        auth_url,
        app_url,
        PYTHONPATH=str(REPO),
        BENCH_QUEUE_SEEN=str(seen),
        QUEUE_POLL_INTERVAL="0.05",
        LOG_LEVEL="warning",
    )
    if backend in BROKERS:
        env |= {"QUEUE_BACKEND": backend, "QUEUE_PREFIX": f"bench-{os.getpid()}-{workers}"}
    migrate(env)
    driver = DRIVERS["postgresql" if backend in BROKERS else backend]
    driver_url = auth_url.replace(auth_url.split("://", 1)[0], driver, 1)
    log = (REPO / "artifacts" / "bench" / f"queue-{backend}-{workers}.log").open("w")
    command = ["-m", "app.cli", "queue", "work", "--jobs", "tools.bench.queue_jobs:JOBS"]
    processes = [
        in_backend([*command, "--concurrency", CONCURRENCY], env, stdout=log, stderr=log)
        for _ in range(workers)
    ]
    try:
        await until(lambda: count(driver_url, "queue_workers"), workers)
        uuids = workdir / "uuids.txt"
        watcher = await watching(env) if backend in BROKERS else None
        pusher = in_backend(
            ["-m", "tools.bench.queue_jobs", "push", str(JOBS), str(uuids)],
            env,
            stdout=subprocess.PIPE,
        )
        output, _ = await asyncio.to_thread(pusher.communicate, timeout=300)
        started, committed = map(float, output.split())
        if watcher is not None:
            drained = await broker_drained(watcher)
        else:
            drained = await table_drained(driver_url)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        log.close()
    ran = Counter(uuid for file in seen.iterdir() for uuid in file.read_text().split())
    expected = set(uuids.read_text().split())
    return Result(
        backend,
        workers,
        seconds=drained - committed,
        dispatch_seconds=committed - started,
        lost=len(expected - set(ran)) + await count(driver_url, "failed_jobs"),
        duplicated=sum(times - 1 for times in ran.values() if times > 1),
    )


async def main() -> int:
    (REPO / "artifacts" / "bench").mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in BACKENDS:
            for workers in (1, 2):
                results.append(await run(backend, workers, Path(folder)))
                rate = results[-1].jobs_per_second
                print(f"{backend}, {workers} worker(s): {rate:.0f} jobs/s", file=sys.stderr)
    print(f"\n{JOBS:,} no-op jobs, concurrency {CONCURRENCY} per worker, {os.cpu_count()} cores\n")
    print("| backend    | workers | jobs/s | drained in s | enqueued in s | lost | duplicated |")
    print("|------------|--------:|-------:|-------------:|--------------:|-----:|-----------:|")
    for result in results:
        print(
            f"| {result.backend:<10} | {result.workers:>7} | {result.jobs_per_second:>6.0f} | "
            f"{result.seconds:>12.2f} | {result.dispatch_seconds:>13.2f} | {result.lost:>4} | "
            f"{result.duplicated:>10} |"
        )
    failures = [r for r in results if r.lost or r.duplicated]
    slow = [
        result
        for result in results
        if (result.backend, result.workers) == ("postgresql", 1) and result.jobs_per_second < TARGET
    ]
    if slow:
        print(f"\nmissed: fewer than {TARGET:.0f} jobs/s with one worker on PostgreSQL")
    return 1 if failures or slow else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
