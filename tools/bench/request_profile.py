"""Where one request's CPU goes, by library: `GET /api/v1/projects`, signed in.

    python -m tools.bench.request_profile         (make bench runs it; PostgreSQL)

The app is called as uvicorn calls it (an ASGI scope, `receive`, `send`), in this
process, 3,000 times after 300 unmeasured calls, under cProfile. Each function's own
time is charged to the library that defines it (fastapi, starlette, pydantic,
sqlalchemy, asyncpg, the service's `app`, logging, the event loop...), so the table
says which layer a change must thin. cProfile slows calls down about evenly; the
shares matter, the absolute figures less (the step table has those).
"""

import asyncio
import cProfile
import os
import pstats
import sys
import time
from collections import defaultdict
from typing import Any

import httpx

from tools.bench.load import seed_projects
from tools.servers import BACKEND, database_url, fresh_database, migrate, service_environment

AUTH_DB, APP_DB = "dualbase_profile_auth", "dualbase_profile_app"
CALLS = 3000
LIBRARIES = (
    "fastapi",
    "starlette",
    "pydantic_core",
    "pydantic",
    "sqlalchemy",
    "asyncpg",
    "jose",
    "anyio",
    "opentelemetry",
    "prometheus_client",
    "json",
    "logging",
    "asyncio",
    "contextlib",
    "typing",
    "inspect",
)


def library_of(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    path = filename.replace("\\", "/")
    if f"{BACKEND}/app/" in path:
        return "app (the service)"
    for name in LIBRARIES:
        if f"/{name}/" in path or path.endswith(f"/{name}.py"):
            return name
    return "other"


async def asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    return status


async def main() -> None:
    env = service_environment(fresh_database(AUTH_DB), fresh_database(APP_DB))
    migrate(env)
    os.environ.update(env)
    os.chdir(BACKEND)
    sys.path.insert(0, str(BACKEND))
    from app.main import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            credentials = {"email": "profile@bench.example", "password": "correct horse 42"}
            (await http.post("/api/v1/auth/register", json=credentials)).raise_for_status()
            form = {"username": credentials["email"], "password": credentials["password"]}
            tokens = await http.post("/api/v1/auth/login", data=form)
            token = tokens.json()["access_token"]
            me = await http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            await seed_projects(database_url(APP_DB), me.json()["id"], 1000)
        headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
        # Each request's log line is still formatted and written, to /dev/null.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115, ASYNC230  (a device, for the run)
        for _ in range(CALLS // 10):
            assert await asgi_get(app, "/api/v1/projects", headers) == 200
        started = time.process_time()
        for _ in range(CALLS):
            await asgi_get(app, "/api/v1/projects", headers)
        plain = (time.process_time() - started) / CALLS * 1e6
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(CALLS):
            await asgi_get(app, "/api/v1/projects", headers)
        profiler.disable()
    sys.stderr = sys.__stderr__
    stats = pstats.Stats(profiler)
    by_library: dict[str, float] = defaultdict(float)
    by_function: dict[str, float] = defaultdict(float)
    for (filename, line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        own = row[2]
        library = library_of(filename)
        by_library[library] += own
        by_function[f"{library}: {os.path.basename(filename)}:{line} {function}"] += own
    total = sum(by_library.values())
    print(f"\nGET /api/v1/projects in-process: {plain:.0f} us of CPU per request (no profiler)")
    print(f"\n| {'library (own time under cProfile)':<40}| {'share':>6} |")
    print(f"|{'-' * 41}|{'-' * 8}|")
    for library, seconds in sorted(by_library.items(), key=lambda item: -item[1]):
        print(f"| {library:<40}| {seconds / total:>6.1%} |")
    print("\nthe 15 functions with the most own time:")
    for name, seconds in sorted(by_function.items(), key=lambda item: -item[1])[:15]:
        print(f"  {seconds / total:>6.1%}  {name}")


if __name__ == "__main__":
    asyncio.run(main())
