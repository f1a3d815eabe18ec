"""The queue under test: the `harness` fixture, and workers in this process or in others.

`QUEUE_BACKENDS` lists the backends the queue's contract suite runs on, each over
every database backend of the run: the auth database, Redis (127.0.0.1:6379) and
RabbitMQ (127.0.0.1:5672), each test under a QUEUE_PREFIX of its own. Loaded as a
plugin by conftest.py, so that `harness` is a fixture of every test module.
"""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import delete, func, select

from app.core.config import BACKEND_DIR, Settings
from app.core.db.registry import Databases
from app.essentials.outbox.outbox import Outbox
from app.essentials.queue.backend import QueueBackend
from app.essentials.queue.context import JobServices
from app.essentials.queue.database import DatabaseBackend
from app.essentials.queue.jobs import JobMessage, JobRegistry
from app.essentials.queue.models import FailedJob, QueueWorker
from app.essentials.queue.queue import Queue, create_backend
from app.essentials.queue.rabbitmq_broker import RabbitMQBackend
from app.essentials.queue.redis_broker import RedisBackend
from app.essentials.queue.worker import Worker
from app.jobs import JOBS
from tests.conftest import (
    SETTINGS_VARIABLES,
    TEST_SECRET,
    empty_tables,
    open_redis,
    unique_prefix,
    unreachable,
    url_string,
)
from tests.processes import CliProcess
from tests.queue_jobs import FAST, RUNS, TEST_JOBS

QUEUE_BACKENDS = ["database", "redis", "rabbitmq"]


async def broker_url(name: str) -> str | None:
    """Where the broker of queue backend `name` answers (None for `database`); skipped,
    or failed under CI, when it does not (TEST_REDIS_URL, TEST_RABBITMQ_URL)."""
    if name == "redis":
        return await open_redis()
    if name == "rabbitmq":
        url = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
        try:
            connection = await aio_pika.connect(url, timeout=5)
        except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
            unreachable(f"RabbitMQ is not reachable at {url} ({exc}); set TEST_RABBITMQ_URL")
        await connection.close()
        return url
    return None


def backend_for(name: str, databases: Databases, settings: Settings) -> QueueBackend:
    if name == "database":
        return DatabaseBackend(databases.auth)
    if name in ("redis", "rabbitmq"):
        return create_backend(settings, databases)
    raise ValueError(f"no queue backend {name!r}")


async def remove_broker_data(backend: QueueBackend) -> None:
    """Delete what a test left in its broker: its keys, or its queues."""
    if isinstance(backend, RedisBackend):
        keys = [key async for key in backend.redis.scan_iter(f"{backend.keys}:*")]
        if keys:
            await backend.redis.delete(*keys)
    elif isinstance(backend, RabbitMQBackend):
        channel = await backend._channel()
        # Worker processes declare queues this process may not have: the tests' names too.
        for queue in backend.declared | {"default", "high", "mail"}:
            await channel.queue_delete(backend.queue_name(queue))
    await backend.close()


@dataclass
class Run:
    uuid: str
    name: str
    attempt: int
    batch_id: int | None
    note: str
    pid: int
    at: datetime


