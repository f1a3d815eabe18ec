"""`make faults`: take each database's server away under load, bring it back, check the books.

The auth and app databases run on two PostgreSQL clusters of their own, on free
ports, made here with initdb. Writers place orders and create projects, readers list
projects and read their account, a prober watches /health/ready. Then:

  1. the app cluster is stopped (immediate shutdown, like a crash) and started again;
  2. the auth cluster is stopped and started again.

Checks: while a server is down, requests that need it get a 503 JSON naming it, within
the pool timeout, and never a 500; requests that do not need it keep working; within
5 seconds of the server's return requests succeed again, with no restart of the
service; every write answered 2xx is in the database, and no refused order is half
written (the stock still balances). Prints the figures; exits 1 if a check fails.
"""

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tools.servers import REPO, Cluster, migrate, service_environment, uvicorn

POOL_TIMEOUT = 2.0
CONNECT_TIMEOUT = 2.0
RECOVERY_LIMIT = 5.0
STOCK = 1_000_000
PASSWORD = "fault drill password"
# The service's log of the last drill, kept for reading after a failure (CI's too).
SERVICE_LOG = REPO / "artifacts" / "faults" / "service.log"


@dataclass
class Call:
    kind: str  # order, project, list, me, ready
    sent: float
    took: float
    status: int
    body: dict[str, object] = field(default_factory=dict)
    name: str = ""


@dataclass
class Drill:
    base: str
    token: str
    product_id: int
    calls: list[Call] = field(default_factory=list)
    running: bool = True
    started: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return time.monotonic() - self.started

    async def call(
        self,
        http: httpx.AsyncClient,
        kind: str,
        method: str,
        path: str,
        name: str = "",
        **kwargs: object,
    ) -> None:
        sent = self.now()
        try:
            response = await http.request(method, path, **kwargs)  # type: ignore[arg-type]
            status = response.status_code
            body = response.json() if response.content else {}
        except httpx.HTTPError as error:  # a hang or a dropped connection: never acceptable
            status, body = 0, {"error": repr(error)}
        self.calls.append(Call(kind, sent, self.now() - sent, status, body, name))

    async def writer(self, number: int) -> None:
        async with httpx.AsyncClient(
            base_url=self.base, timeout=15, headers={"Authorization": f"Bearer {self.token}"}
        ) as http:
            sequence = 0
            while self.running:
                sequence += 1
                name = f"w{number}-{sequence}"
                await self.call(
                    http, "project", "POST", "/api/v1/projects", name=name, json={"name": name}
                )
                await self.call(
                    http,
                    "order",
                    "POST",
                    "/api/v1/orders",
                    json={"items": [{"product_id": self.product_id, "quantity": 1}]},
                )
                await asyncio.sleep(0.02)

    async def reader(self, kind: str, path: str) -> None:
        async with httpx.AsyncClient(
            base_url=self.base, timeout=15, headers={"Authorization": f"Bearer {self.token}"}
        ) as http:
            while self.running:
                await self.call(http, kind, "GET", path)
                await asyncio.sleep(0.05)


async def seed(base: str, app: Cluster) -> tuple[str, int]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        (
            await http.post(
                "/api/v1/auth/register",
                json={"email": "drill@faults.example", "password": PASSWORD},
            )
        ).raise_for_status()
        token = (
            await http.post(
                "/api/v1/auth/login",
                data={"username": "drill@faults.example", "password": PASSWORD},
            )
        ).json()["access_token"]
    insert = (
        "INSERT INTO products (sku, name, price, stock, created_at, updated_at) "
        f"VALUES ('DRILL-1', 'Drill stock', 1.00, {STOCK:d}, now(), now()) RETURNING id"
    )
    product_id = int(app.psql(insert).splitlines()[0])
    return str(token), product_id


async def outage(drill: Drill, cluster: Cluster, down_for: float) -> tuple[float, float, float]:
    """Stop the cluster for `down_for` seconds; returns when the stop began, when the
    server was down, and when it was back."""
    stopping = drill.now()
    await asyncio.to_thread(cluster.stop)
    stopped = drill.now()
    await asyncio.sleep(down_for)
    await asyncio.to_thread(cluster.start)
    return stopping, stopped, drill.now()


APP_KINDS = {"order", "project", "list"}
AUTH_KINDS = {"order", "project", "list", "me"}  # every route signs the caller in


def check_phase(
    name: str,
    database: str,
    calls: list[Call],
    stopped: float,
    back: float,
    until: float,
    needs: set[str],
) -> tuple[list[str], dict[str, object]]:
    problems: list[str] = []
    during = [call for call in calls if stopped <= call.sent and call.sent + call.took <= back]
    for call in during:
        if call.kind in needs and call.status != 503 and not 200 <= call.status < 300:
            problems.append(f"{name}: {call.kind} got {call.status} {call.body}")
        named = call.body.get("code") == "database_unavailable" and (
            call.body.get("database") == database
        )
        if call.status == 503 and call.kind != "ready" and not named:
            problems.append(f"{name}: 503 without naming {database}: {call.body}")
        if call.kind not in needs and call.kind != "ready" and not 200 <= call.status < 300:
            problems.append(
                f"{name}: {call.kind} should not need the {database} database, "
                f"got {call.status} {call.body}"
            )
    refused = [call for call in during if call.status == 503 and call.kind != "ready"]
    if not refused:
        problems.append(f"{name}: no request was refused while the {database} database was down")
    ready = [call for call in during if call.kind == "ready"]
    if not any(
        call.status == 503 and call.body.get("detail") == f"database unavailable: {database}"
        for call in ready
    ):
        problems.append(f"{name}: /health/ready never named the {database} database")
    # Calls answered before the next phase began: one still in flight when the other
    # server is stopped can fail because of that outage, not this one.
    after = [
        call
        for call in calls
        if back <= call.sent and call.sent + call.took < until and call.kind in needs
    ]
    failing_after = [call for call in after if not 200 <= call.status < 300]
    last_failure = max((call.sent + call.took for call in failing_after), default=back)
    recovery = last_failure - back
    if recovery > RECOVERY_LIMIT:
        problems.append(f"{name}: requests still failed {recovery:.1f} s after the server's return")
        problems += [
            f"{name}: +{call.sent - back:.1f} s {call.kind} got {call.status} {call.body}"
            for call in failing_after[-3:]
        ]
    if not any(200 <= call.status < 300 for call in after):
        problems.append(f"{name}: no request succeeded after the server's return")
    slowest = max((call.took for call in refused), default=0.0)
    if slowest > POOL_TIMEOUT + CONNECT_TIMEOUT + 1:
        problems.append(f"{name}: a refusal took {slowest:.1f} s (pool timeout {POOL_TIMEOUT} s)")
    figures = {
        "phase": name,
        "requests": len(during),
        "refused_503": len(refused),
        "slowest_refusal_s": round(slowest, 2),
        "recovery_s": round(max(recovery, 0), 2),
    }
    return problems, figures


