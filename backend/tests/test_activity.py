"""The activity log: each audited change with its old and new values and its causer,
entries written by hand, no secret anywhere, bulk statements refused, the app
database's entries relayed through the outbox whatever commit fails, pruning, and the
two endpoints.

Failures are injected as in tests/test_outbox.py: an engine's `commit` event raising
once, as a connection dying during COMMIT would.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, insert, select, update

from app.auth import password_reset
from app.auth.models import User
from app.core.config import Settings
from app.core.db.sessions import transaction
from app.essentials.activity.models import ActivityEntry
from app.essentials.activity.recording import UNAUDITED, UnrecordedChange, activity, deliver
from app.essentials.outbox.models import OutboxMessage
from app.orders.models import Order
from app.products.models import Product
from app.projects.models import Project
from tests.accounts import API, PASSWORD, Account, an_admin, assert_error, login, signed_up
from tests.conftest import run_cli
from tests.test_outbox import CommitFails

ACTIVITY = f"{API}/activity"
MINE = f"{API}/users/me/activity"


async def entries(app: FastAPI, **where: Any) -> list[dict[str, Any]]:
    """The rows of `activity_log` matching `where`, oldest first, properties parsed."""
    query = select(ActivityEntry).order_by(ActivityEntry.id)
    for column, value in where.items():
        query = query.where(getattr(ActivityEntry, column) == value)
    async with app.state.databases.auth.sessions() as auth_db:
        rows = list(await auth_db.scalars(query))
    return [
        {
            "log_name": row.log_name,
            "event": row.event,
            "subject_type": row.subject_type,
            "subject_id": row.subject_id,
            "causer_id": row.causer_id,
            "properties": json.loads(row.properties),
            "request_id": row.request_id,
            "batch_uuid": row.batch_uuid,
            "uuid": row.uuid,
        }
        for row in rows
    ]


async def staged(app: FastAPI) -> int:
    async with app.state.databases.app.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def new_project(client: httpx.AsyncClient, owner: Account, name: str) -> httpx.Response:
    response = await client.post(f"{API}/projects", json={"name": name}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return response


async def test_a_projects_life_is_logged_with_old_and_new_values_and_its_causer(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    created = await new_project(client, ada, "Garden")
    project_id = created.json()["id"]
    renamed = await client.patch(
        f"{API}/projects/{project_id}", json={"name": "Orchard"}, headers=ada.headers
    )
    assert renamed.status_code == 200, renamed.text
    unchanged = await client.patch(
        f"{API}/projects/{project_id}", json={"name": "Orchard"}, headers=ada.headers
    )
    assert unchanged.status_code == 200, unchanged.text
    deleted = await client.delete(f"{API}/projects/{project_id}", headers=ada.headers)
    assert deleted.status_code == 204

    logged = await entries(app, subject_type="projects", subject_id=project_id)

    assert [entry["event"] for entry in logged] == ["created", "updated", "deleted"]
    assert {entry["causer_id"] for entry in logged} == {ada.id}
    assert {entry["log_name"] for entry in logged} == {"projects"}
    assert logged[0]["properties"] == {
        "attributes": {"id": project_id, "owner_id": ada.id, "name": "Garden", "description": None}
    }
    # Only what changed, old and new; setting the same name again logged nothing.
    assert logged[1]["properties"] == {"old": {"name": "Garden"}, "attributes": {"name": "Orchard"}}
    assert logged[2]["properties"] == {
        "old": {"id": project_id, "owner_id": ada.id, "name": "Orchard", "description": None}
    }
    assert logged[0]["request_id"] == created.headers["X-Request-ID"]
    assert logged[1]["request_id"] == renamed.headers["X-Request-ID"]
    assert logged[0]["batch_uuid"] is not None
    assert logged[0]["batch_uuid"] != logged[1]["batch_uuid"]
    assert await staged(app) == 0  # each relayed as soon as its request committed


async def test_a_price_change_an_order_placed_and_cancelled_are_logged(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    made = await client.post(
        f"{API}/products",
        json={"sku": "MUG-1", "name": "Mug", "price": "12.50", "stock": 10},
        headers=boss.headers,
    )
    assert made.status_code == 201, made.text
    product_id = made.json()["id"]
    repriced = await client.patch(
        f"{API}/products/{product_id}", json={"price": "9.90"}, headers=boss.headers
    )
    assert repriced.status_code == 200, repriced.text
    placed = await client.post(
        f"{API}/orders",
        json={"items": [{"product_id": product_id, "quantity": 3}]},
        headers=ada.headers,
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    cancelled = await client.post(f"{API}/orders/{order_id}/cancel", headers=ada.headers)
    assert cancelled.status_code == 200, cancelled.text

    product_log = await entries(app, subject_type="products", subject_id=product_id)
    order_log = await entries(app, subject_type="orders", subject_id=order_id)

    # The stock, taken and put back by bulk UPDATEs of `stock` alone, is left out.
    assert [(entry["event"], entry["causer_id"]) for entry in product_log] == [
        ("created", boss.id),
        ("updated", boss.id),
    ]
    assert product_log[0]["properties"]["attributes"]["price"] == "12.50"
    assert "stock" not in product_log[0]["properties"]["attributes"]
    assert product_log[1]["properties"] == {
        "old": {"price": "12.50"},
        "attributes": {"price": "9.90"},
    }
    assert [(entry["event"], entry["causer_id"]) for entry in order_log] == [
        ("placed", ada.id),
        ("cancelled", ada.id),
    ]
    assert order_log[0]["properties"]["attributes"] == {
        "id": order_id,
        "owner_id": ada.id,
        "status": "placed",
        "total": "29.70",
        "cancelled_at": None,
    }
    change = order_log[1]["properties"]
    assert change["old"] == {"status": "placed", "cancelled_at": None}
    assert change["attributes"]["status"] == "cancelled"
    assert datetime.fromisoformat(change["attributes"]["cancelled_at"]) == datetime.fromisoformat(
        cancelled.json()["cancelled_at"]
    )


async def test_profile_activation_and_roles_are_logged_with_who_changed_them(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    named = await client.patch(
        f"{API}/users/me", json={"full_name": "Ada Lovelace"}, headers=ada.headers
    )
    assert named.status_code == 200, named.text
    keys = [
        (
            await client.post(
                f"{API}/auth/api-keys", json={"name": name, "scopes": []}, headers=ada.headers
            )
        ).json()["id"]
        for name in ("laptop", "phone")
    ]
    changed = await client.patch(
        f"{API}/users/{ada.id}",
        json={"is_active": False, "roles": ["admin", "member"]},
        headers=boss.headers,
    )
    assert changed.status_code == 200, changed.text

    updates = await entries(app, subject_type="users", subject_id=ada.id, event="updated")

    assert [(entry["causer_id"], entry["properties"]) for entry in updates] == [
        (ada.id, {"old": {"full_name": None}, "attributes": {"full_name": "Ada Lovelace"}}),
        (
            boss.id,
            {
                "old": {"is_active": True, "roles": ["member"]},
                "attributes": {"is_active": False, "roles": ["admin", "member"]},
            },
        ),
    ]
    # Her keys were revoked with the deactivation: one entry each, in the same batch.
    revoked = await entries(app, subject_type="api_keys", event="revoked")
    assert sorted(entry["subject_id"] for entry in revoked) == keys
    assert {entry["causer_id"] for entry in revoked} == {boss.id}
    assert {entry["request_id"] for entry in [*revoked, updates[1]]} == {
        changed.headers["X-Request-ID"]
    }
    assert len({entry["batch_uuid"] for entry in [*revoked, updates[1]]}) == 1


async def test_sign_ins_keys_and_passwords_are_logged_and_no_secret_is(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")
    failed = await login(client, "ada@example.com", "not her password")
    assert failed.status_code == 401
    unknown = await login(client, "nobody@example.com", PASSWORD)
    assert unknown.status_code == 401
    made = await client.post(
        f"{API}/auth/api-keys",
        json={"name": "laptop", "scopes": ["projects:read"]},
        headers=ada.headers,
    )
    assert made.status_code == 201, made.text
    key = made.json()
    revoked = await client.delete(f"{API}/auth/api-keys/{key['id']}", headers=ada.headers)
    assert revoked.status_code == 204, revoked.text
    changed = await client.post(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new one"},
        headers=ada.headers,
    )
    assert changed.status_code == 204, changed.text
    async with app.state.databases.auth.sessions() as auth_db:
        started = await password_reset.start(auth_db, settings, ada.id)
        assert started is not None
        reset_token = started[1]
        await auth_db.commit()
    reset = await client.post(
        f"{API}/auth/password-reset/confirm",
        json={"token": reset_token, "new_password": "chosen anew"},
    )
    assert reset.status_code == 204, reset.text

    logged = await entries(app)

    by_event = {(entry["event"], entry["subject_type"]): entry for entry in logged}
    assert by_event[("signed_in", "users")]["causer_id"] == ada.id
    assert by_event[("sign_in_failed", "users")]["causer_id"] == ada.id
    assert by_event[("sign_in_failed", "users")]["properties"]["email"] == "ada@example.com"
    assert by_event[("sign_in_failed", None)]["causer_id"] is None
    assert by_event[("sign_in_failed", None)]["properties"]["email"] == "nobody@example.com"
    key_created = by_event[("created", "api_keys")]
    assert key_created["subject_id"] == key["id"]
    assert key_created["properties"]["attributes"]["name"] == "laptop"
    assert by_event[("revoked", "api_keys")]["properties"]["old"] == {"revoked_at": None}
    assert by_event[("password_changed", "users")]["causer_id"] == ada.id
    assert by_event[("password_reset", "users")]["causer_id"] == ada.id
    # No hash, no key, no token, no password: by rule, whatever the model.
    async with app.state.databases.auth.sessions() as auth_db:
        user = await auth_db.get_one(User, ada.id)
    text = json.dumps(logged)
    assert user.hashed_password not in text
    for secret in (key["key"], reset_token, PASSWORD, "not her password", "chosen anew"):
        assert secret not in text
    for word in ("hash", 'password":', "digest", "token", "jti", "argon2"):
        assert word not in text


async def test_bulk_statements_on_audited_tables_are_refused_unless_they_say_why(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    async with app.state.databases.app.sessions() as app_db:
        project = Project(owner_id=1, name="Garden")
        product = Product(sku="MUG-1", name="Mug", price="1.00", stock=5)
        app_db.add_all([project, product])
        await app_db.commit()

    for statement in (
        update(Project).values(name="Renamed"),
        delete(Project),
        update(Product).values(price="0.01", stock=1),
        delete(Order),
    ):
        async with transaction(app.state.databases, "app") as app_db:
            with pytest.raises(UnrecordedChange, match="would leave no activity entry"):
                await app_db.execute(statement)

    async with transaction(app.state.databases, "app") as app_db:
        # Only the stock, which the log leaves out: allowed.
        await app_db.execute(update(Product).values(stock=7))
        # An explicit, documented opt-out.
        await app_db.execute(update(Project).values(name="Quietly").execution_options(**UNAUDITED))
    async with app.state.databases.app.sessions() as app_db:
        assert (await app_db.scalars(select(Project.name))).all() == ["Quietly"]
        assert (await app_db.scalars(select(Product.stock))).all() == [7]


async def test_a_change_rolled_back_leaves_no_entry_in_either_database(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    before = await entries(app)

    async def draft_project() -> None:
        async with transaction(app.state.databases, "app") as app_db:
            app_db.add(Project(owner_id=ada.id, name="Draft"))
            await app_db.flush()
            raise RuntimeError("changed my mind")

    async def draft_name() -> None:
        async with transaction(app.state.databases, "auth") as auth_db:
            user = await auth_db.get_one(User, ada.id)
            user.full_name = "Draft name"
            await auth_db.flush()
            await activity("users").on(user).event("renamed").log(auth_db, "renamed")
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await draft_project()
    with pytest.raises(RuntimeError, match="changed my mind"):
        await draft_name()

    assert await staged(app) == 0
    assert await entries(app) == before


async def test_a_crash_after_the_app_commit_and_before_the_move_loses_no_entry(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    databases = app.state.databases

    with CommitFails(databases.auth.engine) as crash:
        created = await new_project(client, ada, "Garden")

    assert crash.failed == 1  # the relay's auth transaction died
    project_id = created.json()["id"]  # the project itself stands
    assert await entries(app, subject_type="projects") == []
    assert await staged(app) == 1
    # What every worker does every OUTBOX_RELAY_INTERVAL seconds:
    assert await app.state.outbox.relay(older_than=0) == 1
    (entry,) = await entries(app, subject_type="projects")
    assert (entry["event"], entry["subject_id"], entry["causer_id"]) == (
        "created",
        project_id,
        ada.id,
    )
    assert entry["request_id"] == created.headers["X-Request-ID"]
    assert await staged(app) == 0
    assert await app.state.outbox.relay(older_than=0) == 0
    assert len(await entries(app, subject_type="projects")) == 1


async def test_a_crash_after_the_move_and_before_the_outbox_is_cleared_logs_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    databases = app.state.databases

    with CommitFails(databases.app.engine, armed_by=databases.auth.engine) as crash:
        await new_project(client, ada, "Garden")

    assert crash.failed == 1  # the relay's delete of the outbox row died
    assert len(await entries(app, subject_type="projects")) == 1
    assert await staged(app) == 1
    assert await app.state.outbox.relay(older_than=0) == 1  # seen received: only deleted
    assert await staged(app) == 0
    assert len(await entries(app, subject_type="projects")) == 1


async def test_delivering_an_entry_twice_writes_it_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Even once its receipt is pruned, the entry's own uuid keeps it single."""
    entry = activity("projects").on("projects", 7).event("created").entry("created")

    for _ in range(2):
        async with transaction(app.state.databases, "auth") as auth_db:
            await deliver(auth_db, [entry.payload(), entry.payload()])

    assert [row["uuid"] for row in await entries(app)] == [entry.uuid]


