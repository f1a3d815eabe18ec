"""Projects: each user's own, in the app database, owned by a user of the auth database."""

import base64
import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.accounts import API, Account, assert_error, grant_role, signed_up

PROJECTS = f"{API}/projects"
USERS = f"{API}/users"


async def new_project(
    client: httpx.AsyncClient, owner: Account, name: str, description: str | None = None
) -> dict[str, Any]:
    """A project of `owner`; fails the test if it cannot be created."""
    response = await client.post(
        PROJECTS, json={"name": name, "description": description}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


async def every_page(
    client: httpx.AsyncClient, owner: Account, limit: int
) -> list[list[dict[str, Any]]]:
    """Follow next_cursor from the first page to the last."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, str | int] = {"limit": limit}
    while True:
        response = await client.get(PROJECTS, params=params, headers=owner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        if body["next_cursor"] is None:
            return pages
        params = {"limit": limit, "cursor": body["next_cursor"]}
        assert len(pages) < 100, "pagination does not end"


def moment(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, value
    return parsed


def cursor_of(key: object) -> str:
    """A cursor built the way the API builds them, around any JSON value."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


# --- create, read, change, delete ------------------------------------------------------------


async def test_a_created_project_belongs_to_the_caller_with_its_name_trimmed(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.post(
        PROJECTS, json={"name": "  Apollo  ", "description": "to the moon"}, headers=ada.headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["owner_id"] == ada.id
    assert body["name"] == "Apollo"
    assert body["description"] == "to the moon"
    assert isinstance(body["id"], int)
    assert body["created_at"]
    assert body["updated_at"]


async def test_a_project_can_be_created_without_a_description(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.post(PROJECTS, json={"name": "Gemini"}, headers=ada.headers)

    assert response.status_code == 201, response.text
    assert response.json()["description"] is None


async def test_the_owner_reads_a_project_as_it_was_created(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    created = await new_project(client, ada, "Apollo", "to the moon")

    response = await client.get(f"{PROJECTS}/{created['id']}", headers=ada.headers)

    assert response.status_code == 200
    assert response.json() == created


async def test_the_owner_renames_a_project_and_changes_its_description(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    project = await new_project(client, ada, "Apollo", "to the moon")
    url = f"{PROJECTS}/{project['id']}"

    renamed = await client.patch(url, json={"name": " Artemis "}, headers=ada.headers)
    described = await client.patch(url, json={"description": "back again"}, headers=ada.headers)

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Artemis"
    assert renamed.json()["description"] == "to the moon"
    assert described.status_code == 200, described.text
    assert described.json()["name"] == "Artemis"
    assert described.json()["description"] == "back again"
    stored = (await client.get(url, headers=ada.headers)).json()
    assert (stored["name"], stored["description"]) == ("Artemis", "back again")
    assert stored["created_at"] == project["created_at"]
    assert moment(stored["updated_at"]) > moment(project["updated_at"])


async def test_a_null_name_in_a_change_is_ignored_but_a_null_description_clears_it(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    project = await new_project(client, ada, "Apollo", "to the moon")

    response = await client.patch(
        f"{PROJECTS}/{project['id']}",
        json={"name": None, "description": None},
        headers=ada.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Apollo"
    assert response.json()["description"] is None


async def test_a_deleted_project_is_gone(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    project = await new_project(client, ada, "Apollo")
    url = f"{PROJECTS}/{project['id']}"

    deleted = await client.delete(url, headers=ada.headers)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(await client.get(url, headers=ada.headers), 404, "not_found")
    assert_error(await client.delete(url, headers=ada.headers), 404, "not_found")
    assert (await client.get(PROJECTS, headers=ada.headers)).json()["items"] == []


async def test_a_project_that_never_existed_is_not_found(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    assert_error(await client.get(f"{PROJECTS}/999999", headers=ada.headers), 404, "not_found")


@pytest.mark.parametrize("project_id", ["0", "-1", str(2**63), "apollo"])
async def test_a_project_id_that_can_name_no_row_is_refused(
    client: httpx.AsyncClient, project_id: str
) -> None:
    ada = await signed_up(client, "ada@example.com")
    url = f"{PROJECTS}/{project_id}"

    answers = [
        await client.get(url, headers=ada.headers),
        await client.patch(url, json={"name": "Gemini"}, headers=ada.headers),
        await client.delete(url, headers=ada.headers),
    ]

    for response in answers:
        assert_error(response, 422, "validation_error")


# --- someone else's projects -----------------------------------------------------------------


async def test_another_users_project_is_not_found_and_stays_unchanged(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    project = await new_project(client, ada, "Apollo", "to the moon")
    url = f"{PROJECTS}/{project['id']}"

    read = await client.get(url, headers=bob.headers)
    changed = await client.patch(url, json={"name": "Stolen"}, headers=bob.headers)
    deleted = await client.delete(url, headers=bob.headers)

    for response in (read, changed, deleted):
        assert_error(response, 404, "not_found")
    # The same answer as for a project that does not exist: nothing leaks.
    assert read.json() == (await client.get(f"{PROJECTS}/999999", headers=bob.headers)).json()
    assert (await client.get(url, headers=ada.headers)).json() == project
    assert (await client.get(PROJECTS, headers=bob.headers)).json()["items"] == []


# --- who may use the projects API ------------------------------------------------------------


async def test_the_projects_api_needs_credentials(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    project = await new_project(client, ada, "Apollo")
    url = f"{PROJECTS}/{project['id']}"

    answers = [
        await client.get(PROJECTS),
        await client.post(PROJECTS, json={"name": "Gemini"}),
        await client.get(url),
        await client.patch(url, json={"name": "Gemini"}),
        await client.delete(url),
        await client.get(PROJECTS, headers={"Authorization": "Bearer not-a-token"}),
    ]

    for response in answers[:-1]:
        assert_error(response, 401, "not_authenticated")
    assert answers[-1].status_code == 401
    assert (await client.get(url, headers=ada.headers)).json() == project


async def test_a_user_whose_roles_were_taken_away_is_refused_their_projects(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await signed_up(client, "boss@example.com")
    await grant_role(app, boss.email, "admin")
    ada = await signed_up(client, "ada@example.com")
    project = await new_project(client, ada, "Apollo")
    url = f"{PROJECTS}/{project['id']}"

    emptied = await client.patch(f"{USERS}/{ada.id}", json={"roles": []}, headers=boss.headers)
    assert emptied.status_code == 200, emptied.text
    assert emptied.json()["roles"] == []

    answers = [
        await client.get(PROJECTS, headers=ada.headers),
        await client.post(PROJECTS, json={"name": "Gemini"}, headers=ada.headers),
        await client.get(url, headers=ada.headers),
        await client.patch(url, json={"name": "Gemini"}, headers=ada.headers),
        await client.delete(url, headers=ada.headers),
    ]

    for response in answers:
        assert_error(response, 403, "permission_denied")
    await grant_role(app, ada.email, "admin")
    assert (await client.get(url, headers=ada.headers)).json() == project


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"name": ""}, id="empty name"),
        pytest.param({"name": "   "}, id="blank name"),
        pytest.param({"name": "x" * 201}, id="201-character name"),
        pytest.param({}, id="no name"),
        pytest.param({"name": "Apollo", "owner_id": 1}, id="unknown field"),
        pytest.param({"name": 42}, id="name not a string"),
    ],
)
async def test_a_project_with_an_invalid_body_is_refused(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.post(PROJECTS, json=body, headers=ada.headers)

    assert_error(response, 422, "validation_error")
    assert response.json()["errors"]
    assert (await client.get(PROJECTS, headers=ada.headers)).json()["items"] == []


async def test_a_200_character_name_is_accepted(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.post(PROJECTS, json={"name": "x" * 200}, headers=ada.headers)

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "x" * 200


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"name": ""}, id="empty name"),
        pytest.param({"name": "x" * 201}, id="201-character name"),
        pytest.param({"owner_id": 12345}, id="unknown field"),
    ],
)
async def test_an_invalid_change_is_refused_and_the_project_stays_unchanged(
    client: httpx.AsyncClient, changes: dict[str, Any]
) -> None:
    ada = await signed_up(client, "ada@example.com")
    project = await new_project(client, ada, "Apollo")
    url = f"{PROJECTS}/{project['id']}"

    response = await client.patch(url, json=changes, headers=ada.headers)

    assert_error(response, 422, "validation_error")
    assert (await client.get(url, headers=ada.headers)).json() == project


# --- lists and pages -------------------------------------------------------------------------


async def test_the_list_holds_only_the_callers_projects_newest_first(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    for name in ("first", "second", "third"):
        await new_project(client, ada, name)
    await new_project(client, bob, "bob's")

    response = await client.get(PROJECTS, headers=ada.headers)

    assert response.status_code == 200
    body = response.json()
    assert [project["name"] for project in body["items"]] == ["third", "second", "first"]
    assert {project["owner_id"] for project in body["items"]} == {ada.id}
    assert body["next_cursor"] is None
    bobs = (await client.get(PROJECTS, headers=bob.headers)).json()["items"]
    assert [project["name"] for project in bobs] == ["bob's"]


async def test_pages_hold_every_project_exactly_once_in_order(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    created = [(await new_project(client, ada, f"project {n}"))["id"] for n in range(23)]
    await new_project(client, bob, "bob's")

    pages = await every_page(client, ada, limit=5)

    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    seen = [project["id"] for page in pages for project in page]
    assert seen == list(reversed(created))


async def test_a_last_page_that_is_exactly_full_has_no_next_cursor(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    for n in range(10):
        await new_project(client, ada, f"project {n}")

    pages = await every_page(client, ada, limit=5)

    assert [len(page) for page in pages] == [5, 5]


async def test_a_project_created_between_pages_does_not_shift_the_next_page(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    created = [(await new_project(client, ada, f"project {n}"))["id"] for n in range(8)]

    first = (await client.get(PROJECTS, params={"limit": 3}, headers=ada.headers)).json()
    await new_project(client, ada, "late arrival")
    second = (
        await client.get(
            PROJECTS, params={"limit": 3, "cursor": first["next_cursor"]}, headers=ada.headers
        )
    ).json()

    newest_first = list(reversed(created))
    assert [project["id"] for project in first["items"]] == newest_first[:3]
    assert [project["id"] for project in second["items"]] == newest_first[3:6]


async def test_a_cursor_does_not_reveal_another_users_projects(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    for n in range(4):
        await new_project(client, ada, f"ada {n}")
    first = (await client.get(PROJECTS, params={"limit": 2}, headers=ada.headers)).json()

    response = await client.get(
        PROJECTS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=bob.headers
    )

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "many"])
async def test_a_page_size_out_of_range_is_refused(client: httpx.AsyncClient, limit: str) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.get(PROJECTS, params={"limit": limit}, headers=ada.headers)

    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize("limit", [1, 100])
async def test_the_smallest_and_largest_page_sizes_are_accepted(
    client: httpx.AsyncClient, limit: int
) -> None:
    ada = await signed_up(client, "ada@example.com")
    await new_project(client, ada, "Apollo")

    response = await client.get(PROJECTS, params={"limit": limit}, headers=ada.headers)

    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("!!!!", id="not base64"),
        pytest.param("\x00", id="a NUL byte"),
        pytest.param("e30", id="an object"),  # {}
        pytest.param(cursor_of(None), id="null"),
        pytest.param(cursor_of(7), id="a bare number"),
        pytest.param(cursor_of([]), id="an empty key"),
        pytest.param(cursor_of([7, 8]), id="a key too long"),
        pytest.param(cursor_of(["seven"]), id="a word for an id"),
        pytest.param(cursor_of([[7]]), id="a list for an id"),
        pytest.param(cursor_of([None]), id="a null id"),
        pytest.param(cursor_of(["NaN"]), id="NaN as text"),
        pytest.param(base64.urlsafe_b64encode(b"[1e999]").decode(), id="an infinite id"),
        pytest.param(base64.urlsafe_b64encode(b"[NaN]").decode(), id="a NaN id"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe[1]").decode(), id="not UTF-8"),
        pytest.param(cursor_of([10**30]), id="an id beyond any integer column"),
        pytest.param(cursor_of([2**63]), id="an id just beyond a BIGINT"),
        pytest.param(cursor_of([0]), id="id zero"),
        pytest.param(cursor_of([-5]), id="a negative id"),
        pytest.param(cursor_of([1.5]), id="a fractional id"),
        pytest.param(cursor_of([True]), id="a boolean id"),
    ],
)
async def test_a_cursor_the_api_did_not_make_is_a_bad_request_not_a_crash(
    client: httpx.AsyncClient, cursor: str
) -> None:
    ada = await signed_up(client, "ada@example.com")
    await new_project(client, ada, "Apollo")

    response = await client.get(PROJECTS, params={"cursor": cursor}, headers=ada.headers)

    assert_error(response, 400, "invalid_cursor")


async def test_a_tampered_cursor_is_a_bad_request(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    for n in range(3):
        await new_project(client, ada, f"project {n}")
    cursor = (await client.get(PROJECTS, params={"limit": 1}, headers=ada.headers)).json()[
        "next_cursor"
    ]

    answers = [
        await client.get(PROJECTS, params={"cursor": cursor[:-1] + "$"}, headers=ada.headers),
        await client.get(PROJECTS, params={"cursor": "x" + cursor}, headers=ada.headers),
        await client.get(PROJECTS, params={"cursor": cursor[::-1]}, headers=ada.headers),
    ]

    for response in answers:
        assert_error(response, 400, "invalid_cursor")
