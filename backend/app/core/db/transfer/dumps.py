"""The native tools that dump and load a database's tables, one class per backend.

PostgreSQL: `pg_dump --format=custom` in a snapshot exported by our own transaction (the
row counts are read in that same snapshot), `pg_restore --clean --single-transaction`.
MariaDB/MySQL: `mariadb-dump --single-transaction`, loaded with the `mariadb` client; the
dump shares no snapshot, so its row counts are read from the dump itself. SQLite: the
online backup API of the `sqlite3` module (a file copy of a live database can catch it
mid-write), loaded in one transaction through ATTACH, so that a file shared with the
other database keeps that database's tables.

Passwords reach the tools through their environment (`PGPASSWORD`, `MYSQL_PWD`), never
their command line, which every user of the machine can read in the process list.
"""

import asyncio
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, select, table, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.db.transfer.sqlite_backups import backup_sqlite, load_sqlite
from app.core.errors import DomainError


class BackupFailed(DomainError):
    """A backup or restore refused or failed; the message says why (the CLI prints it)."""

    code = "backup_failed"


class Dumper(Protocol):
    tool: str
    payload: str  # the dump's name inside a backup archive

    async def version(self) -> str: ...

    async def dump(self, engine: AsyncEngine, tables: list[str], path: Path) -> dict[str, int]:
        """Write `tables` to `path`; return each table's row count as the dump holds it."""

    async def load(self, engine: AsyncEngine, path: Path, obsolete: list[str]) -> None:
        """Replace the dumped tables with the dump's, and drop the `obsolete` ones."""


def dumper_for(url: URL) -> Dumper:
    backend = url.get_backend_name()
    if backend == "postgresql":
        return PostgresDumper(url)
    if backend == "mysql":
        return MariaDBDumper(url)
    return SQLiteDumper(url)


async def row_counts(connection: AsyncConnection, tables: list[str]) -> dict[str, int]:
    counts = {}
    for name in tables:
        counts[name] = int(
            await connection.scalar(select(func.count()).select_from(table(name))) or 0
        )
    return counts


async def _run(
    command: list[str], env: dict[str, str] | None = None, stdin: Path | None = None
) -> str:
    """Run a tool to its end; its error output becomes the message of a failure."""
    executable = shutil.which(command[0])
    if executable is None:
        raise BackupFailed(f"{command[0]} is not installed, or not on the PATH")
    source = await asyncio.to_thread(open, stdin or os.devnull, "rb")
    try:
        process = await asyncio.create_subprocess_exec(
            executable,
            *command[1:],
            env=env,
            stdin=source,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        output, errors = await process.communicate()
    finally:
        source.close()
    if process.returncode != 0:
        raise BackupFailed(f"{command[0]} failed: {errors.decode(errors='replace').strip()}")
    return " ".join(output.decode(errors="replace").split())


def _environment(**variables: str | None) -> dict[str, str]:
    """This process's environment with the tool's connection settings, and none of the
    caller's own (an inherited PGPASSWORD must not reach another server)."""
    environment = {name: value for name, value in os.environ.items() if name not in variables}
    return environment | {name: value for name, value in variables.items() if value is not None}


class PostgresDumper:
    tool = "pg_dump"
    payload = "database.pgdump"

    def __init__(self, url: URL) -> None:
        self.database = url.database or ""
        self.env = _environment(
            PGHOST=url.host or str(url.query.get("host", "")) or None,
            PGPORT=str(url.port or 5432),
            PGUSER=url.username,
            PGPASSWORD=url.password,
            PGDATABASE=self.database,
            PGSSLMODE=str(url.query.get("ssl") or url.query.get("sslmode") or "") or None,
        )

    async def version(self) -> str:
        return await _run(["pg_dump", "--version"])

    async def dump(self, engine: AsyncEngine, tables: list[str], path: Path) -> dict[str, int]:
        async with engine.connect() as connection:
            snapshot = await connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with snapshot.begin():
                # pg_dump reads the snapshot of this transaction, which stays open until
                # it is done: the counts are those of the rows it writes.
                exported = str(await snapshot.scalar(text("SELECT pg_export_snapshot()")))
                counts = await row_counts(snapshot, tables)
                await _run(
                    [
                        "pg_dump",
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        "--strict-names",
                        f"--snapshot={exported}",
                        f"--file={path}",
                        *(f"--table={_exactly(name)}" for name in tables),
                    ],
                    self.env,
                )
        return counts

    async def load(self, engine: AsyncEngine, path: Path, obsolete: list[str]) -> None:
        async with engine.begin() as connection:
            quote = connection.dialect.identifier_preparer.quote
            for name in obsolete:
                await connection.execute(text(f"DROP TABLE IF EXISTS {quote(name)} CASCADE"))
        quoted = self.database.replace("\\", "\\\\").replace("'", "\\'")
        await _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                f"--dbname=dbname='{quoted}'",
                str(path),
            ],
            self.env,
        )


