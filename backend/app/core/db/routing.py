"""Where a request's statements go: reads of GET requests outside any transaction, read
replicas, and read-your-writes.

The rules, applied by `RoutingSession.get_bind` statement by statement:

- the sessions of GET and HEAD requests read on autocommit connections: no BEGIN and
  COMMIT round trips for a request that only reads, and no write lock taken on SQLite.
  Each statement sees what was committed when it started, as it would inside a
  transaction at PostgreSQL's default isolation (on MariaDB's REPEATABLE READ, two reads
  of one GET no longer share a snapshot);
- with `<NAME>_DATABASE_REPLICA_URLS`, those reads go to a replica (a `Replica` per URL);
  every other request, every script and worker, and the credential check use the primary;
- a write (an INSERT, UPDATE or DELETE, a flush, a `SELECT ... FOR UPDATE`) goes to the
  primary, and so does every read of that session after it;
- a caller (login session or API key) whose request wrote reads from the primary for
  REPLICA_STICKY_SECONDS afterwards, on every worker (`Stickiness`), so that nobody
  misses their own writes while a replica catches up;
- a replica that is down, or lags more than REPLICA_MAX_LAG_SECONDS, is skipped until
  `ReplicaMonitor` finds it fit again; with none fit, reads go to the primary.
"""

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import Select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Session

from app.core.background import in_background
from app.core.db.failures import is_outage

logger = logging.getLogger(__name__)

ReplicaStatus = Literal["unknown", "up", "lagging", "down"]
ROUTE = "read_route"  # the key of a session's `ReadRoute` in `session.info`

# How far a PostgreSQL standby is behind: nothing when it has replayed all it received
# (an idle primary sends nothing, so the last replay may be old), else the age of the
# last transaction it replayed.
_POSTGRES_LAG = text(
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


@dataclass(eq=False)
class Replica:
    """One read replica of a database, and what the monitor last found."""

    label: str  # host:port/database, never the password
    engine: AsyncEngine
    status: ReplicaStatus = "unknown"
    lag_seconds: float | None = None
    error: str | None = None

    @property
    def fit(self) -> bool:
        return self.status == "up"

    def record(self, status: ReplicaStatus, lag: float | None, error: str | None) -> None:
        """What a check found; a change is logged."""
        before = self.status
        self.status, self.lag_seconds, self.error = status, lag, error
        if status != before:
            logger.log(
                logging.INFO if status == "up" else logging.WARNING,
                "replica %s is %s",
                self.label,
                status,
                extra={"replica": self.label, "lag_seconds": lag},
            )

    def mark_down(self, exc: BaseException) -> None:
        self.record("down", None, type(exc).__name__)


@dataclass(eq=False)
class ReplicaSet:
    """The replicas of one database, handed out in turn among those fit to read."""

    replicas: tuple[Replica, ...]
    _turns: Iterator[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._turns = itertools.cycle(range(len(self.replicas)))

    def pick(self) -> Replica | None:
        for _ in self.replicas:
            replica = self.replicas[next(self._turns)]
            if replica.fit:
                return replica
        return None

    @property
    def degraded(self) -> bool:
        return any(not replica.fit for replica in self.replicas)


class Stickiness(Protocol):
    """Where "this caller wrote a moment ago" is kept, for every worker to see."""

    async def mark(self, caller: str, seconds: float) -> None: ...

    async def is_sticky(self, caller: str) -> bool: ...


class MemoryStickiness:
    """Stickiness in this process only: right with one worker. With several, the app
    is given one on the cache, which every worker shares."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def mark(self, caller: str, seconds: float) -> None:
        now = time.monotonic()
        self._until = {key: until for key, until in self._until.items() if until > now}
        self._until[caller] = now + seconds

    async def is_sticky(self, caller: str) -> bool:
        return self._until.get(caller, 0.0) > time.monotonic()


@dataclass(eq=False)
class ReadRoute:
    """What a request's session knows to route its statements: where its plain reads may
    go, whether its caller wrote a moment ago, and whether it has written itself."""

    primary_reads: Engine | None = None  # the primary, autocommit (None: reads in the transaction)
    replica: AsyncConnection | None = None
    # Asked at each read, since the credential check may run after the session is made.
    caller_wrote_lately: Callable[[], bool] = lambda: False
    wrote: bool = False

    def bind_for_read(self) -> Engine | Connection | None:
        """The bind of a plain read; None: the session's own (transactional) primary."""
        if self.wrote:
            return None
        if self.replica is not None and not self.caller_wrote_lately():
            return self.replica.sync_connection
        return self.primary_reads


async def replica_connection(
    replicas: ReplicaSet, stack: contextlib.AsyncExitStack
) -> AsyncConnection | None:
    """A connection to a fit replica, closed with `stack`; None when none is fit, or when
    the one picked does not answer (it is marked down at once: reads use the primary)."""
    replica = replicas.pick()
    if replica is None:
        return None
    try:
        return await stack.enter_async_context(replica.engine.connect())
    except Exception as exc:
        if not is_outage(exc):
            raise
        replica.mark_down(exc)
        return None


class RoutingSession(Session):
    """A session that sends the reads its `ReadRoute` allows where the route says, and
    everything else to its own bind, the primary. Without a route it is a plain session."""

    def get_bind(self, mapper: Any = None, clause: Any = None, **kw: Any) -> Engine | Connection:
        route: ReadRoute | None = self.info.get(ROUTE)
        if route is not None:
            if self._flushing or not _is_plain_read(clause):
                route.wrote = True
            else:
                bind = route.bind_for_read()
                if bind is not None:
                    return bind
        return super().get_bind(mapper, clause=clause, **kw)


def _is_plain_read(clause: Any) -> bool:
    # A SELECT that locks nothing; anything else (DML, text, SELECT ... FOR UPDATE) is
    # treated as a write.
    return isinstance(clause, Select) and clause._for_update_arg is None


@asynccontextmanager
async def monitoring(
    replicas: list[Replica], *, max_lag: float, check_timeout: float
) -> AsyncIterator[None]:
    """Keep checking `replicas` while the block runs; the first check is done before it
    starts, so that the first requests already know which replicas are fit."""
    if not replicas:
        yield
        return
    monitor = ReplicaMonitor(replicas, max_lag=max_lag, timeout=check_timeout)
    await monitor.check_all()
    async with in_background(monitor.run(), "replica monitor"):
        yield


class ReplicaMonitor:
    """Checks every replica every `interval` seconds: down when it does not answer within
    `timeout`, lagging when it is more than `max_lag` seconds behind, else up."""

    def __init__(
        self, replicas: list[Replica], *, max_lag: float, timeout: float, interval: float = 1.0
    ) -> None:
        self.replicas = replicas
        self.max_lag = max_lag
        self.timeout = timeout
        self.interval = interval

    async def run(self) -> None:
        while True:
            await self.check_all()
            await asyncio.sleep(self.interval)

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(replica) for replica in self.replicas))

    async def check(self, replica: Replica) -> None:
        try:
            async with asyncio.timeout(self.timeout), replica.engine.connect() as connection:
                lag = float(await connection.scalar(_POSTGRES_LAG) or 0.0)
        except Exception as exc:  # any failure: not fit to read from
            replica.mark_down(exc)
        else:
            replica.record("lagging" if lag > self.max_lag else "up", round(lag, 3), None)
