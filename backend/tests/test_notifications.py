"""Notifications: delivered by the queue, read by their user only, kept until pruned.

Each notification is sent as the application sends it (`notify`, a request that
stages one) and delivered by running the queued jobs, as a worker would.
"""

import base64
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, insert, select

from app.essentials.notifications import jobs as notification_jobs
from app.essentials.notifications import service as notification_service
from app.essentials.notifications.jobs import deliver_notification
from app.essentials.notifications.models import Notification as NotificationRow
from app.essentials.notifications.notification import Mail, Notification, render
from app.essentials.notifications.sending import notify
from app.essentials.queue.context import JobContext
from app.essentials.queue.models import JobBatch
from app.products.models import Product
from app.schedule import SCHEDULE
from tests.accounts import API, Account, an_admin, assert_error, signed_up
from tests.conftest import run_cli
from tests.queue_support import run_app_jobs

NOTIFICATIONS = f"{API}/notifications"
MISSING = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Greeting(Notification):
    type = "tests.greeting"
    channels = ("database", "mail")

    text: str

    def to_database(self) -> dict[str, Any]:
        return {"text": self.text}

    def to_mail(self) -> Mail:
        return Mail(f"Greeting: {self.text}", f"Hello! {self.text}")


@dataclass(frozen=True)
class Ping(Notification):
    """In the inbox only."""

    type = "tests.ping"

    number: int

    def to_database(self) -> dict[str, Any]:
        return {"number": self.number}


async def send(app: FastAPI, user: Account, *notifications: Notification) -> list[str]:
    """Notify `user` of each, then run the jobs; returns the notifications' ids."""
    ids = [await notify(app.state.queue, user.id, notification) for notification in notifications]
    await run_app_jobs(app)
    return ids


