"""The session dependencies: which database a write lands in, commit, rollback, errors,
and the work that waits for the commit (`on_commit`)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.core.db import liveness
from app.core.db.sessions import on_commit, transaction
from app.main import create_app
from app.projects.models import Project
from tests.accounts import API, signed_up
from tests.conftest import Backend, client_for, empty_tables, make_settings, running, url_string
from tests.probes import COMMITTED, with_probes
from tests.proxy import TcpProxy


@pytest.fixture(scope="module")
async def probe_app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running(with_probes(create_app(settings))) as app:
        yield app


@pytest.fixture
async def probe(probe_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(probe_app) as http:
        yield http
    await empty_tables(probe_app)


async def count_projects(url: URL) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(Project)) or 0)
    finally:
        await engine.dispose()


async def test_a_row_written_through_get_app_db_lands_in_the_app_database(
    probe: httpx.AsyncClient, settings: Settings, backend: Backend
) -> None:
    response = await probe.post("/probe/projects", json={"owner_id": 7, "name": "Apollo"})

    assert response.status_code == 201
    assert await count_projects(settings.resolved_database_url("app")) == 1
    auth_tables = await backend.table_names(settings.resolved_database_url("auth"))
    assert "projects" not in auth_tables
    assert "users" in auth_tables


async def test_an_error_after_a_write_rolls_the_write_back(
    probe: httpx.AsyncClient, settings: Settings
) -> None:
    response = await probe.post("/probe/projects/then-fail", json={"owner_id": 7, "name": "X"})

    assert response.status_code == 409
    assert response.json() == {"detail": "refused after the write", "code": "conflict"}
    assert await count_projects(settings.resolved_database_url("app")) == 0


async def test_after_commit_callbacks_run_once_the_data_is_committed_and_never_on_rollback(
    probe: httpx.AsyncClient,
) -> None:
    COMMITTED.clear()
    project = {"owner_id": 7, "name": "Apollo"}

    kept = await probe.post("/probe/projects/on-commit", params={"fail": False}, json=project)
    refused = await probe.post(
        "/probe/projects/on-commit", params={"fail": True}, json={**project, "name": "Gemini"}
    )

    assert kept.status_code == 201
    assert refused.status_code == 409
    # The callback ran after the commit (it saw the row), and only for the kept write.
    assert COMMITTED == ["Apollo:1"]


async def test_a_unique_violation_is_a_409_json_answer(probe: httpx.AsyncClient) -> None:
    first = await probe.post("/probe/users", params={"email": "ada@example.com"})
    second = await probe.post("/probe/users", params={"email": "ada@example.com"})

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json() == {"detail": "Conflicts with existing data", "code": "conflict"}
    assert (await probe.get("/probe/auth-only")).json() == {"users": 1}


async def test_timestamps_round_trip_as_aware_utc_with_microseconds(
    probe: httpx.AsyncClient, probe_app: FastAPI
) -> None:
    before = datetime.now(UTC)
    created = (await probe.post("/probe/projects", json={"owner_id": 1, "name": "T"})).json()

    async with probe_app.state.databases.app.sessions() as session:
        project = await session.get(Project, created["id"])
    assert project is not None
    assert project.created_at.tzinfo is not None
    assert project.created_at.utcoffset() == timedelta(0)
    assert project.created_at.isoformat() == created["created_at"]
    assert before <= project.created_at <= datetime.now(UTC)


async def test_an_unexpected_error_is_a_500_json_without_a_trace(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/probe/boom")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "code": "internal_error"}
    assert "hunter2" not in response.text


async def test_validation_errors_do_not_echo_the_input(probe: httpx.AsyncClient) -> None:
    response = await probe.post("/probe/projects", json={"owner_id": "hunter2-secret", "name": "X"})

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["loc"] == ["body", "owner_id"]
    assert "hunter2" not in response.text


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/nowhere", 404, "not_found"), ("DELETE", "/health/live", 405, "method_not_allowed")],
)
async def test_http_errors_are_json(
    probe: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await probe.request(method, path)

    assert response.status_code == status
    assert response.json()["code"] == code


async def test_malformed_json_is_a_422_json_answer(probe: httpx.AsyncClient) -> None:
    response = await probe.post(
        "/probe/projects", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(
    probe_app: FastAPI, backend: Backend
) -> None:
    if not backend.is_sqlite:
        pytest.skip("SQLite pragmas")
    async with probe_app.state.databases.auth.engine.connect() as connection:
        assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
        assert await connection.scalar(text("PRAGMA busy_timeout")) == 5000


async def test_connections_the_server_dropped_are_replaced_before_use(
    settings: Settings, backend: Backend
) -> None:
    """The check at checkout finds a pooled connection the server has closed (a restart,
    an idle timeout, an admin's kill) and opens a new one: the request succeeds instead
    of failing with the dead connection."""
    if backend.admin_url is None:
        pytest.skip("SQLite has no server to drop a connection")
    own_id = "SELECT pg_backend_pid()" if backend.name == "postgresql" else "SELECT CONNECTION_ID()"
    # PostgreSQL's kill returns once the backend has gone (the timeout in milliseconds);
    # MariaDB's KILL shuts the connection's socket down before it returns.
    kill = "SELECT pg_terminate_backend(:id, 5000)" if backend.name == "postgresql" else "KILL :id"
    admin = create_async_engine(backend.admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with running(create_app(settings)) as app, client_for(app) as http:
            ada = await signed_up(http, "ada@example.com")
            assert (await http.get(f"{API}/projects", headers=ada.headers)).status_code == 200
            databases = app.state.databases
            killed: dict[str, set[int]] = {}
            for database in (databases.auth, databases.app):
                # Every connection the pool holds (one per database used so far, or two
                # when the credential follower polled while a request ran).
                pooled = database.engine.pool.checkedin()
                assert pooled >= 1
                async with AsyncExitStack() as stack:
                    connections = [
                        await stack.enter_async_context(database.engine.connect())
                        for _ in range(pooled)
                    ]
                    killed[database.name] = {
                        await connection.scalar(text(own_id)) for connection in connections
                    }
            async with admin.connect() as connection:
                for connection_ids in killed.values():
                    for connection_id in connection_ids:
                        await connection.execute(text(kill), {"id": connection_id})

            response = await http.get(f"{API}/projects", headers=ada.headers)

            assert response.status_code == 200, response.text
            for database in (databases.auth, databases.app):
                async with database.engine.connect() as connection:
                    assert await connection.scalar(text(own_id)) not in killed[database.name]
        await empty_tables(app)
    finally:
        await admin.dispose()


@pytest.fixture
async def app_behind_proxy(
    backend: Backend, settings: Settings
) -> AsyncIterator[tuple[TcpProxy, FastAPI, httpx.AsyncClient]]:
    """The service with its app database reached through a TCP proxy."""
    if backend.admin_url is None:
        pytest.skip("SQLite has no server to drop a connection")
    real = settings.resolved_database_url("app")
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 0)
    await proxy.start()
    changed = make_settings(
        auth_database_url=url_string(settings.resolved_database_url("auth")),
        app_database_url=url_string(real.set(host="127.0.0.1", port=proxy.port)),
        db_connect_timeout=1.0,
    )
    async with running(create_app(changed)) as app, client_for(app) as http:
        yield proxy, app, http
        await empty_tables(app)
    await proxy.stop()


async def test_a_checkout_costs_no_round_trip_for_a_connection_used_a_moment_ago(
    app_behind_proxy: tuple[TcpProxy, FastAPI, httpx.AsyncClient],
) -> None:
    proxy, app, _ = app_behind_proxy
    engine = app.state.databases.app.engine
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    sent = proxy.bytes_to_server

    async with engine.connect():
        # A ping would have waited for its answer, so its bytes would be counted by now.
        assert proxy.bytes_to_server == sent


async def test_a_connection_dropped_silently_is_pinged_after_idling_and_replaced(
    app_behind_proxy: tuple[TcpProxy, FastAPI, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No close reaches the client when a firewall forgets a connection: the socket looks
    fine. A connection idle longer than PING_AFTER_IDLE is pinged at checkout; this one
    does not answer, so the pool opens a new one and the request succeeds."""
    proxy, _, http = app_behind_proxy
    monkeypatch.setattr(liveness, "PING_AFTER_IDLE", 0.2)
    ada = await signed_up(http, "ada@example.com")
    assert (await http.get(f"{API}/projects", headers=ada.headers)).status_code == 200

    proxy.freeze()
    await asyncio.sleep(0.3)
    async with asyncio.timeout(10):  # without the ping, the request would hang
        response = await http.get(f"{API}/projects", headers=ada.headers)

    assert response.status_code == 200, response.text


async def test_a_connection_that_dies_at_first_use_is_retried_once_by_the_credential_check(
    backend: Backend, settings: Settings
) -> None:
    """A kill that reaches the client only after the checkout: the credential check's read
    fails on the dead connection, SQLAlchemy discards the pool, and the read, idempotent,
    runs once more on a new connection."""
    if backend.admin_url is None:
        pytest.skip("SQLite has no server to drop a connection")
    real = settings.resolved_database_url("auth")
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 0)
    await proxy.start()
    changed = make_settings(
        auth_database_url=url_string(real.set(host="127.0.0.1", port=proxy.port)),
        app_database_url=url_string(settings.resolved_database_url("app")),
        principal_cache=False,  # every request reads the auth database: what is tried here
    )
    try:
        async with running(create_app(changed)) as app, client_for(app) as http:
            ada = await signed_up(http, "ada@example.com")
            assert (await http.get(f"{API}/users/me", headers=ada.headers)).status_code == 200

            proxy.break_on_next_use()
            response = await http.get(f"{API}/users/me", headers=ada.headers)

            assert response.status_code == 200, response.text
            await empty_tables(app)
    finally:
        await proxy.stop()


# --- after the commit ----------------------------------------------------------------------


async def test_on_commit_runs_after_the_commit_and_never_after_a_rollback(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    databases = app.state.databases
    seen: list[str] = []

    async def record_committed() -> None:  # what another connection sees by then
        async with databases.app.autocommit() as connection:
            names = await connection.scalars(select(Project.name).order_by(Project.id))
            seen.append(",".join(names))

    async def fail() -> None:
        raise RuntimeError("the callback broke")

    async with transaction(databases, "app") as app_db:
        app_db.add(Project(owner_id=1, name="kept"))
        on_commit(app_db, fail)
        on_commit(app_db, record_committed)
        await app_db.flush()
        assert seen == []

    async def write_then_fail() -> None:
        async with transaction(databases, "app") as app_db:
            app_db.add(Project(owner_id=1, name="dropped"))
            on_commit(app_db, record_committed)
            await app_db.flush()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await write_then_fail()

    assert seen == ["kept"]  # after the commit; the failing callback did not stop it
    assert "an after-commit callback failed" in caplog.text
    assert await count_projects(app.state.settings.resolved_database_url("app")) == 1
