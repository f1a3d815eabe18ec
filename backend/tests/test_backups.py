"""`backup` and `restore` on each backend, run as an operator runs them."""

import io
import json
import os
import shutil
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from app import models
from app.core.config import Settings
from app.core.db.revisions import head
from app.core.db.transfer.backups import read_manifest
from tests.accounts import API, an_admin, signed_up
from tests.conftest import Backend, make_settings, migrate, run_cli, url_string
from tests.moving import (
    engine_on,
    fill,
    filled,
    migrated,
    rows_of,
    serving_app,
    signed_in_headers,
    tables_in,
)

TOOLS = {
    "sqlite": ("sqlite3 online backup API", "SQLite 3."),
    "postgresql": ("pg_dump", "pg_dump (PostgreSQL) "),
    "mariadb": ("mariadb-dump", "mariadb-dump Ver "),
}


async def backup(settings: Settings, name: str, file: Path, **environment: str) -> str:
    done = await run_cli(settings, "backup", name, "--to", str(file), **environment)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def restore(settings: Settings, name: str, file: Path, **environment: str) -> str:
    done = await run_cli(settings, "restore", name, "--from", str(file), **environment)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "as the manifest says" in done.stdout
    return done.stdout


def rewrite_manifest(source: Path, destination: Path, **changes: object) -> None:
    """A copy of a backup whose manifest says something else."""
    with tarfile.open(source, "r:gz") as original, tarfile.open(destination, "w:gz") as copy:
        for member in original.getmembers():
            content = original.extractfile(member)
            assert content is not None
            data = content.read()
            if member.name == "manifest.json":
                data = json.dumps(json.loads(data) | changes).encode()
                member.size = len(data)
            copy.addfile(member, io.BytesIO(data))


async def test_a_restore_brings_back_every_row_of_the_backup(
    backend: Backend, tmp_path: Path
) -> None:
    settings = await filled(backend, "backup_round")
    urls = {name: settings.resolved_database_url(name) for name in ("auth", "app")}
    before = {name: await rows_of(urls[name], models.METADATA[name]) for name in ("auth", "app")}
    files = {name: tmp_path / f"{name}.tar.gz" for name in ("auth", "app")}

    output = await backup(settings, "app", files["app"])
    await backup(settings, "auth", files["auth"])

    assert f"written to {files['app']}" in output
    manifest = read_manifest(files["app"])
    assert manifest.name == "app"
    assert manifest.backend == ("mysql" if backend.name == "mariadb" else backend.name)
    assert manifest.revision == head("app")
    assert manifest.tables == {
        **{table: len(rows) for table, rows in before["app"].items()},
        "alembic_version_app": 1,
    }
    assert (manifest.tool, manifest.tool_version[: len(TOOLS[backend.name][1])]) == TOOLS[
        backend.name
    ]
    assert datetime.now(UTC) - manifest.created_at < timedelta(minutes=1)
    async with serving_app(settings) as (_, http):
        ada = await signed_in_headers(http, "ada@example.com")
        first = (await http.get(f"{API}/projects", headers=ada)).json()["items"][0]
        assert (await http.delete(f"{API}/projects/{first['id']}", headers=ada)).status_code == 204
        carol = await signed_up(http, "carol@example.com")
        made = await http.post(f"{API}/projects", json={"name": "later"}, headers=carol.headers)
        assert made.status_code == 201, made.text

    restored = await restore(settings, "app", files["app"])
    await restore(settings, "auth", files["auth"])

    assert "orphan check: no orphaned rows" in restored
    assert await rows_of(urls["app"], models.APP) == before["app"]
    assert await rows_of(urls["auth"], models.AUTH) == before["auth"]
    async with serving_app(settings) as (_, http):
        ada = await signed_in_headers(http, "ada@example.com")
        made = await http.post(f"{API}/projects", json={"name": "after"}, headers=ada)
        assert made.status_code == 201, made.text  # the id counters came back too
        assert made.json()["id"] > max(row[0] for row in before["app"]["projects"])


async def test_a_backup_in_a_shared_database_holds_and_replaces_only_its_own_tables(
    backend: Backend, tmp_path: Path
) -> None:
    settings = await filled(backend, "backup_shared", single=True)
    shared = settings.resolved_database_url("app")
    app_rows = await rows_of(shared, models.APP)
    file = tmp_path / "app.tar.gz"

    await backup(settings, "app", file)
    async with serving_app(settings) as (_, http):
        carol = await signed_up(http, "carol@example.com")
        made = await http.post(f"{API}/projects", json={"name": "later"}, headers=carol.headers)
        assert made.status_code == 201, made.text
    auth_rows = await rows_of(shared, models.AUTH)
    output = await restore(settings, "app", file)

    assert set(read_manifest(file).tables) == set(models.APP.tables) | {"alembic_version_app"}
    assert await rows_of(shared, models.APP) == app_rows
    assert await rows_of(shared, models.AUTH) == auth_rows  # carol is still there
    assert "orphan check: no orphaned rows" in output


async def test_restoring_the_auth_database_older_than_the_app_database_reports_the_orphans(
    backend: Backend, tmp_path: Path
) -> None:
    settings = await migrated(backend, "backup_orphans")
    file = tmp_path / "auth.tar.gz"
    async with serving_app(settings) as (app, http):
        await an_admin(http, app)
        await backup(settings, "auth", file)
        bob = await signed_up(http, "bob@example.com")
        for name in ("one", "two"):
            made = await http.post(f"{API}/projects", json={"name": name}, headers=bob.headers)
            assert made.status_code == 201, made.text

    output = await restore(settings, "auth", file)

    assert (
        "orphan check: 2 orphaned rows (projects 2), owned by 1 users missing from the auth "
        "database; `python -m app.cli check-orphans --fix` deletes them"
    ) in output
    fixed = await run_cli(settings, "check-orphans", "--fix")
    assert "deleted 2 rows" in fixed.stdout


