"""The outbox: a job staged with an app-database write is enqueued if and only if the
write commits, at least once and never twice, whatever commit fails in between.

Failures are injected with an engine's `commit` event raising once, as a connection
dying during COMMIT would; everything else talks to the real databases. The activity
entries the orders and products would stage too are paused here: tests/test_activity.py
drives those through the same failures.
"""

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.essentials.activity.recording import without_logs
from app.essentials.outbox.models import OutboxMessage, OutboxReceipt
from app.essentials.outbox.outbox import Outbox
from app.essentials.queue.models import QueuedJob
from app.products.models import Product
from tests.accounts import API, Account, signed_up
from tests.queue_jobs import record
from tests.queue_support import Harness, run_app_jobs, wait_for


@pytest.fixture(autouse=True)
def _jobs_only() -> Iterator[None]:
    with without_logs():
        yield


class CommitFails:
    """Makes the next COMMIT through `engine` fail, as a server dying would; with
    `armed_by`, only the next one after a COMMIT through that other engine."""

    def __init__(self, engine: AsyncEngine, armed_by: AsyncEngine | None = None) -> None:
        self.engine = engine.sync_engine
        self.trigger = armed_by.sync_engine if armed_by is not None else None
        self.armed = armed_by is None
        self.failed = 0

    def _arm(self, _connection: object) -> None:
        self.armed = True

    def _commit(self, _connection: object) -> None:
        if self.armed and not self.failed:
            self.failed += 1
            raise ConnectionResetError("injected: the connection died during COMMIT")

    def __enter__(self) -> "CommitFails":
        event.listen(self.engine, "commit", self._commit)
        if self.trigger is not None:
            event.listen(self.trigger, "commit", self._arm)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "commit", self._commit)
        if self.trigger is not None:
            event.remove(self.trigger, "commit", self._arm)


async def buyer_and_product(client: httpx.AsyncClient, app: FastAPI) -> tuple[Account, int]:
    ada = await signed_up(client, "ada@example.com")
    async with app.state.databases.app.sessions() as app_db:
        product = Product(sku="LAMP-1", name="Desk lamp", price="19.90", stock=10)
        app_db.add(product)
        await app_db.commit()
    return ada, product.id


async def place(client: httpx.AsyncClient, buyer: Account, product_id: int) -> httpx.Response:
    return await client.post(
        f"{API}/orders",
        json={"items": [{"product_id": product_id, "quantity": 2}]},
        headers=buyer.headers,
    )


async def confirmation_jobs(app: FastAPI) -> list[int]:
    """The orders whose notification (with the confirmation mail) is queued."""
    async with app.state.databases.auth.engine.connect() as connection:
        payloads = await connection.scalars(
            select(QueuedJob.payload).where(QueuedJob.name == "notifications.deliver")
        )
        notifications = [json.loads(payload)["notification"] for payload in payloads]
    return [
        notification["data"]["order_id"]
        for notification in notifications
        if notification["type"] == "orders.placed"
    ]


