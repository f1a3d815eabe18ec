"""GET /metrics: requests by route template and status, and each connection pool's figures."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app.core.config import Settings
from app.main import create_app
from tests.accounts import API, signed_up
from tests.conftest import client_for, empty_tables, make_settings, running

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """An app of its own, so that its counters start at zero; without the principals in
    memory, whose change follower would hold an auth connection now and then."""
    quiet = settings.model_copy(update={"principal_cache": False})
    async with running(create_app(quiet)) as app, client_for(app) as http:
        yield http, app
        await empty_tables(app)


async def test_requests_are_counted_by_route_template_and_status(
    served: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, _ = served
    ada = await signed_up(client, "ada@example.com")
    created = await client.post(f"{API}/projects", json={"name": "Apollo"}, headers=ada.headers)
    project_id = created.json()["id"]

    await client.get(f"{API}/projects/{project_id}", headers=ada.headers)
    await client.get(f"{API}/projects/{project_id}", headers=ada.headers)
    await client.get(f"{API}/projects/{project_id + 1}", headers=ada.headers)
    await client.get("/no/such/page/1")
    await client.get("/no/such/page/2")
    await scrape(client)
    samples = await scrape(client)

    project = {"method": "GET", "route": "/api/v1/projects/{project_id}"}
    assert value(samples, "http_requests_total", **project, status="200") == 2
    assert value(samples, "http_requests_total", **project, status="404") == 1
    assert value(samples, "http_request_duration_seconds_count", **project, status="200") == 2
    duration = value(samples, "http_request_duration_seconds_sum", **project, status="200")
    assert duration is not None
    assert duration > 0
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(samples, "http_requests_total", **unmatched) == 2
    scrapes = {"method": "GET", "route": "/metrics", "status": "200"}
    assert value(samples, "http_requests_total", **scrapes) == 1
    routes = {dict(labels).get("route") for _, labels in samples}
    assert not any(route and route.startswith("/no/such") for route in routes)
    assert f"{API}/projects/{project_id}" not in routes


async def test_metrics_stay_out_of_the_api_docs(served: tuple[httpx.AsyncClient, FastAPI]) -> None:
    client, _ = served

    schema = (await client.get("/openapi.json")).json()

    assert "/metrics" not in schema["paths"]


async def test_each_pool_reports_its_size_and_connections_in_use(
    served: tuple[httpx.AsyncClient, FastAPI], settings: Settings
) -> None:
    client, app = served

    async with app.state.databases.app.engine.connect() as held:
        await held.execute(text("SELECT 1"))
        samples = await scrape(client)

    assert value(samples, "db_pool_size", database="auth") == settings.auth_db_pool_size
    assert value(samples, "db_pool_size", database="app") == settings.app_db_pool_size
    assert value(samples, "db_pool_max_overflow", database="app") == settings.db_max_overflow
    assert value(samples, "db_pool_checked_out", database="app") == 1
    assert value(samples, "db_pool_checked_out", database="auth") == 0
    assert value(samples, "db_pool_overflow", database="app") == 0
    assert value(samples, "db_pool_timeouts_total", database="app") == 0
    assert value(samples, "db_pool_idle", database="shared") is None


async def test_a_busy_pool_counts_its_waits_and_timeouts(settings: Settings) -> None:
    tight = settings.model_copy(
        update={"app_db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.3}
    )
    async with running(create_app(tight)) as app, client_for(app) as client:
        try:
            ada = await signed_up(client, "ada@example.com")
            async with app.state.databases.app.engine.connect() as held:
                await held.execute(text("SELECT 1"))
                starved = await client.get(f"{API}/projects", headers=ada.headers)
                samples = await scrape(client)
        finally:
            await empty_tables(app)

    assert starved.status_code == 503
    assert starved.json()["database"] == "app"
    assert value(samples, "db_pool_timeouts_total", database="app") == 1
    assert value(samples, "db_pool_waits_total", database="app") == 1
    waited = value(samples, "db_pool_wait_seconds_total", database="app")
    assert waited is not None
    assert waited >= 0.3
    assert value(samples, "db_pool_waits_total", database="auth") == 0
    assert value(
        samples, "http_requests_total", method="GET", route="/api/v1/projects", status="503"
    )


async def test_one_engine_serving_both_databases_is_reported_once_as_shared(
    tmp_path: Path,
) -> None:
    single = make_settings(database_url=f"sqlite:///{tmp_path / 'both.db'}")
    async with running(create_app(single)) as app, client_for(app) as client:
        samples = await scrape(client)

    pool_sizes = {
        dict(labels)["database"]: sample
        for (name, labels), sample in samples.items()
        if name == "db_pool_size"
    }
    assert pool_sizes == {"shared": single.auth_db_pool_size + single.app_db_pool_size}


async def test_each_app_counts_only_its_own_requests(tmp_path: Path) -> None:
    settings = make_settings(data_dir=str(tmp_path))
    async with (
        running(create_app(settings)) as first,
        running(create_app(settings)) as second,
        client_for(first) as first_client,
        client_for(second) as second_client,
    ):
        await first_client.get("/health/live")
        await first_client.get("/health/live")
        first_samples = await scrape(first_client)
        second_samples = await scrape(second_client)

    live = {"method": "GET", "route": "/health/live", "status": "200"}
    assert value(first_samples, "http_requests_total", **live) == 2
    assert value(second_samples, "http_requests_total", **live) is None


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    settings = make_settings(data_dir=str(tmp_path), metrics_enabled=False)
    async with running(create_app(settings)) as app, client_for(app) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/health/live")).status_code == 200
