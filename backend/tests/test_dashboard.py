"""The dashboard: the caller's account from the auth database and their activity from the
app database, in one answer."""

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from tests.accounts import API, Account, an_admin, assert_error, login, signed_up
from tests.conftest import client_for, empty_tables, running

DASHBOARD = f"{API}/dashboard"
PROJECTS = f"{API}/projects"
PRODUCTS = f"{API}/products"
ORDERS = f"{API}/orders"
KEYS = f"{API}/auth/api-keys"


async def dashboard_of(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.get(DASHBOARD, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_project(client: httpx.AsyncClient, owner: Account, name: str) -> dict[str, Any]:
    response = await client.post(PROJECTS, json={"name": name}, headers=owner.headers)
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


async def new_product(client: httpx.AsyncClient, admin: Account, sku: str) -> dict[str, Any]:
    body = {"sku": sku, "name": sku, "price": "2.50", "stock": 1000}
    response = await client.post(PRODUCTS, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def new_order(
    client: httpx.AsyncClient, buyer: Account, product: dict[str, Any], quantity: int
) -> dict[str, Any]:
    response = await client.post(
        ORDERS,
        json={"items": [{"product_id": product["id"], "quantity": quantity}]},
        headers=buyer.headers,
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def test_a_new_members_dashboard_shows_the_account_and_no_activity(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")

    body = await dashboard_of(client, ada)

    account = body["account"]
    assert account["user"]["id"] == ada.id
    assert account["user"]["email"] == "ada@example.com"
    assert account["user"]["roles"] == ["member"]
    assert account["user"]["is_active"] is True
    assert "hashed_password" not in account["user"]
    assert account["active_sessions"] == 1
    assert account["api_keys"] == 0
    assert body["activity"] == {
        "project_count": 0,
        "order_count": 0,
        "latest_projects": [],
        "latest_orders": [],
    }


async def test_the_dashboard_counts_sessions_and_api_keys(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    assert (await login(client, ada.email, ada.password)).status_code == 200
    key = await client.post(
        KEYS, json={"name": "ci", "scopes": ["projects:read"]}, headers=ada.headers
    )
    assert key.status_code == 201, key.text

    account = (await dashboard_of(client, ada))["account"]

    assert account["active_sessions"] == 2
    assert account["api_keys"] == 1


async def test_the_dashboard_shows_the_latest_five_projects_and_orders_newest_first(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1")
    projects = [await new_project(client, ada, f"project {n}") for n in range(7)]
    orders = [await new_order(client, ada, pen, n) for n in range(1, 7)]

    activity = (await dashboard_of(client, ada))["activity"]

    assert activity["project_count"] == 7
    assert activity["order_count"] == 6
    assert activity["latest_projects"] == list(reversed(projects))[:5]
    latest = activity["latest_orders"]
    assert [order["id"] for order in latest] == [order["id"] for order in reversed(orders)][:5]
    assert [order["total"] for order in latest] == ["15.00", "12.50", "10.00", "7.50", "5.00"]
    assert {order["status"] for order in latest} == {"placed"}


async def test_the_dashboard_counts_only_the_callers_own_rows(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    pen = await new_product(client, boss, "PEN-1")
    mine = await new_project(client, ada, "ada's")
    for n in range(3):
        await new_project(client, bob, f"bob's {n}")
    await new_order(client, bob, pen, 1)
    await new_order(client, bob, pen, 2)
    order = await new_order(client, ada, pen, 1)

    ada_sees = (await dashboard_of(client, ada))["activity"]
    bob_sees = (await dashboard_of(client, bob))["activity"]

    assert (ada_sees["project_count"], ada_sees["order_count"]) == (1, 1)
    assert ada_sees["latest_projects"] == [mine]
    assert [summary["id"] for summary in ada_sees["latest_orders"]] == [order["id"]]
    assert (bob_sees["project_count"], bob_sees["order_count"]) == (3, 2)
    assert {project["owner_id"] for project in bob_sees["latest_projects"]} == {bob.id}


async def test_a_cancelled_order_still_counts_and_shows_as_cancelled(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1")
    order = await new_order(client, ada, pen, 1)
    cancelled = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=ada.headers)
    assert cancelled.status_code == 200, cancelled.text

    activity = (await dashboard_of(client, ada))["activity"]

    assert activity["order_count"] == 1
    assert [summary["status"] for summary in activity["latest_orders"]] == ["cancelled"]


async def test_an_admins_dashboard_lists_both_roles(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)

    user = (await dashboard_of(client, boss))["account"]["user"]

    assert user["roles"] == ["admin", "member"]


async def test_the_dashboard_needs_credentials(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(DASHBOARD), 401, "not_authenticated")
    bad = await client.get(DASHBOARD, headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


async def test_a_user_whose_roles_were_taken_away_is_refused_the_dashboard(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    await new_project(client, ada, "Apollo")
    emptied = await client.patch(f"{API}/users/{ada.id}", json={"roles": []}, headers=boss.headers)
    assert emptied.status_code == 200, emptied.text

    assert_error(await client.get(DASHBOARD, headers=ada.headers), 403, "permission_denied")


async def test_many_dashboards_at_once_never_wait_on_each_other_for_connections(
    settings: Settings,
) -> None:
    """Each statement holds an app connection only while it runs: with a pool of one
    connection, eight dashboards at once all answer (a request holding one connection
    while it waits for a second would wait out the pool timeout, then get a 503)."""
    one_connection = settings.model_copy(
        update={"app_db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 3.0}
    )
    async with running(create_app(one_connection)) as app, client_for(app) as client:
        try:
            ada = await signed_up(client, "ada@example.com")
            await new_project(client, ada, "Apollo")

            answers = await asyncio.gather(
                *(client.get(DASHBOARD, headers=ada.headers) for _ in range(8))
            )

            assert [answer.status_code for answer in answers] == [200] * 8
            assert {answer.json()["activity"]["project_count"] for answer in answers} == {1}
        finally:
            await empty_tables(app)