async def staged(app: FastAPI) -> int:
    async with app.state.databases.app.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def test_placing_an_order_queues_its_confirmation_and_a_worker_mails_it(
    client: httpx.AsyncClient, app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    ada, product_id = await buyer_and_product(client, app)

    placed = await place(client, ada, product_id)

    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    # Relayed as soon as the order committed: the job is queued, the outbox is empty.
    assert await confirmation_jobs(app) == [order_id]
    assert await staged(app) == 0
    capsys.readouterr()
    await run_app_jobs(app)
    mailed = capsys.readouterr().out
    assert f"--- mail to ada@example.com: Your order #{order_id}\n" in mailed
    assert f"Thank you for your order #{order_id}" in mailed
    assert "  2 x Desk lamp at 19.90\nTotal: 39.80" in mailed
    assert await confirmation_jobs(app) == []


async def test_a_crash_after_the_order_commits_and_before_the_job_is_written_loses_no_job(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada, product_id = await buyer_and_product(client, app)
    databases = app.state.databases

    with CommitFails(databases.auth.engine) as crash:
        placed = await place(client, ada, product_id)

    assert crash.failed == 1  # the relay's auth transaction died
    assert placed.status_code == 201, placed.text  # the order itself stands
    assert await confirmation_jobs(app) == []
    assert await staged(app) == 1
    # What every worker does every OUTBOX_RELAY_INTERVAL seconds:
    assert await app.state.outbox.relay(older_than=0) == 1
    assert await confirmation_jobs(app) == [placed.json()["id"]]
    assert await staged(app) == 0
    assert await app.state.outbox.relay(older_than=0) == 0
    assert len(await confirmation_jobs(app)) == 1


async def test_a_crash_after_the_job_is_written_and_before_the_outbox_is_cleared_queues_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada, product_id = await buyer_and_product(client, app)
    databases = app.state.databases

    with CommitFails(databases.app.engine, armed_by=databases.auth.engine) as crash:
        placed = await place(client, ada, product_id)

    assert crash.failed == 1  # the relay's delete of the outbox row died
    assert placed.status_code == 201, placed.text
    assert await confirmation_jobs(app) == [placed.json()["id"]]
    assert await staged(app) == 1
    # The next relay finds the message's receipt: it clears the row, queues nothing.
    assert await app.state.outbox.relay(older_than=0) == 1
    assert await staged(app) == 0
    assert await confirmation_jobs(app) == [placed.json()["id"]]


async def test_an_order_whose_commit_fails_leaves_no_job(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada, product_id = await buyer_and_product(client, app)

    with CommitFails(app.state.databases.app.engine):
        placed = await place(client, ada, product_id)

    assert placed.status_code == 503
    assert await staged(app) == 0
    assert await app.state.outbox.relay(older_than=0) == 0
    assert await confirmation_jobs(app) == []


async def stage_without_relay(outbox: Outbox, app: FastAPI, count: int) -> list[str]:
    """Messages staged and committed, as if their process died before relaying them."""
    async with app.state.databases.app.sessions() as app_db:
        messages = [record.message(note=str(number)) for number in range(count)]
        for message in messages:
            await outbox.stage(app_db, message)
        await app_db.commit()  # a bare commit: `transaction()`'s after-commit relay is skipped
    return [message.uuid for message in messages]


async def test_relays_running_at_once_queue_each_message_once(harness: Harness) -> None:
    app = harness.app
    uuids = await stage_without_relay(app.state.outbox, app, 150)

    await asyncio.gather(*(app.state.outbox.relay(older_than=0) for _ in range(4)))
    await app.state.outbox.relay(older_than=0)

    assert await staged(app) == 0
    await harness.work_off()
    assert sorted(run.uuid for run in await harness.runs()) == sorted(uuids)


async def test_a_worker_relays_what_no_request_did(harness: Harness) -> None:
    app = harness.app
    (uuid,) = await stage_without_relay(app.state.outbox, app, 1)
    worker = harness.start_worker(OUTBOX_RELAY_INTERVAL="0.2", OUTBOX_RELAY_DELAY="0")

    async def ran() -> bool:
        return [run.uuid for run in await harness.runs()] == [uuid]

    await wait_for(ran)
    await worker.stop()
    assert await staged(app) == 0


async def test_a_message_of_a_kind_without_handler_waits(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    class Unknown:
        kind = "webhook"
        uuid = "0d8a3c63-8b0a-4bb4-9d5f-0e1a5a6b7c8d"

        def payload(self) -> dict[str, Any]:
            return {"event": "created"}

    outbox: Outbox = app.state.outbox
    async with app.state.databases.app.sessions() as app_db:
        await outbox.stage(app_db, Unknown())
        await outbox.stage(app_db, record.message())
        await app_db.commit()

    with caplog.at_level(logging.ERROR):
        assert await outbox.relay(older_than=0) == 2

    assert await staged(app) == 1
    assert "no handler for outbox kind 'webhook'" in caplog.text


async def test_receipts_older_than_their_retention_are_pruned(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    now = datetime.now(UTC)
    ages = {"fresh": timedelta(days=1), "old": timedelta(days=8), "older": timedelta(days=30)}
    async with app.state.databases.auth.engine.begin() as connection:
        await connection.execute(
            insert(OutboxReceipt),
            [{"uuid": name, "kind": "job", "received_at": now - age} for name, age in ages.items()],
        )

    assert await app.state.outbox.prune_receipts() == 2

    async with app.state.databases.auth.engine.connect() as connection:
        assert list(await connection.scalars(select(OutboxReceipt.uuid))) == ["fresh"]
