"""/admin/queue in headless Chromium, with no network beyond the service: an admin
signs in, sees a failed job with its error, retries it, and sees it gone.
Screenshots land in artifacts/queue/ at the repository root."""

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from app.core.config import BACKEND_DIR
from app.runtime import create_runtime
from tests.browser import (
    ARTIFACTS,
    SIGN_IN_TIMEOUT,
    offline_page,
    page_errors,
    require_chromium,
)
from tests.conftest import make_settings
from tests.queue_jobs import RUNS, TEST_JOBS, fail
from tests.queue_support import drain
from tests.server import Server, migrate_both, serving, sqlite_environment

SCREENSHOTS = ARTIFACTS / "queue"
EMAIL, PASSWORD = "root@example.com", "a long root password"
ERROR = "the printer is on fire <b>not bold</b>"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """The service on SQLite files, with an admin and one failed job."""
    require_chromium()
    env = sqlite_environment(tmp_path)
    migrate_both(env)
    superuser = ["create-superuser", "--email", EMAIL, "--password", PASSWORD]
    subprocess.run(
        [sys.executable, "-m", "app.cli", *superuser],
        cwd=BACKEND_DIR,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    runtime = create_runtime(
        make_settings(
            auth_database_url=env["AUTH_DATABASE_URL"], app_database_url=env["APP_DATABASE_URL"]
        )
    )
    async with runtime.databases.app.engine.begin() as connection:
        await connection.run_sync(RUNS.metadata.create_all)
    await runtime.queue.dispatch(fail, message=ERROR)
    await drain(runtime.job_services, TEST_JOBS)
    await runtime.databases.dispose()
    with serving("app.main:create_app", env, tmp_path / "server.log") as running:
        yield running


async def test_an_admin_signs_in_sees_a_failed_job_and_retries_it(
    server: Server, browser: Browser
) -> None:
    page, elsewhere = await offline_page(browser, server)
    errors = page_errors(page)

    await page.goto(f"{server.url}/admin/queue")
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.locator("#sign-in")).to_be_hidden(timeout=SIGN_IN_TIMEOUT)
    await expect(page.locator("#signed-in-as")).to_have_text(EMAIL)
    failed = page.locator("#failed tbody tr")
    await expect(failed).to_have_count(1)
    await expect(failed).to_contain_text("test.fail")
    # The error is text on the page, never markup.
    await expect(failed.locator("td.error").first).to_contain_text(f"ValueError: {ERROR}")
    await expect(page.locator("#failed b")).to_have_count(0)
    queues = page.locator("#queues tbody tr")
    await expect(queues).to_have_text(["default0001"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "failed-job.png", full_page=True)

    await failed.get_by_role("button", name="Retry").click()

    await expect(page.locator("#notice")).to_have_text("Retried 1 job.")
    await expect(failed).to_have_text(["none"])
    await expect(queues).to_have_text(["default1000"])
    await page.screenshot(path=SCREENSHOTS / "after-retry.png", full_page=True)
    assert elsewhere == []
    assert errors == []


async def test_a_member_is_told_the_page_needs_the_permission(
    server: Server, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        registered = await http.post(
            "/api/v1/auth/register", json={"email": "member@example.com", "password": PASSWORD}
        )
    assert registered.status_code == 201, registered.text
    page, _ = await offline_page(browser, server)

    await page.goto(f"{server.url}/admin/queue")
    await page.get_by_label("Email").fill("member@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.locator("#sign-in-error")).to_have_text(
        "Requires permission: queue:admin", timeout=SIGN_IN_TIMEOUT
    )
    await expect(page.locator("#dashboard")).to_be_hidden()
