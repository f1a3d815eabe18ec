"""App rows whose owner no longer exists in the auth database.

No foreign key can cross the two databases, so nothing stops such rows from
appearing: a restore of one database from an older backup, a manual delete, an
erasure interrupted and never finished. This finds them, and removes them on request.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.auth.models import User
from app.core.db.integrity import integrity_session
from app.core.db.registry import Databases
from app.erasure.service import OWNER_COLUMN, delete_owned_rows, owned_tables

BATCH = 1000


@dataclass
class OrphanReport:
    missing_owner_ids: set[int] = field(default_factory=set)
    rows_by_table: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows_by_table.values())


async def find_orphans(databases: Databases) -> OrphanReport:
    report = OrphanReport()
    async with integrity_session(databases, "app", "orphans: owners of app rows") as app_db:
        owners: set[int] = set()
        for table in owned_tables():
            owners.update(await app_db.scalars(select(table.c[OWNER_COLUMN]).distinct()))
    async with integrity_session(databases, "auth", "orphans: existing users") as auth_db:
        existing: set[int] = set()
        for chunk in _chunks(sorted(owners)):
            existing.update(await auth_db.scalars(select(User.id).where(User.id.in_(chunk))))
    report.missing_owner_ids = owners - existing
    if report.missing_owner_ids:
        async with integrity_session(databases, "app", "orphans: count rows") as app_db:
            for table in owned_tables():
                for chunk in _chunks(sorted(report.missing_owner_ids)):
                    rows = await app_db.scalar(
                        select(func.count())
                        .select_from(table)
                        .where(table.c[OWNER_COLUMN].in_(chunk))
                    )
                    report.rows_by_table[table.name] = report.rows_by_table.get(
                        table.name, 0
                    ) + int(rows or 0)
    return report


async def delete_orphans(databases: Databases, report: OrphanReport) -> dict[str, int]:
    """Delete the rows of the owners the report found missing."""
    deleted: dict[str, int] = {}
    async with integrity_session(databases, "app", "orphans: delete rows") as app_db:
        for chunk in _chunks(sorted(report.missing_owner_ids)):
            for table, count in (await delete_owned_rows(app_db, list(chunk))).items():
                deleted[table] = deleted.get(table, 0) + count
    return deleted


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]
