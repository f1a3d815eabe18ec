"""Liveness, readiness, and what requests get while one database is down."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import URL

from app.core.config import DatabaseName, Settings
from app.main import create_app
from tests.conftest import Backend, client_for, empty_tables, make_settings, running, url_string
from tests.probes import with_probes
from tests.proxy import TcpProxy


async def test_live_answers_without_a_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_both_databases_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["mode"] == "separate"
    assert set(body["databases"]) == {"auth", "app"}
    for status in body["databases"].values():
        assert status["status"] == "up"
        assert status["latency_ms"] >= 0


@pytest.fixture
async def proxied(
    backend: Backend, settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[TcpProxy, httpx.AsyncClient]]:
    """The API with one database (the test's parameter) reached through a proxy."""
    if backend.is_sqlite:
        pytest.skip("an embedded SQLite file has no server to lose")
    database: DatabaseName = request.param
    real: URL = settings.resolved_database_url(database)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 0)
    await proxy.start()
    urls = {
        f"{name}_database_url": url_string(settings.resolved_database_url(name))
        for name in ("auth", "app")
    }
    urls[f"{database}_database_url"] = url_string(real.set(host="127.0.0.1", port=proxy.port))
    # Short timeouts: an outage must be answered quickly, never hang the caller.
    changed = make_settings(**urls, db_pool_timeout=2.0, db_connect_timeout=2.0)
    async with running(with_probes(create_app(changed))) as app, client_for(app) as http:
        yield proxy, http
        await proxy.start()  # a failed test may have left it down
        await empty_tables(app)
    await proxy.stop()


@pytest.mark.parametrize("proxied", ["app"], indirect=True)
async def test_app_database_outage_and_recovery(
    proxied: tuple[TcpProxy, httpx.AsyncClient],
) -> None:
    proxy, http = proxied
    assert (await http.get("/health/ready")).status_code == 200
    assert (
        await http.post("/probe/projects", json={"owner_id": 1, "name": "a"})
    ).status_code == 201

    await proxy.stop()

    ready = await http.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["detail"] == "database unavailable: app"
    assert ready.json()["databases"]["app"]["status"] == "down"
    assert ready.json()["databases"]["auth"]["status"] == "up"

    write = await http.post("/probe/projects", json={"owner_id": 1, "name": "b"})
    assert write.status_code == 503
    assert write.json() == {
        "detail": "The app database is unavailable",
        "code": "database_unavailable",
        "database": "app",
    }
    assert write.headers["retry-after"] == "1"
    both = await http.get("/probe/both")
    assert both.status_code == 503
    assert both.json()["database"] == "app"
    assert (await http.get("/probe/auth-only")).status_code == 200

    await proxy.start()

    assert (await http.get("/health/ready")).status_code == 200
    assert (
        await http.post("/probe/projects", json={"owner_id": 1, "name": "c"})
    ).status_code == 201
    assert (await http.get("/probe/app-only")).json() == {"projects": 2}


@pytest.mark.parametrize("proxied", ["auth"], indirect=True)
async def test_auth_database_outage_and_recovery(
    proxied: tuple[TcpProxy, httpx.AsyncClient],
) -> None:
    proxy, http = proxied

    await proxy.stop()

    ready = await http.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["detail"] == "database unavailable: auth"
    both = await http.get("/probe/both")
    assert both.status_code == 503
    assert both.json()["database"] == "auth"
    assert (await http.get("/probe/app-only")).status_code == 200

    await proxy.start()

    assert (await http.get("/probe/both")).status_code == 200
