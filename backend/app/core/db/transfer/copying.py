"""Copying one database's tables to another database, on any backend, resumably.

The target gets its schema from the migrations, at the source's revision; then the rows
of each table, parents first, in primary-key batches. Each batch commits together with a
checkpoint (its last key) in a progress table of the target, so a copy that stopped,
however abruptly, continues from exactly what the target holds. Values travel through
the models' column types (UTC timestamps, money in cents on SQLite), so they arrive
exact between any two backends. The copy ends by comparing every table's row count and
checksum; only then does the progress table go, and, if asked, the source's tables.

In `app.core` because it names no table: it copies the metadata it is handed (the CLI
hands it `app.models`' trees) between the engines it is handed. A little over 300 lines:
the steps of a copy, each short, read best together in the order they run.
"""

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import DatabaseName
from app.core.db.revisions import (
    current_revision,
    head,
    is_known,
    upgrade,
    version_table,
    version_table_name,
)
from app.core.db.transfer.checksums import compare_tables
from app.core.db.transfer.identities import follow_explicit_ids
from app.core.db.transfer.keyset import Key, batches, dump_key, key_of, load_key
from app.core.errors import DomainError

Report = Callable[[str], None]


class CopyFailed(DomainError):
    """A copy refused or stopped; the message says why and what to do (the CLI prints it)."""

    code = "copy_failed"


@dataclass(frozen=True, slots=True)
class CopyJob:
    name: DatabaseName
    metadata: MetaData
    source: AsyncEngine
    target: AsyncEngine
    batch_size: int = 1000

    @property
    def tables(self) -> list[Table]:
        return self.metadata.sorted_tables  # parents before the tables that refer to them

    @property
    def progress(self) -> Table:
        """Where the target keeps each table's checkpoint while a copy is unfinished."""
        return Table(
            f"copy_progress_{self.name}",
            MetaData(),
            Column("table_name", String(128), primary_key=True),
            Column("last_key", Text),
            Column("copied", BigInteger, nullable=False),
        )


class TargetState(StrEnum):
    EMPTY = "empty"  # none of the tree's tables: a new copy
    UNFINISHED = "unfinished"  # a copy stopped before it was verified: it continues
    OCCUPIED = "occupied"  # the tree's tables and no copy under way: compared, never written


async def copy_database(
    job: CopyJob, report: Report, *, dry_run: bool = False, drop_source: bool = False
) -> None:
    """Copy, or continue copying, then verify; drop the source's tables only after that."""
    try:
        await _copy_database(job, report, dry_run=dry_run, drop_source=drop_source)
    except (DBAPIError, OSError) as error:  # a server gone, a URL wrong, a right missing
        raise CopyFailed(
            f"{getattr(error, 'orig', None) or error} (what was copied stays: run the "
            "command again to continue)"
        ) from error


async def _copy_database(job: CopyJob, report: Report, *, dry_run: bool, drop_source: bool) -> None:
    revision = await _source_revision(job)
    state = await _target_state(job)
    if dry_run:
        await _describe(job, revision, state, report, drop_source=drop_source)
        return
    await _refuse_same_database(job)
    if state is TargetState.OCCUPIED:
        report(f"the target already holds the {job.name} tables: comparing them with the source")
        mismatches = await _compare(job, revision, report)
        if mismatches:
            raise CopyFailed(
                f"the target already holds {job.name} tables that differ from the source "
                f"({'; '.join(mismatches)}). copy-database only fills a database without "
                f"them: a new one, or one emptied by `alembic -n {job.name} downgrade base`"
            )
        report("the target already holds an exact copy: nothing to copy")
    else:
        await _copy(job, revision, state, report)
    if drop_source:
        await _drop_source(job, report)