async def inbox(client: httpx.AsyncClient, user: Account, **params: Any) -> list[dict[str, Any]]:
    """Every notification of `user`, following the cursors (pages of 2)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(NOTIFICATIONS, params=query, headers=user.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 2
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def unread(client: httpx.AsyncClient, user: Account) -> int:
    response = await client.get(f"{NOTIFICATIONS}/unread-count", headers=user.headers)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"unread"}
    count: int = response.json()["unread"]
    return count


async def rows_of(app: FastAPI, user_id: int) -> list[NotificationRow]:
    async with app.state.databases.auth.sessions() as auth_db:
        query = select(NotificationRow).where(NotificationRow.user_id == user_id)
        return list(await auth_db.scalars(query.order_by(NotificationRow.created_at)))


# --- the inbox ---------------------------------------------------------------------------------


async def test_the_inbox_lists_ones_notifications_newest_first_in_pages(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    ids = await send(app, ada, *(Ping(number) for number in range(5)))
    await send(app, bob, Ping(99))

    listed = await inbox(client, ada)

    assert [item["id"] for item in listed] == ids[::-1]
    assert [item["data"] for item in listed] == [{"number": n} for n in (4, 3, 2, 1, 0)]
    assert {item["type"] for item in listed} == {"tests.ping"}
    assert all(item["read_at"] is None for item in listed)
    assert await unread(client, ada) == 5
    assert [item["data"] for item in await inbox(client, bob)] == [{"number": 99}]


async def test_unread_true_lists_only_the_unread_ones(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    ids = await send(app, ada, *(Ping(number) for number in range(5)))
    for read in (ids[1], ids[3]):
        response = await client.post(f"{NOTIFICATIONS}/{read}/read", headers=ada.headers)
        assert response.status_code == 200, response.text

    listed = await inbox(client, ada, unread="true")

    assert [item["id"] for item in listed] == [ids[4], ids[2], ids[0]]
    assert await unread(client, ada) == 3
    assert len(await inbox(client, ada)) == 5


async def test_reading_twice_keeps_the_first_read_at(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    [ping] = await send(app, ada, Ping(1))

    first = await client.post(f"{NOTIFICATIONS}/{ping}/read", headers=ada.headers)
    second = await client.post(f"{NOTIFICATIONS}/{ping}/read", headers=ada.headers)

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert first.json()["read_at"] is not None
    assert second.json() == first.json()
    assert await unread(client, ada) == 0
    assert (await inbox(client, ada))[0]["read_at"] == first.json()["read_at"]


async def test_read_all_marks_every_unread_one_and_no_one_elses(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    ids = await send(app, ada, Ping(1), Ping(2), Ping(3))
    await send(app, bob, Ping(4))
    first = await client.post(f"{NOTIFICATIONS}/{ids[0]}/read", headers=ada.headers)

    response = await client.post(f"{NOTIFICATIONS}/read-all", headers=ada.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"read": 2}
    assert await unread(client, ada) == 0
    assert await inbox(client, ada, unread="true") == []
    kept = {item["id"]: item["read_at"] for item in await inbox(client, ada)}
    assert kept[ids[0]] == first.json()["read_at"]
    assert await unread(client, bob) == 1
    again = await client.post(f"{NOTIFICATIONS}/read-all", headers=ada.headers)
    assert again.json() == {"read": 0}


async def test_deleting_a_notification_removes_it(client: httpx.AsyncClient, app: FastAPI) -> None:
    ada = await signed_up(client, "ada@example.com")
    kept, gone = await send(app, ada, Ping(1), Ping(2))

    response = await client.delete(f"{NOTIFICATIONS}/{gone}", headers=ada.headers)

    assert response.status_code == 204, response.text
    assert [item["id"] for item in await inbox(client, ada)] == [kept]
    assert await unread(client, ada) == 1
    assert_error(
        await client.delete(f"{NOTIFICATIONS}/{gone}", headers=ada.headers), 404, "not_found"
    )
    assert_error(
        await client.post(f"{NOTIFICATIONS}/{gone}/read", headers=ada.headers), 404, "not_found"
    )


async def test_someone_elses_notification_is_not_found(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    eve = await signed_up(client, "eve@example.com")
    [secret] = await send(app, ada, Ping(1))

    for response in (
        await client.post(f"{NOTIFICATIONS}/{secret}/read", headers=eve.headers),
        await client.delete(f"{NOTIFICATIONS}/{secret}", headers=eve.headers),
        await client.post(f"{NOTIFICATIONS}/{MISSING}/read", headers=eve.headers),
        await client.delete(f"{NOTIFICATIONS}/{MISSING}", headers=eve.headers),
    ):
        assert_error(response, 404, "not_found")
    assert await inbox(client, eve) == []
    assert await unread(client, eve) == 0
    assert (await client.post(f"{NOTIFICATIONS}/read-all", headers=eve.headers)).json() == {
        "read": 0
    }
    [mine] = await inbox(client, ada)
    assert mine["id"] == secret
    assert mine["read_at"] is None


async def test_bad_ids_and_cursors_are_client_errors(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    await send(app, ada, Ping(1), Ping(2), Ping(3))

    # An id that is not a UUID names no notification: the path itself is not found.
    for bad_id in ("not-a-uuid", "12", "00000000-0000-4000-8000-00000000000g", "x" * 300):
        assert_error(
            await client.post(f"{NOTIFICATIONS}/{bad_id}/read", headers=ada.headers),
            404,
            "not_found",
        )
        assert_error(
            await client.delete(f"{NOTIFICATIONS}/{bad_id}", headers=ada.headers),
            404,
            "not_found",
        )
    # The fixed paths beside the ids are not ids: a method they lack is a 405.
    for fixed in ("read-all", "unread-count", "announcements"):
        response = await client.delete(f"{NOTIFICATIONS}/{fixed}", headers=ada.headers)
        assert_error(response, 405, "method_not_allowed")
    [first, *_] = await inbox(client, ada)
    upper = await client.post(f"{NOTIFICATIONS}/{first['id'].upper()}/read", headers=ada.headers)
    assert upper.status_code == 200, upper.text
    assert upper.json()["id"] == first["id"]

    def cursor_of(key: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")

    for bad_cursor in (
        "not a cursor!",
        "e30",  # {}
        cursor_of([1]),
        cursor_of(["2026-11-30T12:00:00", MISSING]),  # a time without its offset
        cursor_of(["2026-11-30T12:00:00+00:00", "not-a-uuid"]),
        cursor_of(["yesterday", MISSING]),
        cursor_of([12, 34]),
    ):
        response = await client.get(
            NOTIFICATIONS, params={"cursor": bad_cursor}, headers=ada.headers
        )
        assert_error(response, 400, "invalid_cursor")
    for params in ({"limit": 0}, {"limit": 101}, {"unread": "perhaps"}):
        response = await client.get(NOTIFICATIONS, params=params, headers=ada.headers)
        assert_error(response, 422, "validation_error")


async def test_the_notifications_api_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", NOTIFICATIONS),
        ("GET", f"{NOTIFICATIONS}/unread-count"),
        ("POST", f"{NOTIFICATIONS}/read-all"),
        ("POST", f"{NOTIFICATIONS}/{MISSING}/read"),
        ("DELETE", f"{NOTIFICATIONS}/{MISSING}"),
        ("POST", f"{NOTIFICATIONS}/announcements"),
    ):
        response = await client.request(method, path)
        assert_error(response, 401, "not_authenticated")


# --- delivery ----------------------------------------------------------------------------------


async def test_a_notification_is_written_once_and_mailed_when_its_delivery_runs_twice(
    client: httpx.AsyncClient, app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = await signed_up(client, "ada@example.com")
    rendered = render(Greeting("twice")).arguments()
    queue = app.state.queue
    # As a retry after a failed mail, or a job recovered from a worker that died, would.
    await queue.dispatch(deliver_notification, user_id=ada.id, notification=rendered)
    await queue.dispatch(deliver_notification, user_id=ada.id, notification=rendered)
    assert await rows_of(app, ada.id) == []  # nothing before a worker runs it
    capsys.readouterr()

    await run_app_jobs(app)

    [row] = await rows_of(app, ada.id)
    assert row.id == rendered["id"]
    assert row.data == {"text": "twice"}
    mailed = capsys.readouterr().out
    assert mailed.count("--- mail to ada@example.com: Greeting: twice\nHello! twice\n") == 2


async def test_a_notification_for_a_user_gone_since_is_dropped(
    client: httpx.AsyncClient, app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = await signed_up(client, "ada@example.com")
    await notify(app.state.queue, ada.id, Greeting("too late"))
    erased = await client.request(
        "DELETE", f"{API}/users/me", json={"password": ada.password}, headers=ada.headers
    )
    assert erased.status_code == 204, erased.text
    capsys.readouterr()

    await run_app_jobs(app)

    assert await rows_of(app, ada.id) == []
    assert "too late" not in capsys.readouterr().out
    async with app.state.databases.auth.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(NotificationRow)) == 0


# --- announcements -----------------------------------------------------------------------------


async def test_an_announcement_reaches_every_active_user_through_a_batch(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notification_jobs, "CHUNK", 2)  # 5 users: 3 jobs in the batch
    boss = await an_admin(client, app)
    users = [await signed_up(client, f"user{number}@example.com") for number in range(5)]
    gone = users.pop()
    deactivated = await client.patch(
        f"{API}/users/{gone.id}", json={"is_active": False}, headers=boss.headers
    )
    assert deactivated.status_code == 200, deactivated.text
    body = {"title": "Maintenance", "body": "The shop closes at 22:00 UTC."}

    response = await client.post(f"{NOTIFICATIONS}/announcements", json=body, headers=boss.headers)

    assert response.status_code == 202, response.text
    assert set(response.json()) == {"id"}
    for user in (boss, *users):
        assert await unread(client, user) == 0  # answered before any delivery
    await run_app_jobs(app)
    for user in (boss, *users):
        [announcement] = await inbox(client, user)
        assert announcement["type"] == "announcement"
        assert announcement["data"] == body
    assert [row.type for row in await rows_of(app, gone.id)] == ["users.deactivated"]
    async with app.state.databases.auth.sessions() as auth_db:
        [batch] = list(await auth_db.scalars(select(JobBatch)))
    assert (batch.total_jobs, batch.pending_jobs, batch.failed_jobs) == (3, 0, 0)
    assert batch.finished_at is not None


async def test_only_announcers_may_announce_and_the_text_is_checked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    boss = await an_admin(client, app)
    body = {"title": "Hello", "body": "Everyone"}

    assert_error(
        await client.post(f"{NOTIFICATIONS}/announcements", json=body, headers=ada.headers),
        403,
        "permission_denied",
    )
    for bad in (
        {"title": "", "body": "x"},
        {"title": "x"},
        {"title": "x", "body": "   "},
        {"title": "x" * 201, "body": "x"},
        {"title": "x", "body": "y", "extra": 1},
    ):
        response = await client.post(
            f"{NOTIFICATIONS}/announcements", json=bad, headers=boss.headers
        )
        assert_error(response, 422, "validation_error")
    await run_app_jobs(app)
    assert await inbox(client, ada) == []


# --- where the application notifies ------------------------------------------------------------


async def a_lamp(app: FastAPI, *, stock: int) -> int:
    """A product at 19.90 in the catalogue; returns its id."""
    async with app.state.databases.app.sessions() as app_db:
        lamp = Product(sku="LAMP-1", name="Desk lamp", price="19.90", stock=stock)
        app_db.add(lamp)
        await app_db.commit()
    return lamp.id


async def test_placing_and_cancelling_an_order_notify_the_buyer_once_each(
    client: httpx.AsyncClient, app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = await signed_up(client, "ada@example.com")
    body = {"items": [{"product_id": await a_lamp(app, stock=10), "quantity": 2}]}
    capsys.readouterr()

    placed = await client.post(f"{API}/orders", json=body, headers=ada.headers)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    await run_app_jobs(app)

    [confirmation] = await inbox(client, ada)
    assert confirmation["type"] == "orders.placed"
    assert confirmation["data"] == {"order_id": order_id, "total": "39.80"}
    mailed = capsys.readouterr().out
    assert mailed.count("--- mail to ada@example.com:") == 1
    assert f"--- mail to ada@example.com: Your order #{order_id}\n" in mailed
    assert "  2 x Desk lamp at 19.90\nTotal: 39.80" in mailed

    cancelled = await client.post(f"{API}/orders/{order_id}/cancel", headers=ada.headers)
    assert cancelled.status_code == 200, cancelled.text
    await run_app_jobs(app)

    latest, _ = await inbox(client, ada)
    assert latest["type"] == "orders.cancelled"
    assert latest["data"] == {"order_id": order_id, "total": "39.80"}
    mailed = capsys.readouterr().out
    assert mailed.count("--- mail to ada@example.com:") == 1
    assert f"Your order #{order_id} is cancelled" in mailed


async def test_an_order_refused_notifies_nobody(client: httpx.AsyncClient, app: FastAPI) -> None:
    ada = await signed_up(client, "ada@example.com")
    body = {"items": [{"product_id": await a_lamp(app, stock=1), "quantity": 2}]}

    refused = await client.post(f"{API}/orders", json=body, headers=ada.headers)

    assert_error(refused, 409, "insufficient_stock")
    await run_app_jobs(app)
    assert await inbox(client, ada) == []


async def test_an_admin_changing_roles_or_deactivating_notifies_the_user(
    client: httpx.AsyncClient, app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    capsys.readouterr()

    promoted = await client.patch(
        f"{API}/users/{ada.id}", json={"roles": ["member", "admin"]}, headers=boss.headers
    )
    assert promoted.status_code == 200, promoted.text
    same = await client.patch(
        f"{API}/users/{ada.id}", json={"roles": ["admin", "member"]}, headers=boss.headers
    )
    assert same.status_code == 200, same.text  # no change: no notification
    await run_app_jobs(app)

    [roles] = await inbox(client, ada)
    assert roles["type"] == "users.roles_changed"
    assert roles["data"] == {"roles": ["admin", "member"]}
    mailed = capsys.readouterr().out
    assert "--- mail to ada@example.com: Your roles have changed\n" in mailed
    assert "changed your roles to: admin, member." in mailed

    deactivated = await client.patch(
        f"{API}/users/{ada.id}", json={"is_active": False}, headers=boss.headers
    )
    assert deactivated.status_code == 200, deactivated.text
    await run_app_jobs(app)

    assert [row.type for row in await rows_of(app, ada.id)] == [
        "users.roles_changed",
        "users.deactivated",
    ]
    assert "--- mail to ada@example.com: Your account has been deactivated\n" in (
        capsys.readouterr().out
    )


async def test_a_refused_admin_change_notifies_nobody(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")

    response = await client.patch(
        f"{API}/users/{ada.id}",
        json={"roles": ["admin", "no-such-role"], "is_active": False},
        headers=boss.headers,
    )

    assert 400 <= response.status_code < 500, response.text
    await run_app_jobs(app)
    assert await rows_of(app, ada.id) == []


# --- prune -------------------------------------------------------------------------------------


async def test_prune_removes_exactly_the_notifications_read_before_the_retention(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    now = datetime.now(UTC)
    ages = {  # name: (days since created, days since read or None)
        "old, read long ago": (90, 60),
        "old, read 31 days ago": (40, 31),
        "old, read yesterday": (90, 1),
        "old, unread": (400, None),
        "new, read": (2, 1),
        "new, unread": (1, None),
    }
    rows = [
        {
            "id": f"00000000-0000-4000-8000-{number:012d}",
            "type": "tests.ping",
            "user_id": ada.id,
            "data": {"name": name},
            "read_at": None if read is None else now - timedelta(days=read),
            "created_at": now - timedelta(days=created),
        }
        for number, (name, (created, read)) in enumerate(ages.items())
    ]
    async with app.state.databases.auth.engine.begin() as connection:
        await connection.execute(insert(NotificationRow), rows)

    pruned = await run_cli(app.state.settings, "notifications", "prune", "--days", "30")

    assert pruned.returncode == 0, pruned.stderr
    assert "removed 2 notifications read more than 30 days ago" in pruned.stdout
    left = {row.data["name"] for row in await rows_of(app, ada.id)}
    assert left == {"old, read yesterday", "old, unread", "new, read", "new, unread"}

    # NOTIFICATIONS_RETENTION_DAYS when --days is left out.
    pruned = await run_cli(
        app.state.settings, "notifications", "prune", NOTIFICATIONS_RETENTION_DAYS="0"
    )
    assert pruned.returncode == 0, pruned.stderr
    assert "removed 2 notifications read more than 0 days ago" in pruned.stdout
    left = {row.data["name"] for row in await rows_of(app, ada.id)}
    assert left == {"old, unread", "new, unread"}


async def test_prune_goes_in_batches(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await signed_up(client, "ada@example.com")
    long_ago = datetime.now(UTC) - timedelta(days=100)
    rows: list[dict[str, Any]] = [
        {
            "id": f"00000000-0000-4000-8000-{number:012d}",
            "type": "tests.ping",
            "user_id": ada.id,
            "data": {},
            "read_at": long_ago if number < 7 else None,
            "created_at": long_ago,
        }
        for number in range(9)
    ]
    async with app.state.databases.auth.engine.begin() as connection:
        await connection.execute(insert(NotificationRow), rows)
    monkeypatch.setattr(notification_service, "PRUNE_BATCH", 3)
    deletes: list[str] = []

    def count_deletes(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM NOTIFICATIONS"):
            deletes.append(statement)

    engine = app.state.databases.auth.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count_deletes)
    try:
        assert await notification_service.prune(app.state.databases, days=30) == 7
    finally:
        event.remove(engine, "before_cursor_execute", count_deletes)

    assert len(deletes) == 3  # 3 + 3 + 1
    assert [row.read_at for row in await rows_of(app, ada.id)] == [None, None]
    assert await notification_service.prune(app.state.databases, days=30) == 0


async def test_the_nightly_task_prunes_with_the_retention_setting(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"00000000-0000-4000-8000-{days:012d}",
            "type": "tests.ping",
            "user_id": ada.id,
            "data": {"read days ago": days},
            "read_at": now - timedelta(days=days),
            "created_at": now - timedelta(days=days + 1),
        }
        for days in (5, 15, 25)
    ]
    async with app.state.databases.auth.engine.begin() as connection:
        await connection.execute(insert(NotificationRow), rows)
    settings = app.state.settings.model_copy(update={"notifications_retention_days": 10})
    services = replace(app.state.runtime.job_services, settings=settings)
    [task] = [task for task in SCHEDULE if task.name == "notifications.prune"]

    outcome = await task.run(JobContext(services, "a-uuid", "schedule.run", 1))

    assert outcome == "2 notifications read more than 10 days ago"
    assert [row.data for row in await rows_of(app, ada.id)] == [{"read days ago": 5}]
