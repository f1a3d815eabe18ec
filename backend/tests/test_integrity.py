"""`integrity_session`: commit, rollback, outage, read-only refusal and retries after a
lost deadlock, on real databases."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.db.integrity import integrity_session
from app.core.db.registry import Databases, create_databases
from app.core.db.sessions import on_commit
from app.core.errors import DatabaseUnavailable
from app.essentials.activity.recording import UNAUDITED
from app.projects.models import Project
from tests.conftest import Backend, make_settings, url_string


@pytest.fixture
async def databases(settings: Settings) -> AsyncIterator[Databases]:
    registry = create_databases(settings)
    yield registry
    async with registry.app.engine.begin() as connection:
        await connection.execute(delete(Project))
    await registry.dispose()


async def project_names(databases: Databases) -> list[str]:
    async with databases.app.sessions() as session:
        return list(await session.scalars(select(Project.name).order_by(Project.id)))


async def test_a_session_that_ends_well_is_committed_and_logged(
    databases: Databases, caplog: pytest.LogCaptureFixture
) -> None:
    committed: list[int] = []
    with caplog.at_level(logging.INFO, logger="app.core.db.integrity"):
        async with integrity_session(databases, "app", "seed a project") as app_db:
            app_db.add(Project(owner_id=1, name="Apollo"))

            async def count() -> None:
                committed.append(len(await project_names(databases)))

            on_commit(app_db, count)

    assert await project_names(databases) == ["Apollo"]
    assert committed == [1]  # the after-commit callback saw the row
    (record,) = [r for r in caplog.records if r.name == "app.core.db.integrity"]
    assert record.getMessage() == "seed a project on app: committed"
    assert record.__dict__["purpose"] == "seed a project"
    assert record.__dict__["database"] == "app"
    assert record.__dict__["duration_ms"] >= 0


async def test_an_exception_rolls_back_and_goes_on_as_it_was(
    databases: Databases, caplog: pytest.LogCaptureFixture
) -> None:
    async def seed_then_fail() -> None:
        async with integrity_session(databases, "app", "seed a project") as app_db:
            app_db.add(Project(owner_id=1, name="Apollo"))
            await app_db.flush()
            raise ValueError("changed my mind")

    with pytest.raises(ValueError, match="changed my mind"):
        await seed_then_fail()

    assert await project_names(databases) == []
    assert "seed a project on app: rolled back (ValueError)" in caplog.text


async def test_a_failed_commit_is_raised_even_though_the_body_raised_nothing(
    databases: Databases,
) -> None:
    def die(_connection: object) -> None:
        raise ConnectionResetError("injected: the connection died during COMMIT")

    async def seed() -> None:
        async with integrity_session(databases, "app", "seed a project") as app_db:
            app_db.add(Project(owner_id=1, name="Apollo"))

    event.listen(databases.app.engine.sync_engine, "commit", die)
    try:
        with pytest.raises(DatabaseUnavailable) as refused:
            await seed()
    finally:
        event.remove(databases.app.engine.sync_engine, "commit", die)

    assert refused.value.extra == {"database": "app"}
    assert await project_names(databases) == []


async def test_an_unreachable_server_is_the_same_503_error_requests_get(
    backend: Backend, settings: Settings
) -> None:
    if backend.is_sqlite:
        pytest.skip("an embedded SQLite file has no server to lose")
    nowhere = make_url(url_string(settings.resolved_database_url("app"))).set(port=1)
    unreachable = create_databases(
        make_settings(
            auth_database_url=url_string(settings.resolved_database_url("auth")),
            app_database_url=url_string(nowhere),
            db_connect_timeout=2.0,
        )
    )

    async def count() -> None:
        async with integrity_session(unreachable, "app", "count projects") as app_db:
            await app_db.scalar(select(func.count()).select_from(Project))

    try:
        with pytest.raises(DatabaseUnavailable):
            await count()
    finally:
        await unreachable.dispose()


async def test_a_transaction_that_loses_a_deadlock_runs_again(
    backend: Backend, databases: Databases
) -> None:
    if backend.is_sqlite:
        pytest.skip("SQLite takes the write lock at BEGIN: two writers queue, never deadlock")
    async with databases.app.sessions() as session:
        first, second = Project(owner_id=1, name="first"), Project(owner_id=1, name="second")
        session.add_all([first, second])
        await session.commit()
    both_hold_one = asyncio.Barrier(2)
    runs: dict[str, int] = {"forward": 0, "backward": 0}

    async def rename(label: str, order: list[int]) -> None:
        async for attempt in integrity_session(databases, "app", f"rename {label}", attempts=3):
            async with attempt as app_db:
                runs[label] += 1
                for position, project_id in enumerate(order):
                    await app_db.execute(
                        update(Project)
                        .where(Project.id == project_id)
                        .values(name=label)
                        .execution_options(**UNAUDITED)  # row locks in a chosen order
                    )
                    if position == 0 and runs[label] == 1:
                        # Each holds its first row and reaches for the other's: a deadlock.
                        await both_hold_one.wait()

    await asyncio.gather(
        rename("forward", [first.id, second.id]), rename("backward", [second.id, first.id])
    )

    # The database chose a loser; its transaction ran again and went through after the
    # winner, so both rows carry the loser's name.
    assert sorted(runs.values()) == [1, 2]
    loser = max(runs, key=lambda label: runs[label])
    assert await project_names(databases) == [loser, loser]
