"""Run by bench/activity.py (from backend/): p50 and mean of `POST /api/v1/projects`,
audited and not, through the whole application in this process (httpx's ASGI
transport: no network, so the difference is the server's own work).

One signed-in user; 100 unmeasured requests, then rounds of 200 requests audited and
200 under `without_logs()`, the order alternating each round, so that a slow moment of
the machine falls on both.
"""

import asyncio
import statistics
import time
from contextlib import AbstractContextManager, nullcontext

import httpx
from app.core.config import Settings
from app.essentials.activity.recording import without_logs
from app.main import create_app

ROUNDS, REQUESTS, WARM_UP = 5, 200, 100
API = "http://bench/api/v1"


async def timed(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[float]:
    times = []
    for number in range(count):
        started = time.perf_counter()
        response = await client.post(
            f"{API}/projects", json={"name": f"Project {number}"}, headers=headers
        )
        times.append(time.perf_counter() - started)
        assert response.status_code == 201, response.text
    return times


async def main() -> None:
    app = create_app(Settings())
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport) as client:
        account = {"email": "bench@example.com", "password": "correct horse battery"}
        assert (await client.post(f"{API}/auth/register", json=account)).status_code == 201
        form = {"username": account["email"], "password": account["password"]}
        login = await client.post(f"{API}/auth/login", data=form)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        await timed(client, headers, WARM_UP)
        results: dict[str, list[float]] = {"audited": [], "not audited": []}
        for round_number in range(ROUNDS):
            modes = list(results)
            for mode in modes if round_number % 2 == 0 else modes[::-1]:
                pause: AbstractContextManager[None] = (
                    without_logs() if mode == "not audited" else nullcontext()
                )
                with pause:
                    results[mode] += await timed(client, headers, REQUESTS)
        medians = {mode: statistics.median(times) * 1000 for mode, times in results.items()}
        for mode, times in results.items():
            print(
                f"POST /api/v1/projects, {mode:<11}: p50 {medians[mode]:.2f} ms, "
                f"mean {statistics.fmean(times) * 1000:.2f} ms ({len(times)} requests)"
            )
        overhead = medians["audited"] - medians["not audited"]
        print(
            f"auditing costs {overhead:.2f} ms per write at p50 "
            f"({medians['audited'] / medians['not audited']:.2f}x)"
        )


if __name__ == "__main__":
    asyncio.run(main())
