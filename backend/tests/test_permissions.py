"""Roles and permissions: who may use the admin endpoints, and `require_permissions`."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import select

from app.auth.dependencies import require_permissions
from app.auth.models import Permission
from app.core.config import Settings
from app.core.permissions import registered_permissions
from app.core.web.pagination import encode_cursor
from app.main import create_app
from app.projects.permissions import ProjectPermission
from tests.accounts import (
    API,
    an_admin,
    assert_error,
    grant_role,
    login,
    make_superuser,
    set_roles,
    signed_up,
)
from tests.conftest import client_for, empty_tables, running

ME = f"{API}/users/me"
USERS = f"{API}/users"


# --- roles of a new user ---------------------------------------------------------------------


async def test_a_new_user_is_a_member(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.get(ME, headers=ada.headers)

    assert response.status_code == 200
    assert response.json()["roles"] == ["member"]
    assert response.json()["is_superuser"] is False


# --- who may use the admin endpoints ---------------------------------------------------------


async def test_a_member_is_refused_every_admin_endpoint(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")

    answers = [
        await client.get(USERS, headers=ada.headers),
        await client.get(f"{USERS}/{bob.id}", headers=ada.headers),
        await client.get(f"{USERS}/{ada.id}", headers=ada.headers),
        await client.patch(f"{USERS}/{bob.id}", json={"is_active": False}, headers=ada.headers),
        await client.patch(f"{USERS}/{ada.id}", json={"roles": ["admin"]}, headers=ada.headers),
    ]

    for response in answers:
        assert_error(response, 403, "permission_denied")
    assert (await client.get(ME, headers=bob.headers)).status_code == 200
    assert (await client.get(ME, headers=ada.headers)).json()["roles"] == ["member"]


async def test_the_admin_endpoints_need_credentials(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    answers = [
        await client.get(USERS),
        await client.get(f"{USERS}/{ada.id}"),
        await client.patch(f"{USERS}/{ada.id}", json={"is_active": False}),
    ]

    for response in answers:
        assert_error(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_superuser_without_any_role_passes_every_check(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    root = await signed_up(client, "root@example.com")
    ada = await signed_up(client, "ada@example.com")
    await make_superuser(app, root.email)
    await set_roles(app, root.email, [])

    me = await client.get(ME, headers=root.headers)
    listed = await client.get(USERS, headers=root.headers)
    one = await client.get(f"{USERS}/{ada.id}", headers=root.headers)
    changed = await client.patch(f"{USERS}/{ada.id}", json={"roles": []}, headers=root.headers)

    assert me.json()["roles"] == []
    assert me.json()["is_superuser"] is True
    assert listed.status_code == 200, listed.text
    assert one.status_code == 200, one.text
    assert changed.status_code == 200, changed.text
    assert changed.json()["roles"] == []


async def test_an_admin_who_drops_their_own_admin_role_loses_access_on_the_next_request(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await an_admin(client, app, "admin@example.com")

    dropped = await client.patch(
        f"{USERS}/{admin.id}", json={"roles": ["member"]}, headers=admin.headers
    )

    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["roles"] == ["member"]
    assert_error(await client.get(USERS, headers=admin.headers), 403, "permission_denied")


# --- listing users ---------------------------------------------------------------------------


async def test_an_admin_pages_through_every_user_exactly_once_in_id_order(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    others = [await signed_up(client, f"user{number}@example.com") for number in range(6)]
    expected = sorted([admin.id, *(other.id for other in others)])

    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(USERS, params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert 1 <= len(page["items"]) <= 3
        seen += [user["id"] for user in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "the cursor never ends"

    assert seen == expected
    assert pages == 3
    whole = (await client.get(USERS, headers=admin.headers)).json()
    assert [user["id"] for user in whole["items"]] == expected
    assert whole["next_cursor"] is None


async def test_the_last_page_has_no_next_cursor_even_when_it_is_full(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    await signed_up(client, "ada@example.com")

    first = (await client.get(USERS, params={"limit": 1}, headers=admin.headers)).json()
    second = (
        await client.get(
            USERS, params={"limit": 1, "cursor": first["next_cursor"]}, headers=admin.headers
        )
    ).json()

    assert first["next_cursor"] is not None
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None


async def test_the_list_shows_each_users_roles(client: httpx.AsyncClient, app: FastAPI) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    await signed_up(client, "ada@example.com")

    items = (await client.get(USERS, headers=admin.headers)).json()["items"]

    roles = {user["email"]: user["roles"] for user in items}
    assert roles == {"admin@example.com": ["admin", "member"], "ada@example.com": ["member"]}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
async def test_a_page_size_outside_1_to_100_is_refused(
    client: httpx.AsyncClient, app: FastAPI, limit: str
) -> None:
    admin = await an_admin(client, app, "admin@example.com")

    response = await client.get(USERS, params={"limit": limit}, headers=admin.headers)

    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    "cursor",
    ["!!!", "abc", "W10", "e30", "WyJ4Il0", "WzEsMl0", "bnVsbA", "%00", "WyJ9"],
    ids=[
        "punctuation",
        "not-base64-json",
        "empty-list",
        "object",
        "string-key",
        "two-keys",
        "null",
        "nul-byte",
        "broken-json",
    ],
)
async def test_a_garbage_cursor_is_a_400(
    client: httpx.AsyncClient, app: FastAPI, cursor: str
) -> None:
    admin = await an_admin(client, app, "admin@example.com")

    response = await client.get(f"{USERS}?cursor={cursor}", headers=admin.headers)

    assert_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize("after_id", [2**63, 10**30], ids=["int64-max-plus-one", "huge"])
async def test_a_cursor_beyond_the_id_range_is_not_a_server_error(
    client: httpx.AsyncClient, app: FastAPI, after_id: int
) -> None:
    admin = await an_admin(client, app, "admin@example.com")

    response = await client.get(
        USERS, params={"cursor": encode_cursor(after_id)}, headers=admin.headers
    )

    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json() == {"items": [], "next_cursor": None}
    else:
        assert response.json()["code"] == "invalid_cursor"


# --- one user --------------------------------------------------------------------------------


async def test_an_admin_reads_one_user(client: httpx.AsyncClient, app: FastAPI) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    ada = await signed_up(client, "ada@example.com")

    response = await client.get(f"{USERS}/{ada.id}", headers=admin.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == ada.id
    assert body["email"] == "ada@example.com"
    assert body["roles"] == ["member"]
    assert body["is_active"] is True


async def test_an_unknown_user_is_not_found(client: httpx.AsyncClient, app: FastAPI) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    missing = admin.id + 1000

    read = await client.get(f"{USERS}/{missing}", headers=admin.headers)
    changed = await client.patch(
        f"{USERS}/{missing}", json={"is_active": False}, headers=admin.headers
    )

    assert_error(read, 404, "not_found")
    assert_error(changed, 404, "not_found")


@pytest.mark.parametrize("user_id", [2**63, 10**30], ids=["int64-max-plus-one", "huge"])
async def test_a_user_id_beyond_the_id_range_is_not_a_server_error(
    client: httpx.AsyncClient, app: FastAPI, user_id: int
) -> None:
    admin = await an_admin(client, app, "admin@example.com")

    read = await client.get(f"{USERS}/{user_id}", headers=admin.headers)
    changed = await client.patch(
        f"{USERS}/{user_id}", json={"is_active": False}, headers=admin.headers
    )

    for response in (read, changed):
        assert response.status_code in (404, 422), response.text
        assert set(response.json()) >= {"detail", "code"}


async def test_no_answer_ever_shows_a_password_hash(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    ada = await signed_up(client, "ada@example.com")

    answers = [
        await client.get(ME, headers=ada.headers),
        await client.get(USERS, headers=admin.headers),
        await client.get(f"{USERS}/{ada.id}", headers=admin.headers),
        await client.patch(f"{USERS}/{ada.id}", json={"roles": ["member"]}, headers=admin.headers),
        await client.patch(f"{USERS}/{ada.id}", json={"is_active": True}, headers=admin.headers),
    ]

    for response in answers:
        assert response.status_code == 200, response.text
        assert "hashed_password" not in response.text
        assert "$argon2" not in response.text
        assert "password" not in response.text


# --- changing a user -------------------------------------------------------------------------


async def test_a_user_made_admin_can_list_users_on_the_next_request(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    ada = await signed_up(client, "ada@example.com")
    assert_error(await client.get(USERS, headers=ada.headers), 403, "permission_denied")

    response = await client.patch(
        f"{USERS}/{ada.id}", json={"roles": ["admin"]}, headers=admin.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["admin"]
    assert (await client.get(USERS, headers=ada.headers)).status_code == 200
    assert (await client.get(ME, headers=ada.headers)).json()["roles"] == ["admin"]


@pytest.mark.parametrize("roles", [["nope"], ["admin", "nope"]], ids=["unknown", "one-unknown"])
async def test_an_unknown_role_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, app: FastAPI, roles: list[str]
) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    ada = await signed_up(client, "ada@example.com")

    response = await client.patch(f"{USERS}/{ada.id}", json={"roles": roles}, headers=admin.headers)

    assert_error(response, 400, "unknown_role")
    assert "nope" in response.json()["detail"]
    assert (await client.get(ME, headers=ada.headers)).json()["roles"] == ["member"]
    assert_error(await client.get(USERS, headers=ada.headers), 403, "permission_denied")


async def test_a_deactivated_user_is_locked_out_at_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    ada = await signed_up(client, "ada@example.com")
    assert (await client.get(ME, headers=ada.headers)).status_code == 200

    response = await client.patch(
        f"{USERS}/{ada.id}", json={"is_active": False}, headers=admin.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    me = await client.get(ME, headers=ada.headers)
    assert me.status_code == 401
    assert me.headers["www-authenticate"] == "Bearer"
    refreshed = await client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh_token})
    assert refreshed.status_code == 401
    assert_error(await login(client, ada.email), 401, "invalid_credentials")

    listed = (await client.get(f"{USERS}/{ada.id}", headers=admin.headers)).json()
    assert listed["is_active"] is False


async def test_a_reactivated_user_can_sign_in_again(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    ada = await signed_up(client, "ada@example.com")
    await client.patch(f"{USERS}/{ada.id}", json={"is_active": False}, headers=admin.headers)

    response = await client.patch(
        f"{USERS}/{ada.id}", json={"is_active": True}, headers=admin.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is True
    assert (await client.get(ME, headers=ada.headers)).status_code == 401  # old session ended
    signed_in = await login(client, ada.email)
    assert signed_in.status_code == 200, signed_in.text
    fresh = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    assert (await client.get(ME, headers=fresh)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"is_superuser": True},
        {"email": "new@example.com"},
        {"is_active": False, "password": "whatever-it-is"},
        {"roles": "admin"},
        {"roles": [""]},
        {"is_active": "sometimes"},
    ],
    ids=["is_superuser", "email", "password", "roles-not-a-list", "empty-role", "not-a-bool"],
)
async def test_an_invalid_admin_update_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, app: FastAPI, body: dict[str, Any]
) -> None:
    admin = await an_admin(client, app, "admin@example.com")
    ada = await signed_up(client, "ada@example.com")

    response = await client.patch(f"{USERS}/{ada.id}", json=body, headers=admin.headers)

    assert_error(response, 422, "validation_error")
    after = (await client.get(ME, headers=ada.headers)).json()
    assert after["email"] == "ada@example.com"
    assert after["is_superuser"] is False
    assert after["is_active"] is True
    assert after["roles"] == ["member"]


# --- require_permissions on a route of one's own ---------------------------------------------


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with one more route, which needs `projects:write`."""
    app = create_app(settings)

    @app.get(
        "/needs-projects-write",
        dependencies=[Depends(require_permissions(ProjectPermission.WRITE))],
    )
    async def needs_projects_write() -> dict[str, bool]:
        return {"ok": True}

    async with running(app) as started, client_for(started) as http:
        try:
            yield started, http
        finally:
            await empty_tables(started)


