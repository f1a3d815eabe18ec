"""What only the broker backends do (`QUEUE_BACKEND=redis|rabbitmq`): publishing what
an auth transaction staged once it commits, and recognising a job published twice.
The rest of their contract is the queue's, in test_queue.py and test_queue_processes.py."""

import pytest
from sqlalchemy import func, select

from app.core.db.integrity import integrity_session
from app.essentials.queue.models import QueuedJob
from tests.conftest import make_settings
from tests.queue_jobs import record
from tests.queue_support import Harness

BROKERS = pytest.mark.parametrize("harness", ["redis", "rabbitmq"], indirect=True)


async def staged_rows(harness: Harness) -> int:
    async with harness.databases.auth.autocommit() as connection:
        query = select(func.count()).select_from(QueuedJob).where(QueuedJob.worker_id.is_(None))
        return int(await connection.scalar(query) or 0)


@BROKERS
async def test_a_dispatch_within_is_published_once_its_transaction_commits(
    harness: Harness,
) -> None:
    async with integrity_session(harness.databases, "auth", "dispatch") as auth_db:
        await harness.queue.dispatch_within(auth_db, record, note="committed")
        # Written in the transaction: neither in the broker nor visible yet.
        assert await harness.queue.status() == []

    # Published right after the commit, without waiting for a worker's round.
    (counts,) = await harness.queue.status()
    assert (counts.queue, counts.ready) == ("default", 1)
    assert await staged_rows(harness) == 0
    await harness.work_off()
    assert [run.note for run in await harness.runs()] == ["committed"]


@BROKERS
async def test_delayed_jobs_wait_in_the_auth_database_until_due(harness: Harness) -> None:
    await harness.queue.dispatch(record, note="later", delay=3600)

    (counts,) = await harness.queue.status()

    assert (counts.ready, counts.delayed) == (0, 1)
    assert await staged_rows(harness) == 1


@pytest.mark.parametrize("harness", ["redis"], indirect=True)
async def test_redis_takes_a_job_published_twice_once(harness: Harness) -> None:
    # As the auth database's outbox does when it crashes between publishing a job and
    # deleting its row: the next publication sends it again.
    message = record.message(note="once")
    await harness.queue.backend.push([message])
    await harness.queue.backend.push([message])

    await harness.work_off()

    assert [run.note for run in await harness.runs()] == ["once"]


@pytest.mark.parametrize(
    ("backend", "url", "problem"),
    [
        ("redis", "amqp://guest:guest@127.0.0.1:5672/", "does not fit QUEUE_BACKEND=redis"),
        ("rabbitmq", "redis://127.0.0.1:6379/0", "does not fit QUEUE_BACKEND=rabbitmq"),
        ("redis", "http://127.0.0.1:6379", "QUEUE_URL must be"),
    ],
)
def test_a_queue_url_that_does_not_fit_the_backend_is_refused(
    backend: str, url: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        make_settings(queue_backend=backend, queue_url=url)


def test_the_broker_url_defaults_to_redis_url_or_a_local_rabbitmq() -> None:
    redis = make_settings(queue_backend="redis", redis_url="redis://cache:6379/2")
    rabbitmq = make_settings(queue_backend="rabbitmq")

    assert redis.broker_url == "redis://cache:6379/2"
    assert rabbitmq.broker_url == "amqp://guest:guest@127.0.0.1:5672/"
