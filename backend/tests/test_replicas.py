"""Read replicas with read-your-writes, against a real PostgreSQL streaming replica that
the test makes itself: a primary cluster (initdb on a free port) and a standby made from
it with `pg_basebackup -R`.

What a client sees is the proof: with the standby's replay paused, a row written
straight on the primary is missing from a read served by the replica, and present in a
read served by the primary.
"""

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select
from tools.servers import Cluster, postgres_bin

from app.core.config import Settings, normalize_database_url
from app.core.db.reads import AppReads
from app.core.db.sessions import AppDb
from app.main import create_app
from app.projects.models import Project
from tests.accounts import API, Account, signed_up
from tests.conftest import IN_CI, SELECTED, client_for, make_settings, migrate, running

pytestmark = pytest.mark.skipif(
    "postgresql" not in SELECTED, reason="the replica tests run on PostgreSQL"
)
STICKY = 1.0


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary with the two databases, migrated, and a streaming standby of it."""
    try:
        postgres_bin()
    except SystemExit as missing:
        if IN_CI:
            raise
        pytest.skip(str(missing))
    root = Path(tempfile.mkdtemp(prefix="dualbase-replicas-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    primary = Cluster("primary", root)
    primary.create()
    standby: Cluster | None = None
    try:
        for name in ("auth", "app"):
            primary.psql(f"CREATE DATABASE {name}")
            asyncio.run(migrate(name, normalize_database_url("url", primary_url(primary, name))))
        standby = primary.standby("standby")
        yield primary, standby
    finally:
        for cluster in (standby, primary):
            if cluster is not None and cluster.running():
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def primary_url(cluster: Cluster, database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/{database}"


def replicated_settings(primary: Cluster, standby: Cluster, **extra: object) -> Settings:
    return make_settings(
        auth_database_url=primary_url(primary, "auth"),
        app_database_url=primary_url(primary, "app"),
        app_database_replica_urls=primary_url(standby, "app"),
        replica_sticky_seconds=STICKY,
        **extra,
    )


@pytest.fixture
async def service(
    clusters: tuple[Cluster, Cluster],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    primary, standby = clusters
    # Lag is measured, but this app never skips the standby for it: what a paused replay
    # does to reads is the subject here.
    settings = replicated_settings(primary, standby, replica_max_lag_seconds=3600)
    async with running(create_app(settings)) as app, client_for(app) as http:
        yield app, http
    standby.psql("SELECT pg_wal_replay_resume()")


async def caught_up(primary: Cluster, standby: Cluster) -> None:
    """Wait until the standby has replayed everything the primary wrote."""
    target = primary.psql("SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + 20
    while standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") != "t":
        assert time.monotonic() < deadline, "the standby did not catch up"
        await asyncio.sleep(0.05)


async def my_project_names(http: httpx.AsyncClient, account: Account) -> list[str]:
    response = await http.get(f"{API}/projects", headers=account.headers)
    assert response.status_code == 200, response.text
    return sorted(item["name"] for item in response.json()["items"])


async def write_on_primary(app: FastAPI, owner_id: int, name: str) -> None:
    """A project written behind the API's back: its caller is nobody, so nobody sticks."""
    async with app.state.databases.app.engine.begin() as connection:
        await connection.execute(insert(Project).values(owner_id=owner_id, name=name))


async def test_reads_of_other_callers_come_from_the_replica(
    service: tuple[FastAPI, httpx.AsyncClient], clusters: tuple[Cluster, Cluster]
) -> None:
    app, http = service
    primary, standby = clusters
    bob = await signed_up(http, "bob@example.com")
    await caught_up(primary, standby)
    standby.psql("SELECT pg_wal_replay_pause()")

    await write_on_primary(app, bob.id, "written on the primary")

    # Bob's GET is served by the replica, which has not replayed the row yet.
    assert await my_project_names(http, bob) == []
    standby.psql("SELECT pg_wal_replay_resume()")
    await caught_up(primary, standby)
    assert await my_project_names(http, bob) == ["written on the primary"]


