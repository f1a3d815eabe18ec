"""The management CLI, run as an operator would: `python -m app.cli ...` in backend/."""

import asyncio
import subprocess

import httpx
from fastapi import FastAPI

from app.core.config import Settings
from app.core.db.registry import create_databases
from app.essentials.cache.database import DatabaseStore
from app.essentials.cache.facade import Cache
from app.essentials.cache.factory import create_cache
from tests.accounts import API, bearer, login, signed_up
from tests.caches import on_redis
from tests.conftest import run_cli

ME = f"{API}/users/me"
USERS = f"{API}/users"
ROOT_PASSWORD = "a long root password"


async def create_superuser(
    settings: Settings, email: str, password: str = ROOT_PASSWORD, *extra: str
) -> subprocess.CompletedProcess[str]:
    return await run_cli(
        settings, "create-superuser", "--email", email, "--password", password, *extra
    )


async def test_a_created_superuser_can_sign_in_and_administer_users(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    done = await create_superuser(
        settings, "root@example.com", ROOT_PASSWORD, "--full-name", "Root"
    )

    assert done.returncode == 0, done.stderr
    assert "root@example.com" in done.stdout
    signed_in = await login(client, "root@example.com", ROOT_PASSWORD)
    assert signed_in.status_code == 200, signed_in.text
    headers = bearer(signed_in.json()["access_token"])
    me = (await client.get(ME, headers=headers)).json()
    assert me["is_superuser"] is True
    assert me["full_name"] == "Root"
    assert "admin" in me["roles"]
    listed = await client.get(USERS, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [user["email"] for user in listed.json()["items"]] == ["root@example.com"]


async def test_the_superusers_email_is_normalised(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    done = await create_superuser(settings, "  Root@Example.COM ")

    assert done.returncode == 0, done.stderr
    assert (await login(client, "root@example.com", ROOT_PASSWORD)).status_code == 200


async def test_a_second_superuser_with_the_same_email_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await create_superuser(settings, "root@example.com")).returncode == 0

    again = await create_superuser(settings, "root@example.com", "another long password")

    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert (await login(client, "root@example.com", ROOT_PASSWORD)).status_code == 200
    assert (await login(client, "root@example.com", "another long password")).status_code == 401


async def test_a_superuser_cannot_take_a_registered_users_email(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")

    done = await create_superuser(settings, "ada@example.com")

    assert done.returncode == 1
    assert "already exists" in done.stderr
    assert (await client.get(ME, headers=ada.headers)).json()["is_superuser"] is False


async def test_an_invalid_email_is_refused_with_exit_code_2(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    done = await create_superuser(settings, "not-an-email")

    assert done.returncode == 2
    assert "email" in done.stderr
    assert "Traceback" not in done.stderr
    assert (await login(client, "not-an-email", ROOT_PASSWORD)).status_code == 401


async def test_a_short_password_is_refused_with_exit_code_2(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    done = await create_superuser(settings, "root@example.com", "Xq7#zz")

    assert done.returncode == 2
    assert "password" in done.stderr
    assert "Xq7#zz" not in done.stderr + done.stdout
    assert (await login(client, "root@example.com", "Xq7#zz")).status_code == 401


async def test_assign_role_gives_a_user_the_role_at_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")
    assert (await client.get(USERS, headers=ada.headers)).status_code == 403

    done = await run_cli(settings, "assign-role", "ada@example.com", "admin")

    assert done.returncode == 0, done.stderr
    assert "admin" in done.stdout
    assert (await client.get(ME, headers=ada.headers)).json()["roles"] == ["admin", "member"]
    assert (await client.get(USERS, headers=ada.headers)).status_code == 200


async def test_assigning_a_role_twice_changes_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")

    first = await run_cli(settings, "assign-role", "ada@example.com", "member")
    second = await run_cli(settings, "assign-role", " ADA@example.com", "member")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert (await client.get(ME, headers=ada.headers)).json()["roles"] == ["member"]


async def test_assign_role_to_an_unknown_user_fails_with_a_message(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    done = await run_cli(settings, "assign-role", "nobody@example.com", "admin")

    assert done.returncode == 1
    assert "user not found" in done.stderr.lower()
    assert "Traceback" not in done.stderr


async def test_assign_role_with_an_unknown_role_fails_with_a_message(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")

    done = await run_cli(settings, "assign-role", "ada@example.com", "overlord")

    assert done.returncode == 1
    assert "unknown role" in done.stderr.lower()
    assert "overlord" in done.stderr
    assert "Traceback" not in done.stderr
    assert (await client.get(ME, headers=ada.headers)).json()["roles"] == ["member"]


# --- cache -------------------------------------------------------------------------------


async def test_cache_gc_removes_the_expired_entries_and_locks(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    cache: Cache = app.state.cache
    for number in range(3):
        await cache.put(f"old{number}", number, ttl=0.1)
    await cache.put("live", "stays", ttl=60)
    assert await cache.lock("abandoned", 0.1).acquire()
    await asyncio.sleep(0.2)

    done = await run_cli(settings, "cache", "gc")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed 4 expired cache entries"
    assert await cache.get("live") == "stays"
    again = await run_cli(settings, "cache", "gc")
    assert again.stdout.strip() == "removed 0 expired cache entries"


async def test_cache_clear_removes_this_prefixs_entries_only(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    cache: Cache = app.state.cache
    other = Cache(DatabaseStore(app.state.databases.auth, "another-service"))
    await cache.put("a", 1)
    await cache.put("b", 2, ttl=60)
    await other.put("a", "theirs")

    done = await run_cli(settings, "cache", "clear")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed 2 cache entries under the prefix 'dualbase'"
    assert await cache.many(["a", "b"]) == {}
    assert await other.get("a") == "theirs"


async def test_cache_clear_on_redis_removes_this_prefixs_keys_only(
    settings: Settings, redis_url: str
) -> None:
    shared = on_redis(settings, redis_url)
    mine = shared.cache_prefix
    databases = create_databases(shared)
    cache = create_cache(shared, databases)
    other = create_cache(on_redis(settings, redis_url), databases)
    try:
        for number in range(3):
            await cache.put(f"k{number}", number)
        await other.put("k0", "theirs")

        done = await run_cli(
            settings, "cache", "clear", CACHE_STORE="redis", REDIS_URL=redis_url, CACHE_PREFIX=mine
        )

        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"removed 3 cache entries under the prefix {mine!r}"
        assert await cache.many(["k0", "k1", "k2"]) == {}
        assert await other.get("k0") == "theirs"
    finally:
        await cache.close()
        await other.close()
        await databases.dispose()
