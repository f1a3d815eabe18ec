"""A backup of one database in one file, made and restored with the backend's own tools.

The file is a gzipped tar archive of two members: `manifest.json` (which database, the
backend, its Alembic revision, each table's row count, the tool and its version, when)
and the dump (`dumps.py`). Only the database's own tables and version table are in it,
so a backup in single-URL mode leaves the other database's tables out, and a restore
leaves them alone. A restore refuses a backup whose revision the code does not know,
replaces the tables with the dump's, drops the tables the backup does not hold (they
come from a later revision), and checks the row counts against the manifest.

In `app.core` because it names no table: it backs up the metadata it is handed.
"""

import asyncio
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from io import BytesIO
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import MetaData, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import DatabaseName
from app.core.db.revisions import current_revision, is_known, version_table_name
from app.core.db.transfer.dumps import BackupFailed, dumper_for, row_counts
from app.core.db.types import utc_now

MANIFEST = "manifest.json"


class Manifest(BaseModel):
    format: Literal[1] = 1
    name: DatabaseName
    backend: str
    revision: str
    tables: dict[str, int]  # row counts, the version table's included
    tool: str
    tool_version: str
    created_at: datetime
    payload: str  # the dump's name in the archive

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


async def backup_database(
    name: DatabaseName, metadata: MetaData, engine: AsyncEngine, destination: Path
) -> Manifest:
    """Write a backup of the database's tables to `destination`, replaced only once the
    new backup is complete."""
    with _database_errors_reported():
        return await _backup(name, metadata, engine, destination)


async def _backup(
    name: DatabaseName, metadata: MetaData, engine: AsyncEngine, destination: Path
) -> Manifest:
    async with engine.connect() as connection:
        revision = await current_revision(connection, name)
        present = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    if revision is None:
        raise BackupFailed(f"the {name} database has no {version_table_name(name)}: not migrated")
    tables = [table.name for table in metadata.sorted_tables if table.name in present]
    tables.append(version_table_name(name))
    dumper = dumper_for(engine.url)
    tool_version = await dumper.version()
    await asyncio.to_thread(destination.parent.mkdir, parents=True, exist_ok=True)
    with TemporaryDirectory(dir=destination.parent, prefix=".backup-") as work:
        payload = Path(work) / dumper.payload
        counts = await dumper.dump(engine, tables, payload)
        manifest = Manifest(
            name=name,
            backend=engine.url.get_backend_name(),
            revision=revision,
            tables=counts,
            tool=dumper.tool,
            tool_version=tool_version,
            created_at=utc_now(),
            payload=dumper.payload,
        )
        archive = Path(work) / "backup.tar.gz"
        await asyncio.to_thread(_write_archive, archive, manifest, payload)
        await asyncio.to_thread(archive.replace, destination)
    return manifest


async def restore_database(
    name: DatabaseName, metadata: MetaData, engine: AsyncEngine, source: Path
) -> Manifest:
    """Replace the database's tables with those of the backup in `source`."""
    with _database_errors_reported():
        return await _restore(name, metadata, engine, source)


async def _restore(
    name: DatabaseName, metadata: MetaData, engine: AsyncEngine, source: Path
) -> Manifest:
    manifest = await asyncio.to_thread(read_manifest, source)
    backend = engine.url.get_backend_name()
    if manifest.name != name:
        raise BackupFailed(f"{source} is a backup of the {manifest.name} database, not of {name}")
    if manifest.backend != backend:
        raise BackupFailed(
            f"{source} was made from {manifest.backend} with {manifest.tool}, and the {name} "
            f"database is on {backend}: restore it on {manifest.backend}, then move it with "
            "copy-database"
        )
    if not is_known(name, manifest.revision):
        raise BackupFailed(
            f"{source} is at revision {manifest.revision}, which this code does not know: "
            "restore it with the code that made it"
        )
    dumper = dumper_for(engine.url)
    async with engine.connect() as connection:
        present = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    obsolete = [
        table.name
        for table in reversed(metadata.sorted_tables)
        if table.name in present and table.name not in manifest.tables
    ]
    with TemporaryDirectory(prefix="dualbase-restore-") as work:
        payload = Path(work) / dumper.payload
        await asyncio.to_thread(_extract, source, manifest.payload, payload)
        await dumper.load(engine, payload, obsolete)
    await engine.dispose()  # pooled connections may hold plans of the tables replaced
    async with engine.connect() as connection:
        counts = await row_counts(connection, list(manifest.tables))
    wrong = [
        f"{table}: {counts[table]:,} rows, the manifest says {rows:,}"
        for table, rows in manifest.tables.items()
        if counts[table] != rows
    ]
    if wrong:
        raise BackupFailed(f"the restored rows do not match the manifest: {'; '.join(wrong)}")
    return manifest


@contextmanager
def _database_errors_reported() -> Iterator[None]:
    """A server gone, a URL wrong, a right missing: a message, not a traceback."""
    try:
        yield
    except (DBAPIError, OSError) as error:
        raise BackupFailed(str(getattr(error, "orig", None) or error)) from error


def read_manifest(source: Path) -> Manifest:
    try:
        with tarfile.open(source, "r:gz") as archive:
            member = archive.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            return Manifest.model_validate_json(member.read())
    except (OSError, tarfile.TarError, KeyError) as error:
        raise BackupFailed(f"{source} is not a backup made by `backup` ({error})") from None
    except ValidationError as error:
        raise BackupFailed(f"{source} has a manifest this code cannot read: {error}") from None


def _write_archive(archive: Path, manifest: Manifest, payload: Path) -> None:
    text = manifest.model_dump_json(indent=2).encode()
    with tarfile.open(archive, "w:gz") as tar:
        entry = tarfile.TarInfo(MANIFEST)
        entry.size = len(text)
        entry.mtime = int(manifest.created_at.timestamp())
        tar.addfile(entry, BytesIO(text))  # first, so that reading it is quick
        tar.add(payload, arcname=manifest.payload, recursive=False)


def _extract(source: Path, member: str, destination: Path) -> None:
    # One named member, streamed: never `extractall`, whose paths the archive decides.
    with tarfile.open(source, "r:gz") as archive:
        try:
            reader = archive.extractfile(member)
        except KeyError:
            reader = None
        if reader is None:
            raise BackupFailed(f"{source} holds no {member}")
        with reader, destination.open("wb") as writer:
            shutil.copyfileobj(reader, writer)