async def test_a_caller_reads_their_own_writes_at_once_then_the_replica_again(
    service: tuple[FastAPI, httpx.AsyncClient], clusters: tuple[Cluster, Cluster]
) -> None:
    _, http = service
    primary, standby = clusters
    ada = await signed_up(http, "ada@example.com")
    await caught_up(primary, standby)
    standby.psql("SELECT pg_wal_replay_pause()")

    created = await http.post(f"{API}/projects", json={"name": "Apollo"}, headers=ada.headers)
    assert created.status_code == 201
    read = await http.get(f"{API}/projects/{created.json()['id']}", headers=ada.headers)

    # The write went to the primary and the reads right after it too, although the
    # replica has not replayed it.
    assert read.status_code == 200
    assert await my_project_names(http, ada) == ["Apollo"]
    # Once the sticky time is over, Ada's reads are the replica's again (still paused).
    await asyncio.sleep(STICKY + 0.2)
    assert await my_project_names(http, ada) == []


async def test_a_get_that_writes_reads_its_writes_from_the_primary(
    service: tuple[FastAPI, httpx.AsyncClient], clusters: tuple[Cluster, Cluster]
) -> None:
    app, http = service
    primary, standby = clusters

    @app.get("/probe/insert-then-read")
    async def insert_then_read(*, app_db: AppDb) -> list[str]:
        app_db.add(Project(owner_id=77, name="inserted by a GET"))
        await app_db.flush()
        return list(await app_db.scalars(select(Project.name).where(Project.owner_id == 77)))

    await caught_up(primary, standby)
    standby.psql("SELECT pg_wal_replay_pause()")

    response = await http.get("/probe/insert-then-read")

    # An INSERT is a write: the read after it is the primary's, which has the row.
    assert response.status_code == 200
    assert response.json() == ["inserted by a GET"]


async def test_reads_of_a_request_other_than_a_get_come_from_the_primary(
    service: tuple[FastAPI, httpx.AsyncClient], clusters: tuple[Cluster, Cluster]
) -> None:
    app, http = service
    primary, standby = clusters

    @app.post("/probe/names")
    async def names(*, reads: AppReads) -> list[str]:
        statement = select(Project.name).where(Project.owner_id == 78)
        return [row.name for row in await reads.all(statement)]

    await caught_up(primary, standby)
    standby.psql("SELECT pg_wal_replay_pause()")
    await write_on_primary(app, 78, "only on the primary")

    # A request that may write reads what is committed on the primary, never a replica.
    assert (await http.post("/probe/names")).json() == ["only on the primary"]


async def test_a_read_the_standby_cancels_to_replay_is_answered_by_the_primary(
    service: tuple[FastAPI, httpx.AsyncClient], clusters: tuple[Cluster, Cluster]
) -> None:
    app, http = service
    primary, standby = clusters
    # A read that holds the projects table on the standby for two seconds.
    slow = select(Project.name, func.pg_sleep(2)).where(Project.owner_id == 79)

    @app.get("/probe/slow-reads")
    async def slow_reads(*, reads: AppReads) -> list[str]:
        return [row.name for row in await reads.all(slow)]

    @app.get("/probe/slow-session")
    async def slow_session(*, app_db: AppDb) -> list[str]:
        return [row.name for row in await app_db.execute(slow)]

    await write_on_primary(app, 79, "on both")
    await caught_up(primary, standby)
    standby.psql("ALTER SYSTEM SET max_standby_streaming_delay = '100ms'")
    standby.psql("SELECT pg_reload_conf()")
    try:
        reads = await cancelled_on_the_standby(http, "/probe/slow-reads", primary, standby)
        session = await cancelled_on_the_standby(http, "/probe/slow-session", primary, standby)
    finally:
        standby.psql("ALTER SYSTEM RESET max_standby_streaming_delay")
        standby.psql("SELECT pg_reload_conf()")

    # AppReads read the primary at once; a session's statement cannot move: try again.
    assert (reads.status_code, reads.json()) == (200, ["on both"])
    assert session.status_code == 503
    assert session.headers["retry-after"] == "1"
    assert session.json()["code"] == "try_again"


