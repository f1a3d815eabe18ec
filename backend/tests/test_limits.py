"""Rate limits counted in the cache: the password-reset limit, and the login lockout and
reset limit shared by two workers through Redis. (The lockout's own behaviour is in
test_auth.py, on the default database store.)"""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app.core.config import Settings
from tests.accounts import API, login, register
from tests.caches import on_redis
from tests.conftest import two_workers

RESET = f"{API}/auth/password-reset/request"


async def reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(RESET, json={"email": email})


def mails_to(printed: str, email: str) -> int:
    return printed.count(f"mail to {email}: Reset your password")


async def test_reset_requests_past_the_limit_are_429_whether_or_not_the_account_exists(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await register(client, "ada@example.com")
    answers: dict[str, list[httpx.Response]] = {}
    for email in ("ada@example.com", "nobody@example.com"):
        answers[email] = [await reset(client, email) for _ in range(4)]

    known, unknown = answers["ada@example.com"], answers["nobody@example.com"]
    assert [answer.status_code for answer in known] == [202, 202, 202, 429]
    assert [answer.status_code for answer in unknown] == [202, 202, 202, 429]
    assert known[3].json() == unknown[3].json()
    assert known[3].json()["code"] == "too_many_requests"
    assert 0 < int(known[3].headers["retry-after"]) <= 15 * 60
    assert known[3].headers.keys() == unknown[3].headers.keys()
    assert mails_to(capsys.readouterr().out, "ada@example.com") == 3


async def test_reset_requests_from_one_address_are_limited(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    answers = [await reset(client, f"someone{number}@example.com") for number in range(11)]

    assert [answer.status_code for answer in answers] == [202] * 10 + [429]
    elsewhere = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://testserver") as other:
        assert (await reset(other, "someone0@example.com")).status_code == 202


@pytest.fixture
async def redis_workers(
    client: httpx.AsyncClient, settings: Settings, redis_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Redis]]:
    """Two app instances (two workers) counting in one Redis, under a prefix of their own;
    `client` only empties the databases afterwards."""
    shared = on_redis(settings, redis_url)
    redis = Redis.from_url(redis_url, decode_responses=True)
    async with two_workers(shared) as (one, two, _):
        yield one, two, redis
    count = 0
    async for key in redis.scan_iter(match=f"{shared.cache_prefix}:*"):
        count += await redis.unlink(key)
    assert count > 0  # the tests counted in Redis, not in the database
    await redis.aclose()


async def test_the_lockout_counted_in_redis_is_shared_by_two_workers(
    redis_workers: tuple[httpx.AsyncClient, httpx.AsyncClient, Redis],
) -> None:
    one, two, _ = redis_workers
    await register(one, "ada@example.com")
    for worker in (one, two, one, two, one):
        assert (await login(worker, "ada@example.com", "wrong password")).status_code == 401

    for worker in (one, two):
        locked = await login(worker, "ada@example.com")
        assert locked.status_code == 429
        assert 0 < int(locked.headers["retry-after"]) <= 15 * 60


async def test_a_success_on_one_worker_clears_the_count_for_both(
    redis_workers: tuple[httpx.AsyncClient, httpx.AsyncClient, Redis],
) -> None:
    one, two, _ = redis_workers
    await register(one, "ada@example.com")
    for _ in range(4):
        await login(one, "ada@example.com", "wrong password")
    assert (await login(two, "ada@example.com")).status_code == 200

    for _ in range(4):
        assert (await login(one, "ada@example.com", "wrong password")).status_code == 401
    assert (await login(two, "ada@example.com")).status_code == 200


async def test_the_reset_limit_counted_in_redis_is_shared_by_two_workers(
    redis_workers: tuple[httpx.AsyncClient, httpx.AsyncClient, Redis],
) -> None:
    one, two, _ = redis_workers

    statuses = [
        (await reset(worker, "nobody@example.com")).status_code for worker in (one, two, one, two)
    ]

    assert statuses == [202, 202, 202, 429]
