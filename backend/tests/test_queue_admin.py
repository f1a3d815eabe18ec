"""/api/v1/queue and the /admin/queue page: for holders of `queue:admin` only."""

import httpx
import pytest

from app.essentials.queue.backend import WorkerInfo
from app.essentials.queue.jobs import JobMessage
from tests.accounts import API, Account, an_admin, assert_error, signed_up
from tests.queue_jobs import fail, record
from tests.queue_support import Harness

QUEUE = f"{API}/queue"


async def failed_jobs(harness: Harness, *messages: str) -> dict[str, int]:
    """Jobs that fail for good with these messages; their failed ids by message."""
    for message in messages:
        await harness.queue.dispatch(fail, message=message)
    await harness.work_off()
    return {
        row.exception.rstrip().rsplit(": ", 1)[1]: row.id
        for row in await harness.queue.failed(limit=100)
    }


async def admin(client: httpx.AsyncClient, harness: Harness) -> Account:
    return await an_admin(client, harness.app)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/status"),
        ("GET", "/running"),
        ("GET", "/failed"),
        ("POST", "/failed/1/retry"),
        ("POST", "/failed/retry-all"),
        ("DELETE", "/failed/1"),
    ],
)
async def test_the_queue_is_for_admins_only(
    client: httpx.AsyncClient, harness: Harness, method: str, path: str
) -> None:
    member = await signed_up(client, "member@example.com")

    anonymous = await client.request(method, f"{QUEUE}{path}")
    refused = await client.request(method, f"{QUEUE}{path}", headers=member.headers)

    assert_error(anonymous, 401, "not_authenticated")
    assert_error(refused, 403, "permission_denied")
    assert refused.json()["detail"] == "Requires permission: queue:admin"


async def test_status_counts_each_queue_and_lists_the_workers(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    boss = await admin(client, harness)
    await failed_jobs(harness, "broken")
    await harness.queue.dispatch(record)
    await harness.queue.dispatch(record, delay=3600, queue="mail")
    worker_id = await harness.queue.backend.register(WorkerInfo("box-1", 42, ["default"], 3))

    status = await client.get(f"{QUEUE}/status", headers=boss.headers)

    assert status.status_code == 200, status.text
    body = status.json()
    assert body["queues"] == [
        {"queue": "default", "ready": 1, "delayed": 0, "running": 0, "failed": 1},
        {"queue": "mail", "ready": 0, "delayed": 1, "running": 0, "failed": 0},
    ]
    (worker,) = body["workers"]
    assert (worker["id"], worker["hostname"], worker["pid"]) == (worker_id, "box-1", 42)
    assert (worker["queues"], worker["concurrency"]) == ("default", 3)


async def test_running_jobs_are_listed_with_their_worker(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    boss = await admin(client, harness)
    uuid = await harness.queue.dispatch(record)
    worker_id = await harness.queue.backend.register(WorkerInfo("box-1", 42, ["default"], 3))
    await harness.queue.backend.reserve(worker_id, ["default"], 5)

    running = await client.get(f"{QUEUE}/running", headers=boss.headers)

    assert running.status_code == 200, running.text
    (job,) = running.json()
    assert (job["uuid"], job["name"], job["queue"]) == (uuid, "test.record", "default")
    assert (job["attempts"], job["max_attempts"], job["worker_id"]) == (1, 3, worker_id)
    assert job["reserved_at"] is not None
    await harness.queue.backend.deregister(worker_id)
    too_many = await client.get(f"{QUEUE}/running?limit=501", headers=boss.headers)
    assert_error(too_many, 422, "validation_error")


async def test_failed_jobs_come_newest_first_in_pages_with_their_error(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    boss = await admin(client, harness)
    ids = await failed_jobs(harness, "one", "two", "three")

    first = await client.get(f"{QUEUE}/failed?limit=2", headers=boss.headers)
    assert first.status_code == 200, first.text
    page = first.json()
    second = await client.get(
        f"{QUEUE}/failed?limit=2&cursor={page['next_cursor']}", headers=boss.headers
    )

    listed = [*page["items"], *second.json()["items"]]
    assert [item["id"] for item in listed] == sorted(ids.values(), reverse=True)
    assert second.json()["next_cursor"] is None
    item = listed[0]
    assert item["name"] == "test.fail"
    assert item["payload"].startswith('{"message":')
    assert item["exception"].startswith("Traceback (most recent call last):")
    assert (item["attempts"], item["max_attempts"], item["batch_id"]) == (1, 1, None)
    bad = await client.get(f"{QUEUE}/failed?cursor=not-a-cursor", headers=boss.headers)
    assert_error(bad, 400, "invalid_cursor")


async def test_a_retried_failed_job_is_queued_again_and_an_unknown_one_is_404(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    boss = await admin(client, harness)
    ids = await failed_jobs(harness, "one", "two", "three")

    retried = await client.post(f"{QUEUE}/failed/{ids['one']}/retry", headers=boss.headers)
    again = await client.post(f"{QUEUE}/failed/{ids['one']}/retry", headers=boss.headers)

    assert (retried.status_code, retried.json()) == (200, {"retried": 1})
    assert_error(again, 404, "not_found")
    assert again.json()["detail"] == "Failed job not found"
    (counts,) = (await client.get(f"{QUEUE}/status", headers=boss.headers)).json()["queues"]
    assert (counts["ready"], counts["failed"]) == (1, 2)
    everything = await client.post(f"{QUEUE}/failed/retry-all", headers=boss.headers)
    assert everything.json() == {"retried": 2}
    assert await harness.failed_jobs() == 0
    assert await harness.jobs_left() == 3


async def test_a_forgotten_failed_job_is_gone(client: httpx.AsyncClient, harness: Harness) -> None:
    boss = await admin(client, harness)
    ids = await failed_jobs(harness, "one")

    forgotten = await client.delete(f"{QUEUE}/failed/{ids['one']}", headers=boss.headers)
    again = await client.delete(f"{QUEUE}/failed/{ids['one']}", headers=boss.headers)

    assert forgotten.status_code == 204
    assert_error(again, 404, "not_found")
    assert await harness.failed_jobs() == 0
    assert await harness.jobs_left() == 0
    for bad in ("0", "x", str(2**63)):
        assert_error(
            await client.delete(f"{QUEUE}/failed/{bad}", headers=boss.headers),
            422,
            "validation_error",
        )


async def test_the_admin_page_and_its_assets_are_served_with_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/admin/queue")
    script = await client.get("/admin/queue/assets/queue.js")
    style = await client.get("/admin/queue/assets/queue.css")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="queue/assets/queue.js" defer></script>' in page.text
    assert "https://" not in page.text
    assert (script.status_code, style.status_code) == (200, 200)
    assert script.headers["content-type"].startswith("text/javascript")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "'unsafe-inline'" not in policy
    assert "connect-src 'self'" in policy
    assert script.headers["content-security-policy"] == policy
    assert page.headers["x-frame-options"] == "DENY"


async def test_the_stray_payload_of_a_failed_job_is_shown_as_stored(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    boss = await admin(client, harness)
    stray = record.message()
    markup = "<script>alert(1)</script>"
    await harness.queue.backend.push(
        [JobMessage(stray.uuid, stray.name, markup, stray.options, stray.available_at)]
    )
    await harness.work_off()

    (item,) = (await client.get(f"{QUEUE}/failed", headers=boss.headers)).json()["items"]

    assert item["payload"] == markup
    assert item["exception"].startswith("the payload does not fit job test.record")
