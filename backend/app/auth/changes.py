"""The change feed of credentials: recorded with each change, followed by every worker.

`record_change(auth_db, user_id)` adds a `credential_changes` row in the transaction of
the change itself, and drops the user's principals in this worker once it commits.
`ChangeFollower`, one per worker, polls the table every `POLL_INTERVAL` seconds for
rows newer than it has seen and drops their users' principals; each successful poll
renews `PrincipalCache.fresh_until`. It also writes the batched `last_used_at` times.

Polling works the same on every backend. Ids are handed out before commit, so a row
may appear after a higher one: the follower reads from the lowest id it cannot yet
account for, and gives up on a missing id (a rolled-back transaction's) only after
`GAP_TIMEOUT` seconds.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select, update

from app.auth.models import ApiKey, CredentialChange, LoginSession
from app.auth.principals import FRESHNESS, PrincipalCache
from app.core.background import in_background
from app.core.db.base import AuthSession
from app.core.db.registry import Database
from app.core.db.sessions import app_state_of, on_commit
from app.core.db.types import UTCDateTime, utc_now
from app.core.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.25  # seconds
GAP_TIMEOUT = 10.0  # seconds a missing id may still turn up (a transaction not yet committed)
LAST_USE_EVERY = 30.0  # seconds between writes of last_used_at
KEEP_CHANGES = timedelta(days=1)

_NEWER = (
    select(CredentialChange.id, CredentialChange.user_id)
    .where(CredentialChange.id > bindparam("floor"))
    .order_by(CredentialChange.id)
)
_START = select(func.max(CredentialChange.id)).where(
    CredentialChange.created_at < bindparam("before", type_=UTCDateTime())
)
_SESSION_USED = (
    update(LoginSession)
    .where(LoginSession.id == bindparam("row_id"))
    .values(last_used_at=bindparam("used_at", type_=UTCDateTime()))
)
_KEY_USED = (
    update(ApiKey)
    .where(ApiKey.id == bindparam("row_id"))
    .values(last_used_at=bindparam("used_at", type_=UTCDateTime()))
)


def record_change(auth_db: AuthSession, user_id: int | None) -> None:
    """What `user_id`'s credentials allow has changed (`None`: everyone's): recorded in
    `auth_db`'s transaction, and, in this worker, their principals dropped at its commit."""
    auth_db.add(CredentialChange(user_id=user_id))
    state = app_state_of(auth_db)
    principals: PrincipalCache | None = getattr(state, "principals", None)
    if principals is not None:

        async def drop() -> None:
            principals.drop_user(user_id)

        on_commit(auth_db, drop)


async def prune_changes(auth_db: AuthSession) -> int:
    """Delete the changes older than a day (every worker has long followed them)."""
    result = await auth_db.execute(
        delete(CredentialChange).where(CredentialChange.created_at < utc_now() - KEEP_CHANGES)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


class ChangeFollower:
    """Follows `credential_changes` for one worker's `PrincipalCache`."""

    def __init__(self, auth: Database[AuthSession], principals: PrincipalCache) -> None:
        self.auth = auth
        self.principals = principals
        self.floor = 0  # every id up to here is accounted for
        self.seen: set[int] = set()  # ids above the floor already followed
        self.missing_since: dict[int, float] = {}
        self.failing = False

    async def start(self) -> None:
        """Begin from the changes old enough to be all committed: the ones after may still
        turn up with lower ids than the newest."""
        before = utc_now() - timedelta(seconds=GAP_TIMEOUT)
        (row,) = await self.auth.read(_START, {"before": before})
        self.floor = int(row[0] or 0)

    async def run(self) -> None:
        last_written = time.monotonic()
        while True:
            started = time.monotonic()
            try:
                await self.poll()
            except DatabaseUnavailable as outage:  # every request checks it again meanwhile
                if not self.failing:
                    logger.warning("cannot follow the credential changes: %s", outage.detail)
                self.failing = True
            except Exception:  # a bug, not an outage: its traceback, once
                if not self.failing:
                    logger.exception("cannot follow the credential changes")
                self.failing = True
            else:
                if self.failing:
                    logger.info("following the credential changes again")
                self.failing = False
                self.principals.fresh_until = started + FRESHNESS
            if time.monotonic() - last_written >= LAST_USE_EVERY:
                await self.write_last_use()
                last_written = time.monotonic()
            await asyncio.sleep(POLL_INTERVAL)

    async def poll(self) -> None:
        for change_id, user_id in await self.auth.read(_NEWER, {"floor": self.floor}):
            if change_id not in self.seen:
                self.seen.add(change_id)
                self.principals.drop_user(user_id)
        self._advance()

    def _advance(self) -> None:
        now = time.monotonic()
        while self.seen:
            following = self.floor + 1
            if following in self.seen:
                self.seen.remove(following)
            elif now - self.missing_since.setdefault(following, now) < GAP_TIMEOUT:
                return  # may still be committed: read from here again next time
            self.missing_since.pop(following, None)
            self.floor = following

    async def write_last_use(self) -> None:
        sessions, keys = self.principals.last_use.take()
        try:
            async with self.auth.autocommit() as connection:
                for statement, used in ((_SESSION_USED, sessions), (_KEY_USED, keys)):
                    if used:
                        await connection.execute(statement, _rows(used))
        except DatabaseUnavailable as outage:  # the next write carries them
            logger.warning("could not write last_used_at: %s", outage.detail)
            self.principals.last_use.put_back(sessions, keys)
        except Exception:
            logger.exception("could not write last_used_at")


def _rows(used: dict[int, datetime]) -> list[dict[str, object]]:
    return [{"row_id": row_id, "used_at": at} for row_id, at in used.items()]


@asynccontextmanager
async def following(auth: Database[AuthSession], principals: PrincipalCache) -> AsyncIterator[None]:
    """Follow the changes while the block runs (the app's lifespan); the last batch of
    `last_used_at` times is written at the end."""
    if not principals.enabled:
        yield
        return
    follower = ChangeFollower(auth, principals)
    with contextlib.suppress(Exception):  # a database down at start-up: run() retries
        await follower.start()
    try:
        async with in_background(follower.run(), "credential changes"):
            yield
    finally:
        await follower.write_last_use()
