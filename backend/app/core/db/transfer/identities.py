"""After rows were written with their own ids: the next id handed out must follow them.

PostgreSQL's sequences know nothing of ids given explicitly, and would hand out 1
again; MariaDB moves its counter by itself, but only as far as the rows it saw
inserted, so it is set as well. SQLite hands out max(rowid) + 1 by itself.
"""

from sqlalchemy import Table, false, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection


async def follow_explicit_ids(connection: AsyncConnection, tables: list[Table]) -> None:
    """Set each table's id counter past its largest id."""
    backend = connection.dialect.name
    quote = connection.dialect.identifier_preparer.format_table
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        following = func.coalesce(func.max(column), 0) + 1
        if backend == "postgresql":
            sequence = func.pg_get_serial_sequence(quote(table), column.name)
            await connection.execute(select(func.setval(sequence, following, false())))
        elif backend in ("mysql", "mariadb"):
            next_id = int(await connection.scalar(select(following)) or 1)
            await connection.execute(text(f"ALTER TABLE {quote(table)} AUTO_INCREMENT = {next_id}"))
