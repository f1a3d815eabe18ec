"""Committing one request's writes to both databases, and exactly what that guarantees.

There is no transaction spanning two databases (no two-phase commit: SQLite and the
async drivers offer none), so `commit_both` gives this, and only this:

1. Both sessions are flushed first, so constraint violations in either database are
   found before anything is committed; then nothing is written anywhere.
2. `first` is committed, then `second`.
3. If `first`'s commit fails, both are rolled back: nothing is written anywhere.
4. If `second`'s commit fails after `first`'s succeeded, `second` is rolled back and
   `undo_first(first)` runs in a new transaction on `first`'s database and is
   committed: a compensating write (delete what was inserted, restore what was
   changed). The original error is then raised, so the client sees it (503 for an
   outage). If the compensation fails too, `DualWriteInconsistent` is raised and
   logged with both errors: only then do the databases disagree, and the log line is
   what an operator needs to repair them.

Put the write that is easier to undo first (typically the app database), and write
`undo_first` so that running it twice does no harm.
"""

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)


class DualWriteInconsistent(Exception):
    """The second commit and the compensation of the first both failed."""


async def commit_both(
    first: AsyncSession,
    second: AsyncSession,
    *,
    undo_first: Callable[[AsyncSession], Awaitable[None]],
) -> None:
    """Commit `first` then `second`; on a failure of `second`, compensate `first`."""
    try:
        await first.flush()
        await second.flush()
        await first.commit()
    except BaseException:
        await first.rollback()
        await second.rollback()
        raise
    try:
        await second.commit()
    except BaseException as second_error:
        await second.rollback()
        try:
            await undo_first(first)
            await first.commit()
        except Exception as undo_error:
            await first.rollback()
            logger.critical(
                "dual write left the databases inconsistent: second commit failed with %r, "
                "compensating the first failed with %r",
                second_error,
                undo_error,
            )
            raise DualWriteInconsistent(str(undo_error)) from second_error
        raise
