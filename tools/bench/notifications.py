"""`python -m tools.bench.notifications` (from the repository root): a user's unread count
and first page of notifications with 1,000 and with 1,000,000 notifications in the table,
on PostgreSQL.

Two auth databases, migrated, each served by its own uvicorn worker (one app database
shared): "small" holds 1,000 notifications, "large" 1,000,000. In each, a member signed
in through the API and 10,000 other users; the member holds 100 notifications (the
newest 50 unread), the average share of 10,001 users in a million rows, spread evenly
over the table; the rest go round robin to the other users, half of them read. Rows are
inserted by `INSERT ... SELECT ... FROM generate_series`, then VACUUM ANALYZEd (what
autovacuum does to a table that grew).

Measured for both sizes, in alternating rounds so that the machine's drift hits both
alike: `GET /api/v1/notifications/unread-count`, `GET /api/v1/notifications?unread=true`
and `GET /api/v1/notifications` (first pages of 20), one request at a time
(BENCH_NOTIFICATION_REQUESTS each, after 50 unmeasured); and the same SQL statements run
alone through asyncpg (what the index does, without HTTP and authentication). Prints
p50 and p99; target: each large p50 within 1.3 times the small one. Exits 1 if missed.
BENCH_POSTGRES_URL picks the server; the servers' logs go to artifacts/bench/.
"""

import asyncio
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from functools import partial

import asyncpg
import httpx
from asyncpg.prepared_stmt import PreparedStatement
from jose import jwt

from tools.servers import REPO, fresh_database, migrate, service_environment, uvicorn

AUTH_DB, APP_DB = "dualbase_bench_notifications_auth", "dualbase_bench_notifications_app"
EMAIL = "member@bench.example"
PASSWORD = "benchmark password"
ARTIFACTS = REPO / "artifacts" / "bench"
REQUESTS = int(os.environ.get("BENCH_NOTIFICATION_REQUESTS", "2000"))
QUERIES = 4000
ROUNDS = 10
OTHER_USERS = 10_000
OWN, OWN_UNREAD = 100, 50
TARGET = 1.3
API = "/api/v1/notifications"

# The statements the service runs (app/essentials/notifications/service.py).
SQL = {
    "unread count": ("SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL"),
    "unread, page 1": (
        "SELECT id, type, user_id, data, read_at, created_at FROM notifications "
        "WHERE user_id = $1 AND read_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 21"
    ),
    "all, page 1": (
        "SELECT id, type, user_id, data, read_at, created_at FROM notifications "
        "WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 21"
    ),
}
ENDPOINTS = {
    "unread count": f"{API}/unread-count",
    "unread, page 1": f"{API}?unread=true",
    "all, page 1": API,
}


async def seed_users(connection: asyncpg.Connection) -> None:
    await connection.execute(
        """
        INSERT INTO users (email, hashed_password, is_active, is_superuser, created_at, updated_at)
        SELECT 'user' || g || '@bench.example', 'not a hash', true, false, now(), now()
        FROM generate_series(1, $1) AS g
        """,
        OTHER_USERS,
    )


async def seed_notifications(connection: asyncpg.Connection, member_id: int, rows: int) -> None:
    """`rows` notifications, newest first by `g`: every (rows / OWN)th one the member's
    (so theirs are spread over the table as a user's are, the newest OWN_UNREAD unread),
    the others round robin over the other users (whose ids follow each other), every
    other one read."""
    first = await connection.fetchval(
        "SELECT min(id) FROM users WHERE email LIKE 'user%@bench.example'"
    )
    step = rows // OWN
    batch = 200_000
    for offset in range(0, rows, batch):
        await connection.execute(
            """
            INSERT INTO notifications (id, type, user_id, data, read_at, created_at)
            SELECT gen_random_uuid()::text, 'bench.ping',
                   CASE WHEN g % $3 = 0 THEN $4 ELSE $5 + g % $6 END,
                   '{"n":' || g || '}',
                   CASE WHEN g % $3 = 0 THEN (CASE WHEN g / $3 > $7 THEN now() END)
                        WHEN g % 2 = 0 THEN now() END,
                   now() - make_interval(secs => g)
            FROM generate_series($1::bigint, $2::bigint) AS g
            """,
            offset + 1,
            min(offset + batch, rows),
            step,
            member_id,
            first,
            OTHER_USERS,
            OWN_UNREAD,
        )
    # What autovacuum does to a table that grew: statistics, and the visibility map
    # that lets the count answer from the index alone.
    await connection.execute("VACUUM ANALYZE notifications")


def percentile(samples: list[float], percent: int) -> float:
    return statistics.quantiles(samples, n=100)[percent - 1]


