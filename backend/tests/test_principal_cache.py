"""Each worker's principals in memory, kept exact by the change feed: two workers (two app
instances on the same databases, each with its own memory and follower), every backend.

The guarantee: a revoked or changed credential is refused at once by the worker that
made the change, and by every other worker within one second.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, update

from app.auth import changes
from app.auth.models import LoginSession
from app.auth.principals import FRESHNESS
from app.core.config import Settings
from app.main import create_app
from tests.accounts import API, Account, an_admin, bearer, signed_up
from tests.conftest import client_for, empty_tables, running

ME = f"{API}/users/me"
BOUND = 1.0  # seconds: what the README and SECURITY.md promise


@pytest.fixture
async def workers(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI]]:
    async with (
        running(create_app(settings)) as first,
        running(create_app(settings)) as second,
        client_for(first) as one,
        client_for(second) as two,
    ):
        yield one, two, first, second
        await empty_tables(first)


@contextmanager
def credential_checks(app: FastAPI) -> Iterator[list[str]]:
    """The credential-check statements `app` sends to the auth database while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "login_sessions" in statement and "credential_changes" not in statement:
            seen.append(statement)

    engine = app.state.databases.auth.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def refused_within(request: Callable[[], Awaitable[httpx.Response]], status: int) -> float:
    """Seconds from now to the sending of the first request that answers `status` (what
    the bound is about: a request sent later than that must see the change)."""
    started = time.monotonic()
    while True:
        sent = time.monotonic() - started
        if (await request()).status_code == status:
            return sent
        assert sent < 2 * BOUND, "the change never reached this worker"
        await asyncio.sleep(0.02)


async def warm(account: Account, *clients: httpx.AsyncClient) -> None:
    for http in clients:
        assert (await http.get(ME, headers=account.headers)).status_code == 200


async def test_a_known_credential_is_checked_without_a_query(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI],
) -> None:
    one, _, first, _ = workers
    ada = await signed_up(one, "ada@example.com")
    await warm(ada, one)

    with credential_checks(first) as checks:
        for _ in range(5):
            assert (await one.get(ME, headers=ada.headers)).status_code == 200

    assert checks == []


async def test_a_logout_is_refused_at_once_here_and_within_a_second_everywhere(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI],
) -> None:
    one, two, _, _ = workers
    ada = await signed_up(one, "ada@example.com")
    await warm(ada, one, two)

    assert (await one.post(f"{API}/auth/logout", headers=ada.headers)).status_code == 204

    assert (await one.get(ME, headers=ada.headers)).status_code == 401
    elapsed = await refused_within(lambda: two.get(ME, headers=ada.headers), 401)
    assert elapsed < BOUND


async def test_a_revoked_api_key_is_refused_within_a_second_everywhere(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI],
) -> None:
    one, two, _, _ = workers
    ada = await signed_up(one, "ada@example.com")
    created = await one.post(
        f"{API}/auth/api-keys", json={"name": "ci", "scopes": []}, headers=ada.headers
    )
    key = {"X-API-Key": created.json()["key"]}
    for http in (one, two):
        assert (await http.get(ME, headers=key)).status_code == 200

    revoked = await one.delete(f"{API}/auth/api-keys/{created.json()['id']}", headers=ada.headers)

    assert revoked.status_code == 204
    assert (await one.get(ME, headers=key)).status_code == 401
    assert await refused_within(lambda: two.get(ME, headers=key), 401) < BOUND


async def test_a_deactivated_user_is_refused_within_a_second_everywhere(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI],
) -> None:
    one, two, first, _ = workers
    boss = await an_admin(one, first)
    ada = await signed_up(one, "ada@example.com")
    await warm(ada, one, two)

    answer = await one.patch(
        f"{API}/users/{ada.id}", json={"is_active": False}, headers=boss.headers
    )

    assert answer.status_code == 200
    assert (await one.get(ME, headers=ada.headers)).status_code == 401
    assert await refused_within(lambda: two.get(ME, headers=ada.headers), 401) < BOUND


