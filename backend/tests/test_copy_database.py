"""`copy-database`, run as an operator runs it, from each backend to another one.

The source is the suite's backend; the target is the next backend selected, in the order
SQLite -> PostgreSQL -> MariaDB -> SQLite (the same backend when only one is selected).
"""

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from app import models
from app.core.config import Settings
from tests.accounts import API
from tests.conftest import (
    SELECTED,
    Backend,
    make_settings,
    migrate,
    open_server,
    run_cli,
    url_string,
)
from tests.moving import (
    CACHE_KEYS,
    add_cache_entries,
    add_projects,
    count,
    engine_on,
    fill,
    filled,
    migrated,
    rows_of,
    serving_app,
    signed_in_headers,
    start_cli,
    tables_in,
)

ORDER = ["sqlite", "postgresql", "mariadb"]
APP_TABLES = set(models.APP.tables) | {"alembic_version_app"}
AUTH_TABLES = set(models.AUTH.tables) | {"alembic_version_auth"}
BULK = 20_000


@pytest.fixture(scope="session")
async def target_backend(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    following = [
        name for name in ORDER[ORDER.index(backend.name) + 1 :] + ORDER if name in SELECTED
    ]
    if following[0] == backend.name:
        yield backend
        return
    server = await open_server(following[0], tmp_path_factory)
    yield server
    for database in server.created:
        await server.drop_database(database)


async def copy(settings: Settings, name: str, target: URL, *options: str) -> str:
    done = await run_cli(settings, "copy-database", name, "--to", url_string(target), *options)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


async def interrupted_copy(settings: Settings, target: URL, log: Path) -> int:
    """Start copying the app database in batches of 100 and kill the process (SIGKILL)
    once the target holds a tenth of the projects; return how many it holds then."""
    total = await count(settings.resolved_database_url("app"), "projects")
    process = start_cli(
        settings, log, "copy-database", "app", "--to", url_string(target), "--batch-size", "100"
    )
    try:
        for _ in range(3000):
            if not process.running():
                pytest.fail(f"the copy ended before it was killed: {process.output()}")
            try:
                copied = await count(target, "projects")
            except DBAPIError:  # the copy has not made the table yet
                copied = 0
            if copied >= total // 10:
                break
            await asyncio.sleep(0.02)
    finally:
        process.kill()  # SIGKILL: no handler runs, no connection is closed politely
        await process.finished()
    stopped_at = await count(target, "projects")
    assert 0 < stopped_at < total, "the copy was not killed in the middle of the table"
    return stopped_at


async def rename_first_project(url: URL, name: str) -> None:
    # Plain SQL: through the model's table, updated_at would change too.
    async with engine_on(url) as engine, engine.begin() as connection:
        await connection.execute(
            text("UPDATE projects SET name = :name WHERE id = 1"), {"name": name}
        )


async def test_a_copy_holds_every_row_and_serves_the_same_people(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, target_backend: Backend
) -> None:
    await fill(client, app)
    await add_cache_entries(app.state.databases["auth"].engine)
    sources: dict[models.Migrated, URL] = {
        name: settings.resolved_database_url(name) for name in ("auth", "app")
    }
    before = {name: await rows_of(url, models.METADATA[name]) for name, url in sources.items()}
    targets = {name: await target_backend.create_database(f"copy_{name}") for name in sources}

    for name, target in targets.items():
        output = await copy(settings, name, target)
        assert f"creating the {name} tables in the target" in output
        assert "done: every table matches the source" in output

    assert {row[0] for row in before["auth"]["cache"]} >= set(CACHE_KEYS)
    assert await rows_of(targets["auth"], models.AUTH) == before["auth"]
    assert await rows_of(targets["app"], models.APP) == before["app"]
    assert await tables_in(targets["app"]) == APP_TABLES  # the progress table is gone
    assert all(before["app"].values())
    assert len(before["auth"]["users"]) == 3
    copied = make_settings(
        auth_database_url=url_string(targets["auth"]), app_database_url=url_string(targets["app"])
    )
    async with serving_app(copied) as (_, http):
        headers = await signed_in_headers(http, "ada@example.com")
        listed = (await http.get(f"{API}/projects", headers=headers)).json()["items"]
        assert sorted(project["name"] for project in listed) == ["Archive", "Café ☕ relaunch"]
        orders = (await http.get(f"{API}/orders", headers=headers)).json()["items"]
        assert sorted(order["total"] for order in orders) == ["13.00", "1999.99"]
        made = await http.post(f"{API}/projects", json={"name": "new"}, headers=headers)
        assert made.status_code == 201, made.text  # the ids handed out follow the copied ones
        assert made.json()["id"] > max(row[0] for row in before["app"]["projects"])


async def test_an_interrupted_copy_continues_where_it_stopped(
    client: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    target_backend: Backend,
    tmp_path: Path,
) -> None:
    await fill(client, app)
    await add_projects(app.state.databases.app.engine, BULK)
    target = await target_backend.create_database("copy_killed_app")

    stopped_at = await interrupted_copy(settings, target, tmp_path / "copy.log")
    output = await copy(settings, "app", target)

    total = BULK + 3
    assert "continuing the unfinished copy" in output
    assert f"projects: {total:,} rows copied, {stopped_at:,} by an earlier run" in output
    assert f"verified projects: {total:,} rows" in output
    assert await rows_of(target, models.APP) == await rows_of(
        settings.resolved_database_url("app"), models.APP
    )
    assert await tables_in(target) == APP_TABLES


async def test_a_target_changed_behind_the_copy_fails_verification_and_keeps_the_source(
    backend: Backend, target_backend: Backend, tmp_path: Path
) -> None:
    source = await filled(backend, "copy_tampered", single=True)
    async with engine_on(source.resolved_database_url("app")) as engine:
        await add_projects(engine, BULK)
    target = await target_backend.create_database("copy_tampered_app")
    await interrupted_copy(source, target, tmp_path / "copy.log")
    await rename_first_project(target, "tampered")

    refused = await run_cli(
        source, "copy-database", "app", "--to", url_string(target), "--drop-source"
    )

    assert refused.returncode == 1
    assert "verification failed: projects: as many rows, different checksums" in refused.stderr
    assert "Traceback" not in refused.stderr
    shared = source.resolved_database_url("app")
    assert await tables_in(shared) == APP_TABLES | AUTH_TABLES
    await rename_first_project(target, "Café ☕ relaunch")
    output = await copy(source, "app", target, "--drop-source")
    assert "the source's tables are dropped" in output
    assert await tables_in(shared) == AUTH_TABLES


async def test_splitting_a_single_url_deployment_loses_no_row(
    backend: Backend, target_backend: Backend
) -> None:
    """The README's procedure: copy, switch the URLs, drop the old tables."""
    single = await filled(backend, "copy_split", single=True)
    shared = single.resolved_database_url("app")
    auth_rows = await rows_of(shared, models.AUTH)
    app_rows = await rows_of(shared, models.APP)
    target = await target_backend.create_database("copy_split_app")

    await copy(single, "app", target)
    split = make_settings(database_url=url_string(shared), app_database_url=url_string(target))
    output = await copy(single, "app", target, "--drop-source")  # still with the old URL

    assert "the target already holds an exact copy: nothing to copy" in output
    assert await tables_in(shared) == AUTH_TABLES
    assert await rows_of(shared, models.AUTH) == auth_rows
    assert await rows_of(target, models.APP) == app_rows
    async with serving_app(split) as (_, http):
        headers = await signed_in_headers(http, "bob@example.com")
        listed = (await http.get(f"{API}/projects", headers=headers)).json()["items"]
        assert [project["name"] for project in listed] == ["Bob's garden"]
        products = (await http.get(f"{API}/products", headers=headers)).json()["items"]
        item = {"product_id": products[0]["id"], "quantity": 1}
        ordered = await http.post(f"{API}/orders", json={"items": [item]}, headers=headers)
        assert ordered.status_code == 201, ordered.text


async def test_a_target_holding_other_rows_is_refused_and_left_alone(
    backend: Backend, target_backend: Backend
) -> None:
    source = await filled(backend, "copy_refused")
    target = await target_backend.create_database("copy_refused_target")
    await migrate("app", target)
    async with engine_on(target) as engine:
        await add_projects(engine, 1)
    before = await rows_of(target, models.APP)

    refused = await run_cli(source, "copy-database", "app", "--to", url_string(target))

    assert refused.returncode == 1
    assert "the target already holds app tables that differ from the source" in refused.stderr
    assert "projects: 3 rows in the source, 1 in the target" in refused.stderr
    assert await rows_of(target, models.APP) == before


async def test_copying_onto_the_source_itself_is_refused_and_drops_nothing(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = await migrated(backend, "copy_itself")
    app_url = source.resolved_database_url("app")
    if backend.is_sqlite:  # another name for the same file
        alias = tmp_path_factory.mktemp("alias") / "same.db"
        alias.symlink_to(app_url.database or "")
        same = app_url.set(database=str(alias))
    else:
        same = app_url.set(host="localhost" if app_url.host == "127.0.0.1" else app_url.host)

    refused = await run_cli(
        source, "copy-database", "app", "--to", url_string(same), "--drop-source"
    )

    assert refused.returncode == 1
    assert "the target is the source database itself" in refused.stderr
    assert await tables_in(app_url) == APP_TABLES


async def test_a_source_at_an_unknown_revision_is_refused(backend: Backend) -> None:
    source = await migrated(backend, "copy_unknown")
    app_url = source.resolved_database_url("app")
    async with engine_on(app_url) as engine, engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version_app SET version_num = 'app_9999'"))
    target = await backend.create_database("copy_unknown_target")

    refused = await run_cli(source, "copy-database", "app", "--to", url_string(target))

    assert refused.returncode == 1
    assert "the source is at revision app_9999, which this code does not know" in refused.stderr
    assert await tables_in(target) == set()


async def test_a_bad_or_unreachable_target_is_refused_with_a_message(settings: Settings) -> None:
    refused = await run_cli(settings, "copy-database", "app", "--to", "oracle://db/x")

    assert refused.returncode == 2
    assert "--to uses the unsupported scheme 'oracle'" in refused.stderr
    nobody = "postgresql://postgres:a-password@127.0.0.1:1/nothing"
    unreachable = await run_cli(settings, "copy-database", "app", "--to", nobody)
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("error: ")
    assert "Traceback" not in unreachable.stderr
    assert "a-password" not in unreachable.stdout + unreachable.stderr


async def test_a_dry_run_counts_the_rows_and_writes_nothing(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, target_backend: Backend
) -> None:
    await fill(client, app)
    target = await target_backend.create_database("copy_dry_app")

    output = await copy(settings, "app", target, "--dry-run", "--drop-source")

    assert "target: no app tables yet" in output
    assert "  projects: 3 rows" in output
    assert "  order_items: 4 rows" in output
    assert "then, once verified, the source's app tables would be dropped" in output
    assert "nothing was written" in output
    if not target_backend.is_sqlite:
        assert await tables_in(target) == set()
    else:
        assert not os.path.exists(target.database or "")
    assert await tables_in(settings.resolved_database_url("app")) == APP_TABLES
