"""Personal API keys: shown once, stored as a hash, bound by their scopes and their owner."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.auth.changes import ChangeFollower, record_change
from app.auth.models import ApiKey
from app.essentials.activity.recording import UNAUDITED
from tests.accounts import (
    API,
    Account,
    commit_changed,
    grant_role,
    make_superuser,
    set_roles,
    signed_up,
)

KEYS = f"{API}/auth/api-keys"
ME = f"{API}/users/me"
USERS = f"{API}/users"


async def create_key(
    client: httpx.AsyncClient,
    owner: Account,
    scopes: list[str] | None = None,
    name: str = "ci",
    **extra: Any,
) -> httpx.Response:
    body = {"name": name, "scopes": ["projects:read"] if scopes is None else scopes, **extra}
    return await client.post(KEYS, json=body, headers=owner.headers)


async def new_key(client: httpx.AsyncClient, owner: Account, scopes: list[str]) -> dict[str, Any]:
    """A key of `owner` with `scopes`; fails the test if it cannot be created."""
    response = await create_key(client, owner, scopes)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def api_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"detail", "code"}


# --- creating and listing ------------------------------------------------------------------


async def test_a_new_key_is_shown_once_in_plain_text_with_its_prefix(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await create_key(client, ada, ["projects:read"], name="laptop")

    assert response.status_code == 201, response.text
    body = response.json()
    key = body["key"]
    assert key.startswith("dbk_")
    assert len(key) > 30
    assert body["prefix"].startswith("dbk_")
    assert len(body["prefix"]) > len("dbk_")
    assert key.startswith(body["prefix"])
    assert body["name"] == "laptop"
    assert body["scopes"] == ["projects:read"]
    assert body["expires_at"] is None
    assert body["last_used_at"] is None

    listed = await client.get(KEYS, headers=ada.headers)
    assert listed.status_code == 200
    assert key not in listed.text
    (item,) = listed.json()
    assert "key" not in item
    assert item["id"] == body["id"]
    assert item["prefix"] == body["prefix"]
    assert item["name"] == "laptop"


async def test_each_key_is_different_and_the_list_shows_only_ones_own_keys(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    first = await new_key(client, ada, ["projects:read"])
    second = await new_key(client, ada, ["projects:read"])
    bobs = await new_key(client, bob, ["projects:read"])

    assert len({first["key"], second["key"], bobs["key"]}) == 3
    adas_list = (await client.get(KEYS, headers=ada.headers)).json()
    assert [item["id"] for item in adas_list] == [first["id"], second["id"]]
    bobs_list = (await client.get(KEYS, headers=bob.headers)).json()
    assert [item["id"] for item in bobs_list] == [bobs["id"]]


async def test_scopes_are_stored_once_each_in_order(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    created = await new_key(client, ada, ["projects:write", "projects:read", "projects:write"])

    assert created["scopes"] == ["projects:read", "projects:write"]


async def test_a_key_is_stored_only_as_its_hash(client: httpx.AsyncClient, app: FastAPI) -> None:
    ada = await signed_up(client, "ada@example.com")
    created = await new_key(client, ada, ["projects:read"])
    key = created["key"]

    async with app.state.databases.auth.engine.connect() as connection:
        rows = (await connection.execute(select(ApiKey.__table__))).mappings().all()

    (row,) = rows
    assert row["key_hash"] != key
    secret_part = key.removeprefix(created["prefix"])
    for column, value in row.items():
        assert key not in str(value), column
        assert secret_part not in str(value), column


# --- authenticating with a key ---------------------------------------------------------------


async def test_a_key_authenticates_as_x_api_key_and_as_a_bearer_token(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    key = (await new_key(client, ada, ["projects:read"]))["key"]

    as_header = await client.get(ME, headers={"X-API-Key": key})
    as_bearer = await client.get(ME, headers={"Authorization": f"Bearer {key}"})

    assert as_header.status_code == 200, as_header.text
    assert as_header.json()["email"] == "ada@example.com"
    assert as_bearer.status_code == 200, as_bearer.text
    assert as_bearer.json()["id"] == ada.id


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "dbk_not-a-key-we-issued"},
        {"Authorization": "Bearer dbk_not-a-key-we-issued"},
        {"X-API-Key": "not even the prefix"},
        {"X-API-Key": "dbk_"},
    ],
    ids=["x-api-key", "bearer", "no-prefix", "prefix-only"],
)
async def test_a_wrong_key_is_refused_with_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get(ME, headers=headers)

    assert_unauthorized(response)


async def test_a_key_with_one_character_changed_is_refused(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    key = (await new_key(client, ada, ["projects:read"]))["key"]
    altered = key[:-1] + ("A" if key[-1] != "A" else "B")

    response = await client.get(ME, headers=api_key(altered))

    assert_unauthorized(response)


async def test_last_used_at_is_recorded_when_a_key_is_used(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    created = await new_key(client, ada, ["projects:read"])
    (before,) = (await client.get(KEYS, headers=ada.headers)).json()
    assert before["last_used_at"] is None

    assert (await client.get(ME, headers=api_key(created["key"]))).status_code == 200
    # Written in batches by the worker's change follower (every 30 s), not by the request.
    await ChangeFollower(app.state.databases.auth, app.state.principals).write_last_use()

    (after,) = (await client.get(KEYS, headers=ada.headers)).json()
    assert after["last_used_at"] is not None
    used_at = datetime.fromisoformat(after["last_used_at"])
    assert used_at.tzinfo is not None
    assert abs(datetime.now(UTC) - used_at) < timedelta(minutes=1)


# --- what a key may do -----------------------------------------------------------------------


async def test_a_key_may_do_no_more_than_its_scopes(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    await grant_role(app, ada.email, "admin")
    assert (await client.get(USERS, headers=ada.headers)).status_code == 200
    reader = await new_key(client, ada, ["projects:read"])
    admin = await new_key(client, ada, ["users:admin"])

    refused = await client.get(USERS, headers=api_key(reader["key"]))
    allowed = await client.get(USERS, headers=api_key(admin["key"]))

    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "permission_denied"
    assert allowed.status_code == 200, allowed.text
    assert [user["email"] for user in allowed.json()["items"]] == ["ada@example.com"]


@pytest.mark.parametrize("scopes", [["users:admin"], ["projects:read", "users:admin"], ["made:up"]])
async def test_a_key_cannot_be_given_scopes_its_owner_lacks(
    client: httpx.AsyncClient, scopes: list[str]
) -> None:
    member = await signed_up(client, "member@example.com")

    response = await create_key(client, member, scopes)

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "scope_not_allowed"
    assert (await client.get(KEYS, headers=member.headers)).json() == []


async def test_a_key_loses_a_permission_as_soon_as_its_owner_does(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    await grant_role(app, ada.email, "admin")
    key = (await new_key(client, ada, ["users:admin"]))["key"]
    assert (await client.get(USERS, headers=api_key(key))).status_code == 200

    await set_roles(app, ada.email, ["member"])

    response = await client.get(USERS, headers=api_key(key))
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "permission_denied"
    assert (await client.get(ME, headers=api_key(key))).status_code == 200

    await grant_role(app, ada.email, "admin")

    assert (await client.get(USERS, headers=api_key(key))).status_code == 200


async def test_a_superusers_key_is_still_bound_by_its_scopes(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    root = await signed_up(client, "root@example.com")
    await make_superuser(app, root.email)
    await set_roles(app, root.email, [])
    assert (await client.get(USERS, headers=root.headers)).status_code == 200

    reader = await new_key(client, root, ["projects:read"])
    admin = await new_key(client, root, ["users:admin"])

    refused = await client.get(USERS, headers=api_key(reader["key"]))
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "permission_denied"
    assert (await client.get(USERS, headers=api_key(admin["key"]))).status_code == 200


async def test_an_api_key_cannot_manage_credentials(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    created = await new_key(client, ada, ["projects:read", "projects:write"])
    headers = api_key(created["key"])

    attempts = [
        await client.post(KEYS, json={"name": "more", "scopes": []}, headers=headers),
        await client.get(KEYS, headers=headers),
        await client.delete(f"{KEYS}/{created['id']}", headers=headers),
    ]

    for response in attempts:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "session_required"
    assert len((await client.get(KEYS, headers=ada.headers)).json()) == 1
    assert (await client.get(ME, headers=headers)).status_code == 200


# --- revoking, expiry and the owner's account ------------------------------------------------


async def test_a_revoked_key_stops_working_at_once(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    created = await new_key(client, ada, ["projects:read"])
    assert (await client.get(ME, headers=api_key(created["key"]))).status_code == 200

    revoked = await client.delete(f"{KEYS}/{created['id']}", headers=ada.headers)

    assert revoked.status_code == 204
    assert_unauthorized(await client.get(ME, headers=api_key(created["key"])))
    assert_unauthorized(await client.get(ME, headers={"Authorization": f"Bearer {created['key']}"}))
    assert (await client.get(KEYS, headers=ada.headers)).json() == []
    assert (await client.get(ME, headers=ada.headers)).status_code == 200


async def test_revoking_a_key_twice_is_not_found(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    created = await new_key(client, ada, ["projects:read"])
    assert (await client.delete(f"{KEYS}/{created['id']}", headers=ada.headers)).status_code == 204

    again = await client.delete(f"{KEYS}/{created['id']}", headers=ada.headers)

    assert again.status_code == 404
    assert again.json()["code"] == "not_found"


async def test_someone_elses_key_cannot_be_revoked(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    adas = await new_key(client, ada, ["projects:read"])

    response = await client.delete(f"{KEYS}/{adas['id']}", headers=bob.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert (await client.get(ME, headers=api_key(adas["key"]))).status_code == 200


async def test_the_not_found_message_spells_api_key_properly(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.delete(f"{KEYS}/123456", headers=ada.headers)

    assert response.status_code == 404
    assert response.json() == {"detail": "API key not found", "code": "not_found"}


@pytest.mark.parametrize("key_id", [2**63, 10**30], ids=["int64-max-plus-one", "huge"])
async def test_revoking_a_key_id_beyond_the_id_range_is_not_a_server_error(
    client: httpx.AsyncClient, key_id: int
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.delete(f"{KEYS}/{key_id}", headers=ada.headers)

    assert response.status_code in (404, 422), response.text
    assert set(response.json()) >= {"detail", "code"}


async def test_an_expiry_in_the_past_is_refused(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    response = await create_key(client, ada, ["projects:read"], expires_at=past)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_expiry"
    assert (await client.get(KEYS, headers=ada.headers)).json() == []


async def test_an_expiry_without_a_time_zone_is_refused(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()

    response = await create_key(client, ada, ["projects:read"], expires_at=naive)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_an_expired_key_stops_working(client: httpx.AsyncClient, app: FastAPI) -> None:
    ada = await signed_up(client, "ada@example.com")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    response = await create_key(client, ada, ["projects:read"], expires_at=tomorrow.isoformat())
    assert response.status_code == 201, response.text
    created = response.json()
    assert abs(datetime.fromisoformat(created["expires_at"]) - tomorrow) < timedelta(seconds=1)
    assert (await client.get(ME, headers=api_key(created["key"]))).status_code == 200

    async with app.state.databases.auth.sessions() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == created["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            .execution_options(**UNAUDITED)  # time passing is no activity
        )
        record_change(session, ada.id)  # as if a day had passed: what the worker kept goes
        await commit_changed(app, session, ada.id)

    assert_unauthorized(await client.get(ME, headers=api_key(created["key"])))


async def test_deactivating_the_owner_stops_their_keys_for_good(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await signed_up(client, "admin@example.com")
    await grant_role(app, admin.email, "admin")
    ada = await signed_up(client, "ada@example.com")
    key = (await new_key(client, ada, ["projects:read"]))["key"]
    assert (await client.get(ME, headers=api_key(key))).status_code == 200

    deactivated = await client.patch(
        f"{USERS}/{ada.id}", json={"is_active": False}, headers=admin.headers
    )

    assert deactivated.status_code == 200, deactivated.text
    assert_unauthorized(await client.get(ME, headers=api_key(key)))
    reactivated = await client.patch(
        f"{USERS}/{ada.id}", json={"is_active": True}, headers=admin.headers
    )
    assert reactivated.status_code == 200, reactivated.text
    assert_unauthorized(await client.get(ME, headers=api_key(key)))


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "scopes": ["projects:read"]},
        {"name": "   ", "scopes": ["projects:read"]},
        {"name": "x" * 101, "scopes": ["projects:read"]},
        {"scopes": ["projects:read"]},
        {"name": "ci"},
        {"name": "ci", "scopes": ["ADMIN"]},
        {"name": "ci", "scopes": ["no-colon"]},
        {"name": "ci", "scopes": ["projects:read "]},
        {"name": "ci", "scopes": [":read"]},
        {"name": "ci", "scopes": "projects:read"},
        {"name": "ci", "scopes": [f"projects:s{number}" for number in range(51)]},
        {"name": "ci", "scopes": ["projects:read"], "user_id": 1},
        {"name": "ci", "scopes": ["projects:read"], "expires_at": "tomorrow"},
    ],
    ids=[
        "empty-name",
        "blank-name",
        "long-name",
        "no-name",
        "no-scopes",
        "upper-case-scope",
        "scope-without-colon",
        "scope-with-space",
        "scope-without-resource",
        "scopes-not-a-list",
        "51-scopes",
        "unknown-field",
        "bad-expiry",
    ],
)
async def test_an_invalid_key_request_is_a_validation_error(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.post(KEYS, json=body, headers=ada.headers)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert (await client.get(KEYS, headers=ada.headers)).json() == []


async def test_creating_a_key_needs_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post(KEYS, json={"name": "ci", "scopes": ["projects:read"]})

    assert_unauthorized(response)
