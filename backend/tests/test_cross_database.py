"""What replaces foreign keys between the two databases: erasure that survives a crash,
the orphan check, and the helper that commits a write to both databases."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select

from app.auth.models import User
from app.core.config import Settings
from app.erasure import service as erasure
from app.essentials.activity.recording import UNAUDITED
from app.orders.models import Order, OrderItem
from app.products.models import Product
from app.projects.models import Project
from tests.accounts import API, PASSWORD, Account, grant_role, login, signed_up
from tests.conftest import run_cli


async def give_belongings(client: httpx.AsyncClient, app: FastAPI, owner: Account) -> None:
    """Two projects and an order (with its item) in the app database."""
    for name in ("first", "second"):
        created = await client.post(f"{API}/projects", json={"name": name}, headers=owner.headers)
        assert created.status_code == 201
    async with app.state.databases.app.sessions() as session:
        product = Product(sku=f"SKU-{owner.id}", name="Thing", price="2.50", stock=5)
        session.add(product)
        await session.commit()
    placed = await client.post(
        f"{API}/orders",
        json={"items": [{"product_id": product.id, "quantity": 1}]},
        headers=owner.headers,
    )
    assert placed.status_code == 201


async def app_rows(app: FastAPI, owner_id: int) -> dict[str, int]:
    async with app.state.databases.app.sessions() as session:
        projects = await session.scalar(
            select(func.count()).select_from(Project).where(Project.owner_id == owner_id)
        )
        orders = await session.scalar(
            select(func.count()).select_from(Order).where(Order.owner_id == owner_id)
        )
        items = await session.scalar(
            select(func.count())
            .select_from(OrderItem)
            .join(Order, Order.id == OrderItem.order_id)
            .where(Order.owner_id == owner_id)
        )
    return {"projects": int(projects or 0), "orders": int(orders or 0), "items": int(items or 0)}


async def auth_user(app: FastAPI, user_id: int) -> User | None:
    async with app.state.databases.auth.sessions() as session:
        user: User | None = await session.get(User, user_id)
        return user


# --- erasure ---------------------------------------------------------------------------


async def test_deleting_my_account_erases_me_from_both_databases(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    await give_belongings(client, app, ada)
    await give_belongings(client, app, bob)

    wrong = await client.request(
        "DELETE", f"{API}/users/me", json={"password": "not my password"}, headers=ada.headers
    )
    assert wrong.status_code == 400
    assert await app_rows(app, ada.id) == {"projects": 2, "orders": 1, "items": 1}

    erased = await client.request(
        "DELETE", f"{API}/users/me", json={"password": PASSWORD}, headers=ada.headers
    )

    assert erased.status_code == 204
    assert await auth_user(app, ada.id) is None
    assert await app_rows(app, ada.id) == {"projects": 0, "orders": 0, "items": 0}
    assert await app_rows(app, bob.id) == {"projects": 2, "orders": 1, "items": 1}
    assert (await login(client, ada.email)).status_code == 401
    assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 401


async def test_an_admin_can_erase_a_user_and_an_unknown_id_is_404(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await signed_up(client, "boss@example.com")
    await grant_role(app, boss.email, "admin")
    ada = await signed_up(client, "ada@example.com")
    await give_belongings(client, app, ada)

    assert (await client.delete(f"{API}/users/{ada.id}", headers=boss.headers)).status_code == 204
    assert await auth_user(app, ada.id) is None
    assert await app_rows(app, ada.id) == {"projects": 0, "orders": 0, "items": 0}
    assert (await client.delete(f"{API}/users/{ada.id}", headers=boss.headers)).status_code == 404
    member = await signed_up(client, "member@example.com")
    assert (
        await client.delete(f"{API}/users/{boss.id}", headers=member.headers)
    ).status_code == 403


async def test_an_erasure_that_dies_after_marking_the_user_is_finished_by_running_it_again(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await signed_up(client, "ada@example.com")
    await give_belongings(client, app, ada)
    boss = await signed_up(client, "boss@example.com")
    await grant_role(app, boss.email, "admin")

    async def process_dies(*_: object) -> dict[str, int]:
        raise RuntimeError("the process was killed here")

    monkeypatch.setattr(erasure, "delete_owned_rows", process_dies)
    crashed = await client.request(
        "DELETE", f"{API}/users/me", json={"password": PASSWORD}, headers=ada.headers
    )
    monkeypatch.undo()

    assert crashed.status_code == 500
    marked = await auth_user(app, ada.id)
    assert marked is not None
    assert marked.deleting_at is not None
    # Marked users cannot sign in, and their old tokens are dead.
    assert (await login(client, ada.email)).status_code == 401
    assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 401
    assert await app_rows(app, ada.id) == {"projects": 2, "orders": 1, "items": 1}

    again = await client.delete(f"{API}/users/{ada.id}", headers=boss.headers)

    assert again.status_code == 204
    assert await auth_user(app, ada.id) is None
    assert await app_rows(app, ada.id) == {"projects": 0, "orders": 0, "items": 0}


async def test_an_erasure_that_dies_before_the_last_step_is_finished_by_the_cli(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await signed_up(client, "ada@example.com")
    await give_belongings(client, app, ada)

    async def process_dies(*_: object) -> None:
        raise RuntimeError("the process was killed here")

    monkeypatch.setattr(erasure, "delete_marked_user", process_dies)
    with pytest.raises(RuntimeError):
        await erasure.erase_user(app.state.databases, ada.id)
    monkeypatch.undo()
    assert await app_rows(app, ada.id) == {"projects": 0, "orders": 0, "items": 0}
    assert await auth_user(app, ada.id) is not None

    finished = await run_cli(settings, "finish-erasures")

    assert finished.returncode == 0, finished.stderr
    assert "finished 1 erasures" in finished.stdout
    assert await auth_user(app, ada.id) is None


async def test_the_last_step_never_deletes_a_user_who_was_not_marked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")

    async with app.state.databases.auth.sessions() as session:
        await erasure.delete_marked_user(session, ada.id)
        await session.commit()

    assert await auth_user(app, ada.id) is not None


# --- orphans ---------------------------------------------------------------------------


async def test_check_orphans_reports_and_fixes_rows_whose_owner_is_gone(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    await give_belongings(client, app, ada)
    await give_belongings(client, app, bob)
    clean = await run_cli(settings, "check-orphans")
    assert clean.returncode == 0, clean.stderr
    assert "no orphaned rows" in clean.stdout
    # As after restoring the auth database from a backup older than Ada's erasure.
    async with app.state.databases.auth.sessions() as session:
        await session.execute(delete(User).where(User.id == ada.id).execution_options(**UNAUDITED))
        await session.commit()

    report = await run_cli(settings, "check-orphans")

    assert report.returncode == 1
    assert "3 orphaned rows, owned by 1 missing users" in report.stdout
    assert "projects: 2" in report.stdout
    assert "orders: 1" in report.stdout
    assert await app_rows(app, ada.id) == {"projects": 2, "orders": 1, "items": 1}

    fixed = await run_cli(settings, "check-orphans", "--fix")

    assert fixed.returncode == 0, fixed.stderr
    assert "deleted 3 rows" in fixed.stdout
    assert await app_rows(app, ada.id) == {"projects": 0, "orders": 0, "items": 0}
    assert await app_rows(app, bob.id) == {"projects": 2, "orders": 1, "items": 1}
    assert "no orphaned rows" in (await run_cli(settings, "check-orphans")).stdout
