"""`make bench-copy`: how fast `copy-database` moves a 100,000-row table from embedded
SQLite to PostgreSQL, the move every user of the default meets.

An app database on SQLite gets 100,000 projects; `python -m app.cli copy-database app`
copies it into a new PostgreSQL database (BENCH_POSTGRES_URL's server) with the default
batch size, then with larger ones. Prints the copy's rows/s (the rows phase alone, as the
command reports it) and the whole command's time, verification included.
"""

import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tools.servers import BACKEND, VENV_BIN, fresh_database

ROWS = int(os.environ.get("BENCH_COPY_ROWS", "100000"))
BATCH_SIZES = (1000, 5000)


def sqlite_source(directory: Path) -> Path:
    """An app database at head on SQLite holding ROWS projects."""
    source = directory / "app.db"
    env = {**os.environ, "APP_DATABASE_URL": f"sqlite:///{source}", "ENVIRONMENT": "development"}
    subprocess.run(
        [str(VENV_BIN / "alembic"), "-n", "app", "upgrade", "head"],
        cwd=BACKEND,
        env=env,
        check=True,
        capture_output=True,
    )
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(source) as connection:
        connection.executemany(
            "INSERT INTO projects (owner_id, name, description, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                (n % 500 + 1, f"project {n}", "a description of a few words" * (n % 3), now, now)
                for n in range(ROWS)
            ),
        )
    return source


def copy(source: Path, target: str, batch_size: int) -> tuple[float, float]:
    """(rows/s of the projects table, seconds of the whole command)."""
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "APP_DATABASE_URL": f"sqlite:///{source}",
        "AUTH_DATABASE_URL": f"sqlite:///{source.parent / 'auth.db'}",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "copy-database",
            "app",
            "--to",
            target,
            "--batch-size",
            str(batch_size),
        ],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"copy-database failed:\n{done.stdout}\n{done.stderr}")
    table = re.search(r"projects: ([\d,]+) rows copied \(([\d.]+) s\)", done.stdout)
    assert table is not None, done.stdout
    rows, table_seconds = int(table.group(1).replace(",", "")), float(table.group(2))
    return rows / table_seconds, seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        source = sqlite_source(Path(directory))
        print(f"copy-database app: {ROWS:,} projects, SQLite -> PostgreSQL")
        print(f"{'batch':>6} {'rows/s (copy)':>14} {'whole command (s)':>18}")
        for batch_size in BATCH_SIZES:
            target = fresh_database("dualbase_bench_copy")
            rate, seconds = copy(source, target, batch_size)
            print(f"{batch_size:>6} {rate:>14,.0f} {seconds:>18.1f}")


if __name__ == "__main__":
    main()