async def _source_revision(job: CopyJob) -> str:
    async with job.source.connect() as connection:
        revision = await current_revision(connection, job.name)
    if revision is None:
        raise CopyFailed(
            f"the source has no {version_table_name(job.name)} table: it was never migrated"
        )
    if not is_known(job.name, revision):
        raise CopyFailed(
            f"the source is at revision {revision}, which this code does not know: "
            "copy it with the code that migrated it"
        )
    if revision != head(job.name):
        # The rows are read through the models, which describe the newest revision.
        raise CopyFailed(
            f"the source is at revision {revision}, behind this code's {head(job.name)}: "
            f"migrate it first (alembic -n {job.name} upgrade head)"
        )
    return revision


async def _target_state(job: CopyJob) -> TargetState:
    url = job.target.url
    sqlite_file = Path(url.database or "") if url.get_backend_name() == "sqlite" else None
    if sqlite_file and not await asyncio.to_thread(sqlite_file.exists):
        return TargetState.EMPTY  # a dry run must not create the file by looking
    async with job.target.connect() as connection:
        names = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    if job.progress.name in names:
        return TargetState.UNFINISHED
    if names & ({table.name for table in job.tables} | {version_table_name(job.name)}):
        return TargetState.OCCUPIED
    return TargetState.EMPTY


async def _describe(
    job: CopyJob, revision: str, state: TargetState, report: Report, *, drop_source: bool
) -> None:
    report(f"source: the {job.name} tables at revision {revision}")
    report(
        {
            TargetState.EMPTY: f"target: no {job.name} tables yet; the migrations would "
            f"create them at revision {revision}",
            TargetState.UNFINISHED: "target: an unfinished copy, which a run would continue",
            TargetState.OCCUPIED: f"target: holds the {job.name} tables already; a run would "
            "compare them with the source and copy nothing",
        }[state]
    )
    done = await _checkpoints(job) if state is TargetState.UNFINISHED else {}
    remaining = 0
    for table in job.tables:
        rows = await _count(job.source, table)
        copied = done.get(table.name, 0)
        remaining += rows - copied if state is not TargetState.OCCUPIED else 0
        report(f"  {table.name}: {rows:,} rows" + (f", {copied:,} copied" if copied else ""))
    if drop_source:
        report(f"then, once verified, the source's {job.name} tables would be dropped")
    report(f"dry run: {remaining:,} rows to copy; nothing was written")


async def _refuse_same_database(job: CopyJob) -> None:
    """A table made in the target must not show in the source: two URLs can name one
    database (localhost and 127.0.0.1, a symlinked file), and dropping the source
    would then drop the only copy."""
    probe = Table(f"copy_probe_{secrets.token_hex(6)}", MetaData(), Column("id", Integer))
    async with job.target.begin() as connection:
        await connection.run_sync(probe.create)
    try:
        async with job.source.connect() as connection:
            same = await connection.run_sync(lambda sync: inspect(sync).has_table(probe.name))
    finally:
        async with job.target.begin() as connection:
            await connection.run_sync(probe.drop)
    if same:
        raise CopyFailed("the target is the source database itself")


async def _copy(job: CopyJob, revision: str, state: TargetState, report: Report) -> None:
    if state is TargetState.EMPTY:
        async with job.target.begin() as connection:
            await connection.run_sync(job.progress.create)
    else:
        report("continuing the unfinished copy in the target")
    await _prepare_target(job, revision, report)
    started = time.monotonic()
    copied = 0
    for table in job.tables:
        copied += await _copy_table(job, table, report)
    async with job.target.begin() as connection:
        await follow_explicit_ids(connection, job.tables)
    report(f"copied {copied:,} rows in {time.monotonic() - started:.1f} s; verifying")
    mismatches = await _compare(job, revision, report)
    if mismatches:
        raise CopyFailed(
            f"verification failed: {'; '.join(mismatches)}. The source is untouched; "
            "the target keeps its progress table, so a run compares them again"
        )
    async with job.target.begin() as connection:
        await connection.run_sync(job.progress.drop)
    report("done: every table matches the source")