async def test_require_permissions_lets_members_through_and_stops_users_without_roles(
    guarded: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = guarded
    admin = await signed_up(http, "admin@example.com")
    await grant_role(app, admin.email, "admin")
    ada = await signed_up(http, "ada@example.com")
    assert_error(await http.get("/needs-projects-write"), 401, "not_authenticated")

    member = await http.get("/needs-projects-write", headers=ada.headers)

    assert member.status_code == 200, member.text
    assert member.json() == {"ok": True}
    emptied = await http.patch(f"{USERS}/{ada.id}", json={"roles": []}, headers=admin.headers)
    assert emptied.status_code == 200, emptied.text
    refused = await http.get("/needs-projects-write", headers=ada.headers)
    assert_error(refused, 403, "permission_denied")
    assert "projects:write" in refused.json()["detail"]


async def test_require_permissions_bounds_an_api_key_by_its_scopes(
    guarded: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = guarded
    ada = await signed_up(http, "ada@example.com")
    keys = {}
    for scopes in (["projects:read"], ["projects:write"]):
        created = await http.post(
            f"{API}/auth/api-keys", json={"name": "ci", "scopes": scopes}, headers=ada.headers
        )
        assert created.status_code == 201, created.text
        keys[scopes[0]] = created.json()["key"]

    reader = await http.get("/needs-projects-write", headers={"X-API-Key": keys["projects:read"]})
    writer = await http.get("/needs-projects-write", headers={"X-API-Key": keys["projects:write"]})

    assert_error(reader, 403, "permission_denied")
    assert writer.status_code == 200, writer.text


# --- the permission registry -----------------------------------------------------------------


async def test_the_migrations_seed_exactly_the_permissions_the_code_declares(
    app: FastAPI,
) -> None:
    async with app.state.databases.auth.sessions() as session:
        stored = set(await session.scalars(select(Permission.name)))

    assert stored == registered_permissions()
    assert "projects:read" in stored