def _exactly(name: str) -> str:
    """A pg_dump pattern that matches the table `name` only (no wildcard, exact case)."""
    return '"' + name.replace('"', '""') + '"'


class MariaDBDumper:
    tool = "mariadb-dump"
    payload = "database.sql"

    def __init__(self, url: URL) -> None:
        self.database = url.database or ""
        socket = url.query.get("unix_socket")
        self.connection = [
            *([f"--socket={socket}"] if socket else ["--protocol=TCP"]),
            f"--host={url.host or 'localhost'}",
            f"--port={url.port or 3306}",
            *([f"--user={url.username}"] if url.username else []),
            "--default-character-set=utf8mb4",
        ]
        self.env = _environment(MYSQL_PWD=url.password)

    async def version(self) -> str:
        return await _run(["mariadb-dump", "--version"])

    async def dump(self, engine: AsyncEngine, tables: list[str], path: Path) -> dict[str, int]:
        await _run(
            [
                "mariadb-dump",
                *self.connection,
                "--single-transaction",
                "--no-tablespaces",  # which would need the PROCESS privilege
                "--hex-blob",
                f"--result-file={path}",
                self.database,
                *tables,
            ],
            self.env,
        )
        return await asyncio.to_thread(_count_dumped_rows, path, tables)

    async def load(self, engine: AsyncEngine, path: Path, obsolete: list[str]) -> None:
        async with engine.begin() as connection:
            quote = connection.dialect.identifier_preparer.quote
            await connection.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            for name in obsolete:
                await connection.execute(text(f"DROP TABLE IF EXISTS {quote(name)}"))
            await connection.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
        await _run(
            ["mariadb", *self.connection, "--binary-mode", f"--database={self.database}"],
            self.env,
            stdin=path,
        )


# In the statements `INSERT INTO `t` VALUES (...),(...);` (mariadb-dump puts each row on a
# line of its own, and escapes the line breaks inside strings): a quoted string, with its
# backslash escapes, or a parenthesis or semicolon outside of one.
_TOKEN = re.compile(rb"'(?:[^'\\]|\\.)*'|[();]", re.DOTALL)
_INSERT = re.compile(rb"INSERT INTO `((?:[^`]|``)+)` VALUES")


def _count_dumped_rows(path: Path, tables: list[str]) -> dict[str, int]:
    """Each table's rows in a mariadb-dump file: the tuples of its INSERT statements."""
    counts = dict.fromkeys(tables, 0)
    table: str | None = None
    depth = 0
    with path.open("rb") as dump:
        for line in dump:
            start = 0
            if table is None:
                insert = _INSERT.match(line)
                if insert is None:
                    continue
                table, start = insert.group(1).replace(b"``", b"`").decode(), insert.end()
                counts.setdefault(table, 0)
            for token in _TOKEN.finditer(line, start):
                if token.group() == b"(":
                    counts[table] += depth == 0
                    depth += 1
                elif token.group() == b")":
                    depth -= 1
                elif token.group() == b";" and depth == 0:
                    table = None
                    break
    return counts


class SQLiteDumper:
    tool = "sqlite3 online backup API"
    payload = "database.sqlite"

    def __init__(self, url: URL) -> None:
        self.file = Path(url.database or "")

    async def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    async def dump(self, engine: AsyncEngine, tables: list[str], path: Path) -> dict[str, int]:
        return await asyncio.to_thread(backup_sqlite, self.file, path, tables)

    async def load(self, engine: AsyncEngine, path: Path, obsolete: list[str]) -> None:
        await engine.dispose()  # no pooled connection may hold the file while it changes
        await asyncio.to_thread(load_sqlite, self.file, path, obsolete)