async def test_restoring_an_older_revision_drops_the_later_tables(
    backend: Backend, tmp_path: Path
) -> None:
    app_url = await backend.create_database("backup_older_app")
    auth_url = await backend.create_database("backup_older_auth")
    await migrate("auth", auth_url)
    await migrate("app", app_url, "app_0001")
    settings = make_settings(
        auth_database_url=url_string(auth_url), app_database_url=url_string(app_url)
    )
    async with engine_on(app_url) as engine, engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO projects (owner_id, name, created_at, updated_at) "
                "VALUES (1, 'old', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    file = tmp_path / "app.tar.gz"
    await backup(settings, "app", file)
    await migrate("app", app_url)

    output = await restore(settings, "app", file)

    assert "restored app from" in output
    assert "revision app_0001" in output
    assert f"the code's newest revision is {head('app')}: migrate it" in output
    assert "orphan check: could not run" in output
    assert await tables_in(app_url) == {"projects", "alembic_version_app"}
    await migrate("app", app_url)
    assert (await rows_of(app_url, models.APP))["products"] == []


async def test_a_backup_the_code_cannot_restore_is_refused_and_nothing_changes(
    backend: Backend, tmp_path: Path
) -> None:
    settings = await filled(backend, "backup_refused")
    file = tmp_path / "app.tar.gz"
    await backup(settings, "app", file)
    app_url = settings.resolved_database_url("app")
    async with engine_on(app_url) as engine, engine.begin() as connection:
        await connection.execute(text("DELETE FROM order_items"))
    before = await rows_of(app_url, models.APP)
    other_backend = "postgresql" if backend.name != "postgresql" else "sqlite"
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello")
    cases = {
        "app_9999": (
            "app",
            {"revision": "app_9999"},
            "at revision app_9999, which this code does not know",
        ),
        "auth": ("auth", {}, "is a backup of the app database, not of auth"),
        "backend": ("app", {"backend": other_backend}, f"was made from {other_backend}"),
    }

    for case, (name, changes, message) in cases.items():
        altered = tmp_path / f"{case}.tar.gz"
        rewrite_manifest(file, altered, **changes)
        refused = await run_cli(settings, "restore", name, "--from", str(altered))
        assert refused.returncode == 1, case
        assert message in refused.stderr, case
        assert "Traceback" not in refused.stderr
    refused = await run_cli(settings, "restore", "app", "--from", str(not_a_backup))
    assert refused.returncode == 1
    assert "is not a backup made by `backup`" in refused.stderr
    assert await rows_of(app_url, models.APP) == before


SHIM = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "$RECORD"
printf 'password in the environment: %s\\n' "${PGPASSWORD:+yes}${MYSQL_PWD:+yes}" >> "$RECORD"
exec "REAL" "$@"
"""


async def test_passwords_reach_the_tools_through_their_environment_only(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.is_sqlite:
        pytest.skip("SQLite has no password")
    password = f"pw-{os.getpid()}-Backup"
    account = f"dualbase_backup_{os.getpid()}"
    auth_url = await backend.create_database("backup_secret_auth")
    app_url = await backend.create_database("backup_secret_app")
    assert backend.admin_url is not None
    async with engine_on(backend.admin_url) as admin, admin.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if backend.name == "postgresql":
            await connection.execute(text(f"CREATE ROLE {account} LOGIN PASSWORD '{password}'"))
            for url in (auth_url, app_url):
                await connection.execute(
                    text(f'ALTER DATABASE "{url.database}" OWNER TO {account}')
                )
        else:
            await connection.execute(
                text(f"CREATE USER '{account}'@'%' IDENTIFIED BY '{password}'")
            )
            for url in (auth_url, app_url):
                await connection.execute(
                    text(f"GRANT ALL ON `{url.database}`.* TO '{account}'@'%'")
                )
    shims = tmp_path / "bin"
    shims.mkdir()
    for tool in ("pg_dump", "pg_restore", "mariadb-dump", "mariadb"):
        real = shutil.which(tool)
        assert real is not None, f"{tool} is not installed"
        (shims / tool).write_text(SHIM.replace("REAL", real))
        (shims / tool).chmod(0o755)
    record = tmp_path / "record.txt"
    environment = {"PATH": f"{shims}:{os.environ['PATH']}", "RECORD": str(record)}
    try:
        urls = {
            name: url.set(username=account, password=password)
            for name, url in (("auth", auth_url), ("app", app_url))
        }
        settings = make_settings(
            auth_database_url=url_string(urls["auth"]), app_database_url=url_string(urls["app"])
        )
        await migrate("auth", urls["auth"])
        await migrate("app", urls["app"])
        async with serving_app(settings) as (app, http):
            await fill(http, app)
        file = tmp_path / "app.tar.gz"
        done = await backup(settings, "app", file, **environment)
        done += await restore(settings, "app", file, **environment)
    finally:
        async with engine_on(backend.admin_url) as admin, admin.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for url in (auth_url, app_url):
                await backend.drop_database(url.database or "")
            user = account if backend.name == "postgresql" else f"'{account}'@'%'"
            await connection.execute(text(f"DROP USER IF EXISTS {user}"))

    calls = record.read_text()
    dump, load = (
        TOOLS[backend.name][0],
        "pg_restore" if backend.name == "postgresql" else "mariadb ",
    )
    assert dump in calls
    assert load in calls
    assert calls.count("password in the environment: yes") == 2  # the dump and the load
    assert password not in calls
    assert password not in done