@dataclass
class Side:
    """One table size: its service, a connection to its auth database, its member."""

    rows: int
    http: httpx.AsyncClient
    connection: asyncpg.Connection
    member_id: int
    statements: dict[str, PreparedStatement] = field(default_factory=dict)
    answers: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    queries: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    async def get(self, question: str) -> None:
        response = await self.http.get(ENDPOINTS[question])
        response.raise_for_status()

    async def query(self, question: str) -> None:
        await self.statements[question].fetch(self.member_id)


async def prepare(stack: AsyncExitStack, base: str, auth_url: str, rows: int) -> Side:
    """Sign the member in on the service at `base`, and fill its auth database."""
    http = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=30))
    registered = await http.post(
        "/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD}
    )
    registered.raise_for_status()
    tokens = await http.post("/api/v1/auth/login", data={"username": EMAIL, "password": PASSWORD})
    tokens.raise_for_status()
    token = tokens.json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    connection = await asyncpg.connect(auth_url)
    stack.push_async_callback(connection.close)
    side = Side(rows, http, connection, int(jwt.get_unverified_claims(token)["sub"]))
    await seed_users(connection)
    await seed_notifications(connection, side.member_id, rows)
    counts = await connection.fetchrow(
        "SELECT count(*), count(*) FILTER (WHERE user_id = $1),"
        " count(*) FILTER (WHERE user_id = $1 AND read_at IS NULL) FROM notifications",
        side.member_id,
    )
    assert tuple(counts) == (rows, OWN, OWN_UNREAD), counts
    for question, sql in SQL.items():
        side.statements[question] = await connection.prepare(sql)
    return side


async def timed(call: Callable[[], Awaitable[None]], runs: int, into: list[float]) -> None:
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        into.append((time.perf_counter() - started) * 1000)


async def main() -> int:
    app_url = fresh_database(APP_DB)
    urls = {size: fresh_database(f"{AUTH_DB}_{size}") for size in ("small", "large")}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as servers:
        bases = {}
        for size, auth_url in urls.items():
            env = service_environment(auth_url, app_url)
            migrate(env)
            log = ARTIFACTS / f"notifications-{size}.log"
            bases[size] = servers.enter_context(uvicorn("app.main:create_app", env, log=log))
        async with AsyncExitStack() as stack:
            small = await prepare(stack, bases["small"], urls["small"], 1_000)
            started = time.perf_counter()
            large = await prepare(stack, bases["large"], urls["large"], 1_000_000)
            seeded_in = time.perf_counter() - started
            for side in (small, large):
                for question in SQL:
                    await timed(partial(side.get, question), 50, [])
                    await timed(partial(side.query, question), 50, [])
            for _ in range(ROUNDS):
                for side in (small, large):
                    for question in SQL:
                        await timed(
                            partial(side.get, question), REQUESTS // ROUNDS, side.answers[question]
                        )
                        await timed(
                            partial(side.query, question),
                            QUERIES // ROUNDS,
                            side.queries[question],
                        )
            plan = await large.connection.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) {SQL['unread count']}", large.member_id
            )
    return report(small, large, seeded_in, [row[0] for row in plan])


def report(small: Side, large: Side, seeded_in: float, plan: list[str]) -> int:
    print(
        f"notifications: {small.rows:,} and {large.rows:,} rows (the large table filled in "
        f"{seeded_in:.0f} s); the member holds {OWN} ({OWN_UNREAD} unread); "
        f"{REQUESTS} requests and {QUERIES} queries per question and size, one at a time, "
        f"in {ROUNDS} alternating rounds"
    )
    print(
        f"| {'question':<15}| {'HTTP p50 ms':>17} | {'HTTP p99 ms':>17} | "
        f"{'SQL p50 ms':>17} | {'p50 ratio HTTP, SQL':>19} |"
    )
    print(f"|{'-' * 16}|{'-' * 19}|{'-' * 19}|{'-' * 19}|{'-' * 21}|")
    missed = []
    for question in SQL:
        http = [statistics.median(side.answers[question]) for side in (small, large)]
        p99 = [percentile(side.answers[question], 99) for side in (small, large)]
        sql = [statistics.median(side.queries[question]) for side in (small, large)]
        ratios = (http[1] / http[0], sql[1] / sql[0])
        print(
            f"| {question:<15}| {http[0]:>7.2f} -> {http[1]:>6.2f} | "
            f"{p99[0]:>7.2f} -> {p99[1]:>6.2f} | {sql[0]:>7.3f} -> {sql[1]:>6.3f} | "
            f"{ratios[0]:>8.2f}, {ratios[1]:>8.2f} |"
        )
        if max(ratios) > TARGET:
            missed.append(question)
    print("the unread count's plan with 1,000,000 rows:")
    for line in plan:
        print(f"    {line}")
    if missed:
        print(f"target missed (large p50 within {TARGET} x small): {', '.join(missed)}")
        return 1
    print(f"target met: every large p50 within {TARGET} x the small one")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