async def cancelled_on_the_standby(
    http: httpx.AsyncClient, path: str, primary: Cluster, standby: Cluster
) -> httpx.Response:
    """GET `path` while the primary takes a lock that the standby must replay: the read
    on the standby is cancelled ("conflict with recovery"), as its statistics show."""
    conflicts = "SELECT confl_lock FROM pg_stat_database_conflicts WHERE datname = 'app'"
    before = int(standby.psql(conflicts))
    request = asyncio.create_task(http.get(path))
    sleeping = (
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
        " AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 10
    while standby.psql(sleeping) == "0":
        assert time.monotonic() < deadline, f"{path} never read the standby"
        await asyncio.sleep(0.05)
    primary.psql("BEGIN; LOCK TABLE projects IN ACCESS EXCLUSIVE MODE; COMMIT", "app")
    response = await request
    # The statistics are written a moment later (at most a second).
    deadline = time.monotonic() + 10
    while int(standby.psql(conflicts)) == before:
        assert time.monotonic() < deadline, f"{path}: the standby cancelled nothing"
        await asyncio.sleep(0.1)
    assert int(standby.psql(conflicts)) == before + 1
    return response


@pytest.fixture
async def lag_sensitive(
    clusters: tuple[Cluster, Cluster],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    primary, standby = clusters
    settings = replicated_settings(primary, standby, replica_max_lag_seconds=0.5)
    async with running(create_app(settings)) as app, client_for(app) as http:
        yield app, http
    standby.psql("SELECT pg_wal_replay_resume()")


async def test_a_lagging_replica_is_skipped_and_ready_says_degraded(
    lag_sensitive: tuple[FastAPI, httpx.AsyncClient], clusters: tuple[Cluster, Cluster]
) -> None:
    app, http = lag_sensitive
    primary, standby = clusters
    carol = await signed_up(http, "carol@example.com")
    await caught_up(primary, standby)
    standby.psql("SELECT pg_wal_replay_pause()")
    await write_on_primary(app, carol.id, "fresh")

    ready = await wait_for_replica_status(http, "lagging")

    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    # Skipped: the read comes from the primary, which has the row.
    assert await my_project_names(http, carol) == ["fresh"]
    standby.psql("SELECT pg_wal_replay_resume()")
    assert (await wait_for_replica_status(http, "up")).json()["status"] == "ok"


async def test_reads_still_succeed_when_the_replica_stops(
    service: tuple[FastAPI, httpx.AsyncClient], clusters: tuple[Cluster, Cluster]
) -> None:
    app, http = service
    primary, standby = clusters
    dave = await signed_up(http, "dave@example.com")
    await write_on_primary(app, dave.id, "kept")
    await caught_up(primary, standby)

    standby.stop()
    try:
        # At once, before the monitor's next check: the picked replica does not answer,
        # is marked down, and the read goes to the primary.
        assert await my_project_names(http, dave) == ["kept"]
        ready = await wait_for_replica_status(http, "down")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert await my_project_names(http, dave) == ["kept"]
    finally:
        standby.start()
    assert (await wait_for_replica_status(http, "up")).json()["status"] == "ok"


async def wait_for_replica_status(http: httpx.AsyncClient, wanted: str) -> httpx.Response:
    deadline = time.monotonic() + 15
    while True:
        ready = await http.get("/health/ready")
        (replica,) = ready.json()["databases"]["app"]["replicas"]
        if replica["status"] == wanted:
            return ready
        assert time.monotonic() < deadline, f"the replica stayed {replica['status']}"
        await asyncio.sleep(0.2)