async def test_a_role_taken_away_is_refused_within_a_second_everywhere(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI],
) -> None:
    one, two, first, _ = workers
    boss = await an_admin(one, first)
    ada = await signed_up(one, "ada@example.com")
    for http in (one, two):
        assert (await http.get(f"{API}/projects", headers=ada.headers)).status_code == 200

    answer = await one.patch(f"{API}/users/{ada.id}", json={"roles": []}, headers=boss.headers)

    assert answer.status_code == 200
    assert (await one.get(f"{API}/projects", headers=ada.headers)).status_code == 403
    projects = f"{API}/projects"
    assert await refused_within(lambda: two.get(projects, headers=ada.headers), 403) < BOUND


async def test_a_password_change_ends_the_other_sessions_within_a_second_everywhere(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI],
) -> None:
    one, two, _, _ = workers
    ada = await signed_up(one, "ada@example.com")
    other = await one.post(
        f"{API}/auth/login", data={"username": ada.email, "password": ada.password}
    )
    elsewhere = bearer(other.json()["access_token"])
    for http in (one, two):
        assert (await http.get(ME, headers=elsewhere)).status_code == 200

    changed = await one.post(
        f"{API}/users/me/password",
        json={"current_password": ada.password, "new_password": "a brand new secret"},
        headers=ada.headers,
    )

    assert changed.status_code == 204
    assert (await one.get(ME, headers=elsewhere)).status_code == 401
    assert await refused_within(lambda: two.get(ME, headers=elsewhere), 401) < BOUND
    assert (await two.get(ME, headers=ada.headers)).status_code == 200  # this session stays


async def test_a_new_name_shows_on_every_worker_within_a_second(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI],
) -> None:
    one, two, _, _ = workers
    ada = await signed_up(one, "ada@example.com")
    await warm(ada, one, two)

    changed = await one.patch(ME, json={"full_name": "Ada King"}, headers=ada.headers)

    assert changed.status_code == 200
    assert (await one.get(ME, headers=ada.headers)).json()["full_name"] == "Ada King"
    started = time.monotonic()
    while True:
        sent = time.monotonic() - started
        if (await two.get(ME, headers=ada.headers)).json()["full_name"] == "Ada King":
            break
        assert sent < BOUND
        await asyncio.sleep(0.02)


async def test_a_worker_that_cannot_follow_the_feed_checks_every_request(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, _, first, _ = workers
    ada = await signed_up(one, "ada@example.com")
    await warm(ada, one)

    async def unreachable(_follower: changes.ChangeFollower) -> None:
        raise ConnectionRefusedError("the feed cannot be read")

    monkeypatch.setattr(changes.ChangeFollower, "poll", unreachable)
    await asyncio.sleep(FRESHNESS + 0.1)
    # A revocation that leaves no trace in the feed: only a check of the database sees it.
    async with first.state.databases.auth.engine.begin() as connection:
        await connection.execute(update(LoginSession).values(revoked_at=LoginSession.created_at))

    with credential_checks(first) as checks:
        refused = await one.get(ME, headers=ada.headers)

    assert refused.status_code == 401
    assert len(checks) == 1


async def test_with_the_cache_off_every_request_checks_the_database(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"principal_cache": False}))
    async with running(app) as started, client_for(started) as http:
        ada = await signed_up(http, "ada@example.com")
        with credential_checks(started) as checks:
            for _ in range(3):
                assert (await http.get(ME, headers=ada.headers)).status_code == 200
        await empty_tables(started)

    assert len(checks) == 3


async def test_last_use_is_written_in_batches_not_by_requests(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI, FastAPI],
) -> None:
    one, _, first, _ = workers
    ada = await signed_up(one, "ada@example.com")
    sessions = await one.get(f"{API}/auth/sessions", headers=ada.headers)
    before = sessions.json()[0]["last_used_at"]
    await asyncio.sleep(0.05)
    await warm(ada, one)

    assert (await one.get(f"{API}/auth/sessions", headers=ada.headers)).json()[0][
        "last_used_at"
    ] == before
    follower = changes.ChangeFollower(first.state.databases.auth, first.state.principals)
    await follower.write_last_use()
    after = (await one.get(f"{API}/auth/sessions", headers=ada.headers)).json()[0]
    assert after["last_used_at"] > before