def check_books(
    calls: list[Call], app: Cluster, product_id: int
) -> tuple[list[str], dict[str, int]]:
    problems: list[str] = []
    stored = set(app.psql("SELECT name FROM projects").splitlines())
    acknowledged = {call.name for call in calls if call.kind == "project" and call.status == 201}
    refused = {call.name for call in calls if call.kind == "project" and call.status == 503}
    missing = acknowledged - stored
    if missing:
        problems.append(
            f"{len(missing)} projects answered 201 are not stored: {sorted(missing)[:5]}"
        )
    order_ids = {
        int(str(call.body["id"])) for call in calls if call.kind == "order" and call.status == 201
    }
    stored_orders = {int(line) for line in app.psql("SELECT id FROM orders").splitlines()}
    if order_ids - stored_orders:
        problems.append(f"{len(order_ids - stored_orders)} orders answered 201 are not stored")
    stock = int(app.psql(f"SELECT stock FROM products WHERE id = {product_id:d}"))
    sold = int(app.psql("SELECT coalesce(sum(quantity), 0) FROM order_items") or 0)
    if stock + sold != STOCK:
        problems.append(f"stock does not balance: {stock} left + {sold} sold != {STOCK}")
    figures = {
        "projects_acknowledged": len(acknowledged),
        "projects_refused": len(refused),
        "refused_but_stored": len(refused & stored),
        "orders_acknowledged": len(order_ids),
        "orders_stored": len(stored_orders),
    }
    return problems, figures


async def drill() -> int:
    root = Path(tempfile.mkdtemp(prefix="dualbase-faults-"))
    SERVICE_LOG.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    auth, app = Cluster("auth", root), Cluster("app", root)
    auth.create()
    app.create()
    try:
        env = service_environment(
            auth.url,
            app.url,
            DB_POOL_TIMEOUT=str(POOL_TIMEOUT),
            DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
            HEALTH_CHECK_TIMEOUT="1",
        )
        migrate(env)
        with uvicorn("app.main:create_app", env, log=SERVICE_LOG) as base:
            token, product_id = await seed(base, app)
            state = Drill(base, token, product_id)
            load = [asyncio.create_task(state.writer(number)) for number in range(6)]
            load += [
                asyncio.create_task(state.reader("list", "/api/v1/projects?limit=5"))
                for _ in range(2)
            ]
            load += [asyncio.create_task(state.reader("me", "/api/v1/users/me")) for _ in range(2)]
            load.append(asyncio.create_task(state.reader("ready", "/health/ready")))
            await asyncio.sleep(3)
            _, app_stopped, app_back = await outage(state, app, 5)
            await asyncio.sleep(7)
            auth_stopping, auth_stopped, auth_back = await outage(state, auth, 5)
            await asyncio.sleep(7)
            state.running = False
            await asyncio.gather(*load)
        calls = state.calls
        problems, app_figures = check_phase(
            "app outage", "app", calls, app_stopped, app_back, auth_stopping, APP_KINDS
        )
        auth_problems, auth_figures = check_phase(
            "auth outage", "auth", calls, auth_stopped, auth_back, state.now(), AUTH_KINDS
        )
        book_problems, books = check_books(calls, app, product_id)
        problems += auth_problems + book_problems
        hangs = [call for call in calls if call.status == 0]
        errors = [call for call in calls if call.status >= 500 and call.status != 503]
        problems += [f"no answer: {call.kind} {call.body}" for call in hangs[:5]]
        problems += [f"{call.status}: {call.kind} {call.body}" for call in errors[:5]]
        service_log = SERVICE_LOG.read_text()
        if "Traceback" in service_log:
            problems.append("the service logged a traceback")
    finally:
        for cluster in (auth, app):
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"\nrequests sent: {len(calls)}; 2xx: {sum(200 <= c.status < 300 for c in calls)}; "
        f"503: {sum(c.status == 503 for c in calls)}; other 5xx: {len(errors)}; "
        f"no answer: {len(hangs)}"
    )
    print("| phase | requests while down | refused (503) | slowest refusal s | recovery s |")
    print("|---|---|---|---|---|")
    for figures in (app_figures, auth_figures):
        print(
            f"| {figures['phase']} | {figures['requests']} | {figures['refused_503']} | "
            f"{figures['slowest_refusal_s']} | {figures['recovery_s']} |"
        )
    print("books: " + ", ".join(f"{key} {value}" for key, value in books.items()))
    for problem in problems:
        print("PROBLEM: " + problem)
    print("\nFAULTS " + ("FAILED" if problems else "PASSED"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(drill()))