async def _prepare_target(job: CopyJob, revision: str, report: Report) -> None:
    async with job.target.connect() as connection:
        target_revision = await current_revision(connection, job.name)
    if target_revision is None:
        report(f"creating the {job.name} tables in the target at revision {revision}")
        await upgrade(job.name, job.target.url, revision)
    elif target_revision != revision:
        raise CopyFailed(
            f"the unfinished copy in the target is at revision {target_revision} and the "
            f"source at {revision}: drop the target's tables and copy again"
        )
    progress = job.progress
    async with job.target.begin() as connection:
        if await connection.scalar(select(func.count()).select_from(progress)):
            return
        # Nothing copied yet: the only rows are those the migrations seed (the roles),
        # and the source's own rows take their place.
        for table in reversed(job.tables):
            await connection.execute(table.delete())
        await connection.execute(
            progress.insert(),
            [{"table_name": table.name, "last_key": None, "copied": 0} for table in job.tables],
        )


async def _checkpoints(job: CopyJob) -> dict[str, int]:
    progress = job.progress
    async with job.target.connect() as connection:
        rows = await connection.execute(select(progress.c.table_name, progress.c.copied))
        return dict(rows.tuples().all())


async def _copy_table(job: CopyJob, table: Table, report: Report) -> int:
    progress = job.progress
    this_table = progress.c.table_name == table.name
    async with job.target.connect() as connection:
        checkpoint = (
            await connection.execute(
                select(progress.c.last_key, progress.c.copied).where(this_table)
            )
        ).one()
    last_key: Key | None = load_key(checkpoint.last_key)
    meter = _Meter(table.name, await _count(job.source, table), checkpoint.copied, report)
    async with job.source.connect() as source:
        reader = await source.execution_options(isolation_level="AUTOCOMMIT")
        async for rows in batches(reader, table, job.batch_size, last_key):
            last_key = key_of(table, rows[-1])
            try:
                async with job.target.begin() as target:
                    await target.execute(table.insert(), [row._asdict() for row in rows])
                    await target.execute(
                        progress.update()
                        .where(this_table)
                        .values(last_key=dump_key(last_key), copied=progress.c.copied + len(rows))
                    )
            except DBAPIError as exc:
                raise CopyFailed(
                    f"{table.name}: writing the batch after row {meter.done:,} failed "
                    f"({exc.orig}); the target kept every batch before it: run the command "
                    "again to continue"
                ) from exc
            meter.advance(len(rows))
    meter.finish()
    return meter.copied_now


@dataclass
class _Meter:
    """Prints a table's progress at most once a second, and once at its end."""

    table: str
    total: int
    done: int
    report: Report
    copied_now: int = 0
    started: float = field(default_factory=time.monotonic)
    shown: float = field(default_factory=time.monotonic)

    def advance(self, rows: int) -> None:
        self.done += rows
        self.copied_now += rows
        if time.monotonic() - self.shown >= 1.0:
            self.shown = time.monotonic()
            rate = self.copied_now / max(self.shown - self.started, 1e-9)
            self.report(f"{self.table}: {self.done:,}/{self.total:,} rows ({rate:,.0f} rows/s)")

    def finish(self) -> None:
        earlier = (
            f", {self.done - self.copied_now:,} by an earlier run"
            if self.copied_now < self.done
            else ""
        )
        seconds = time.monotonic() - self.started
        self.report(f"{self.table}: {self.done:,} rows copied{earlier} ({seconds:.1f} s)")


async def _compare(job: CopyJob, revision: str, report: Report) -> list[str]:
    """What differs between source and target; empty when nothing does."""
    mismatches = await compare_tables(job.source, job.target, job.tables, job.batch_size, report)
    async with job.target.connect() as connection:
        target_revision = await current_revision(connection, job.name)
    if target_revision != revision:
        mismatches.append(
            f"{version_table_name(job.name)}: revision {target_revision} in the target, "
            f"{revision} in the source"
        )
    return mismatches


async def _count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def _drop_source(job: CopyJob, report: Report) -> None:
    report(f"dropping the source's {job.name} tables and {version_table_name(job.name)}")
    async with job.source.begin() as connection:
        await connection.run_sync(job.metadata.drop_all)
        await connection.run_sync(version_table(job.name).drop)
    report("the source's tables are dropped")