@dataclass
class Harness:
    """A queue on one backend, the test jobs, quick settings, and ways to look inside."""

    backend_name: str
    app: FastAPI
    settings: Settings
    queue: Queue
    services: JobServices
    logs: Path  # where worker processes write their output
    processes: list[CliProcess] = field(default_factory=list)

    @property
    def databases(self) -> Databases:
        return self.services.databases

    async def runs(self) -> list[Run]:
        columns = [RUNS.c[name] for name in Run.__dataclass_fields__]
        async with self.databases.app.engine.connect() as connection:
            rows = await connection.execute(select(*columns).order_by(RUNS.c.id))
            return [Run(*row) for row in rows.all()]

    async def count(self, model: Any) -> int:
        async with self.databases.auth.engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(model)) or 0)

    async def jobs_left(self) -> int:
        """Jobs ready, delayed or running (on any backend: as `queue status` counts)."""
        counts = await self.queue.status()
        return sum(row.ready + row.delayed + row.running for row in counts)

    async def failed_jobs(self) -> int:
        return await self.count(FailedJob)

    async def workers_alive(self) -> int:
        return await self.count(QueueWorker)

    def worker(self, queues: Sequence[str] = ("default",), concurrency: int = 4) -> Worker:
        return Worker(self.services, TEST_JOBS, queues=queues, concurrency=concurrency)

    async def work_off(self, *workers: Worker, within: float = 30) -> None:
        """Run workers (one by default) until no job is left, delayed ones included."""
        workers = workers or (self.worker(),)
        running = [asyncio.create_task(worker.run()) for worker in workers]
        try:
            await wait_for(self._nothing_left, within)
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.gather(*running)

    async def drain(self, queues: Sequence[str] = ("default",)) -> None:
        """Run a worker until none of the jobs of `queues` is ready or running."""
        await drain(self.services, TEST_JOBS, queues)

    async def _nothing_left(self) -> bool:
        # Twice, a moment apart: RabbitMQ does not tell a job being taken from one that
        # is gone, until its worker has written that it holds it (rabbitmq_broker.py).
        if await self.jobs_left() > 0:
            return False
        await asyncio.sleep(0.2)
        return await self.jobs_left() == 0

    def environment(self, **extra: str) -> dict[str, str]:
        """What a `python -m app.cli` process needs to use this queue."""
        environment = dict(os.environ)
        for name in SETTINGS_VARIABLES:
            environment.pop(name, None)
        return {
            **environment,
            "ENVIRONMENT": "test",
            "SECRET_KEY": TEST_SECRET,
            "AUTH_DATABASE_URL": url_string(self.settings.resolved_database_url("auth")),
            "APP_DATABASE_URL": url_string(self.settings.resolved_database_url("app")),
            "QUEUE_BACKEND": self.backend_name,
            "QUEUE_PREFIX": self.settings.queue_prefix,
            "QUEUE_URL": self.settings.broker_url if self.settings.queue_url else "",
            "LOG_FORMAT": "text",
            **{name.upper(): str(value) for name, value in FAST.items()},
            **extra,
        }

    def start_worker(self, *arguments: str, **extra: str) -> CliProcess:
        """`python -m app.cli queue work --jobs tests.queue_jobs:TEST_JOBS ARGUMENTS`."""
        command = ["queue", "work", "--jobs", "tests.queue_jobs:TEST_JOBS", *arguments]
        log = self.logs / f"worker-{len(self.processes) + 1}.log"
        worker = CliProcess.start(command, self.environment(**extra), log)
        self.processes.append(worker)
        return worker

    async def cli(self, *arguments: str) -> "subprocess.CompletedProcess[str]":
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app.cli", *arguments],
            cwd=BACKEND_DIR,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(params=QUEUE_BACKENDS)
async def harness(
    request: pytest.FixtureRequest, app: FastAPI, tmp_path: Path
) -> AsyncIterator[Harness]:
    databases: Databases = app.state.databases
    url = await broker_url(request.param)
    # A prefix of its own, so that tests and runs sharing a broker never meet.
    settings: Settings = app.state.settings.model_copy(
        update={
            **FAST,
            "queue_backend": request.param,
            "queue_url": SecretStr(url) if url else None,
            "queue_prefix": f"dualbase-test-{unique_prefix()}",
        }
    )
    async with databases.app.engine.begin() as connection:
        await connection.run_sync(RUNS.metadata.create_all)
    queue = Queue(backend_for(request.param, databases, settings), databases)
    services = JobServices(databases, settings, app.state.runtime.mailer, queue)
    harness = Harness(request.param, app, settings, queue, services, tmp_path)
    # The app's endpoints and its outbox use this queue, as they would under its settings.
    saved = app.state.queue, app.state.outbox
    app.state.queue = queue
    app.state.outbox = Outbox(databases, settings, {JobMessage.kind: queue.deliver})
    try:
        yield harness
    finally:
        app.state.queue, app.state.outbox = saved
    for worker in harness.processes:  # a test that failed may have left one running
        if worker.running():
            worker.kill()
            await worker.finished()
    async with asyncio.timeout(30):  # a broker that stops answering fails the test
        await remove_broker_data(queue.backend)
    await empty_tables(app)
    async with databases.app.engine.begin() as connection:
        await connection.execute(delete(RUNS))


async def wait_for(condition: Callable[[], Awaitable[bool]], within: float = 30) -> None:
    """Poll `condition` until it holds; fail the test after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.05)


async def drain(
    services: JobServices, registry: JobRegistry, queues: Sequence[str] = ("default",)
) -> None:
    """Run a worker in this process until no job of `queues` is ready or running."""
    worker = Worker(services, registry, queues=queues, concurrency=4, stop_when_empty=True)
    await worker.run()


async def run_app_jobs(app: FastAPI) -> None:
    """Run what the application's requests dispatched, as `queue work` would."""
    await drain(app.state.runtime.job_services, JOBS)
