"""SQLite's side of backups, in blocking code run in a thread.

A backup goes through the online backup API of the `sqlite3` module, which copies a
consistent state of a database in use (a file copy can catch it mid-write). A restore
runs in one transaction through ATTACH, so that a file that also holds the other
database's tables (single-URL mode) keeps them.
"""

import sqlite3
from contextlib import closing
from pathlib import Path


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def backup_sqlite(live: Path, copy: Path, tables: list[str]) -> dict[str, int]:
    """Back `live` up into `copy`, keep only `tables` there, and count their rows."""
    with (
        closing(sqlite3.connect(live)) as source,
        closing(sqlite3.connect(copy, isolation_level=None)) as target,
    ):
        source.backup(target)
        # The copy, never the live file, loses what is not this database's: in
        # single-URL mode the file also holds the other database's tables.
        names = target.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        for (name,) in names:
            if name not in tables:
                target.execute(f"DROP TABLE {_quote(name)}")
        target.execute("VACUUM")
        return {
            name: target.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()[0]  # noqa: S608
            for name in tables
        }


def load_sqlite(live: Path, backup: Path, obsolete: list[str]) -> None:
    """Replace the tables of `live` that `backup` holds with its own, and drop the
    `obsolete` ones, all or nothing."""
    with closing(sqlite3.connect(live, isolation_level=None)) as connection:
        connection.execute("ATTACH DATABASE ? AS backup", (str(backup),))
        schema = connection.execute(
            "SELECT type, name, sql FROM backup.sqlite_master "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type = 'index', rowid"
        ).fetchall()
        tables = [name for kind, name, _ in schema if kind == "table"]
        connection.execute("BEGIN IMMEDIATE")
        try:
            for name in [*obsolete, *tables]:
                connection.execute(f"DROP TABLE IF EXISTS main.{_quote(name)}")
            for kind, name, sql in schema:
                connection.execute(sql)  # unqualified: it creates in main
                if kind == "table":
                    connection.execute(
                        f"INSERT INTO main.{_quote(name)} SELECT * FROM backup.{_quote(name)}"  # noqa: S608
                    )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            connection.execute("DETACH DATABASE backup")