async def test_a_change_outside_requests_is_relayed_by_the_workers(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A job's or a command's session has no outbox to relay at once: its entry waits
    in the outbox for the periodic relay, with no causer and no request."""
    async with app.state.databases.app.sessions() as app_db:
        app_db.add(Project(owner_id=1, name="Imported"))
        await app_db.commit()

    assert await entries(app) == []
    assert await app.state.outbox.relay_pending() == 0  # younger than OUTBOX_RELAY_DELAY
    assert await app.state.outbox.relay(older_than=0) == 1
    (entry,) = await entries(app)
    assert (entry["event"], entry["causer_id"], entry["request_id"]) == ("created", None, None)


async def old_entries(app: FastAPI, ages: dict[str, tuple[int, timedelta]]) -> None:
    """Insert, per log name, `count` entries `age` old."""
    now = datetime.now(UTC)
    async with app.state.databases.auth.engine.begin() as connection:
        for label, (count, age) in ages.items():
            await connection.execute(
                insert(ActivityEntry),
                [
                    {
                        "uuid": str(uuid4()),
                        "log_name": label,
                        "description": "imported",
                        "event": "created",
                        "properties": "{}",
                        "created_at": now - age,
                    }
                    for _ in range(count)
                ],
            )


async def test_prune_removes_exactly_the_entries_older_than_the_days_kept(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    await old_entries(
        app,
        {
            "fresh": (3, timedelta(days=1)),
            "edge": (2, timedelta(days=29, hours=23)),
            "old": (1001, timedelta(days=31)),  # more than one batch
            "ancient": (4, timedelta(days=800)),
        },
    )

    pruned = await run_cli(settings, "activity", "prune", "--days", "30")
    again = await run_cli(settings, "activity", "prune", "--days", "30")
    default = await run_cli(settings, "activity", "prune")

    assert pruned.returncode == 0, pruned.stderr
    assert "removed 1005 activity entries older than 30 days" in pruned.stdout
    assert "removed 0 activity entries" in again.stdout
    assert "older than 365 days" in default.stdout  # ACTIVITY_RETENTION_DAYS
    left = await entries(app)
    assert sorted({entry["log_name"] for entry in left}) == ["edge", "fresh"]
    assert len(left) == 5


async def test_admins_read_everyone_s_activity_filtered_a_page_at_a_time(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    ada_projects = [(await new_project(client, ada, f"A{n}")).json()["id"] for n in range(5)]
    await new_project(client, bob, "B")

    mine = await client.get(
        ACTIVITY, params={"causer_id": ada.id, "subject_type": "projects"}, headers=boss.headers
    )
    assert mine.status_code == 200, mine.text
    assert [item["subject_id"] for item in mine.json()["items"]] == ada_projects[::-1]

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"log_name": "projects", "event": "created", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(ACTIVITY, params=params, headers=boss.headers)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6
    assert seen == sorted(seen, reverse=True)  # newest first, none twice

    one = await client.get(
        ACTIVITY,
        params={"subject_type": "projects", "subject_id": ada_projects[0]},
        headers=boss.headers,
    )
    (item,) = one.json()["items"]
    assert item["properties"]["attributes"]["name"] == "A0"
    assert item["causer_id"] == ada.id

    # Ada's own: her sign-in and her projects, nobody else's.
    own = await client.get(MINE, params={"limit": 100}, headers=ada.headers)
    assert own.status_code == 200, own.text
    assert {item["causer_id"] for item in own.json()["items"]} == {ada.id}
    assert {item["event"] for item in own.json()["items"]} == {"signed_in", "created"}


async def test_the_activity_endpoints_refuse_who_may_not_and_what_is_not_valid(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")

    assert_error(await client.get(ACTIVITY, headers=ada.headers), 403, "permission_denied")
    assert (await client.get(ACTIVITY)).status_code == 401
    assert (await client.get(MINE)).status_code == 401
    for params in (
        {"subject_id": "0"},
        {"subject_id": "abc"},
        {"causer_id": str(2**63)},
        {"log_name": "x" * 65},
        {"event": ""},
        {"subject_type": "projects\x00"},
        {"log_name": "' OR 1=1 --"},
        {"limit": "0"},
        {"limit": "101"},
    ):
        answer = await client.get(ACTIVITY, params=params, headers=boss.headers)
        assert answer.status_code == 422, (params, answer.text)
    for cursor in ("not-a-cursor", "WzBd", "WyJ4Il0", "W10"):
        assert_error(
            await client.get(ACTIVITY, params={"cursor": cursor}, headers=boss.headers),
            400,
            "invalid_cursor",
        )
        assert_error(
            await client.get(MINE, params={"cursor": cursor}, headers=ada.headers),
            400,
            "invalid_cursor",
        )


async def test_a_value_set_while_unloaded_is_logged_without_an_old_value_it_never_knew(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    async with app.state.databases.app.sessions() as app_db:
        project = Project(owner_id=1, name="Garden", description="Roses")
        app_db.add(project)
        await app_db.commit()
    async with transaction(app.state.databases, "app") as app_db:
        project = await app_db.get_one(Project, project.id)
        app_db.expire(project, ["name"])
        project.name = "Orchard"
        project.description = None

    await app.state.outbox.relay(older_than=0)
    (update,) = await entries(app, event="updated")
    assert update["properties"] == {
        "old": {"description": "Roses"},
        "attributes": {"name": "Orchard", "description": None},
    }
