"""/docs and /redoc in headless Chromium, with no network beyond the service.

The real service runs under uvicorn; every request the page makes to another host is
aborted and recorded (`tests.browser`), so a page that needed a CDN fails here as it
would offline. Screenshots land in artifacts/docs/ at the repository root.
"""

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.browser import (
    ARTIFACTS,
    SIGN_IN_TIMEOUT,
    offline_page,
    page_errors,
    require_chromium,
)
from tests.server import Server, migrate_both, serving, sqlite_environment

SCREENSHOTS = ARTIFACTS / "docs"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
EMAIL, PASSWORD = "grace@example.com", "correct horse battery"
# Swagger UI renders one block per operation: (method, path) read from its summary line.
RENDERED_OPERATIONS = """
    [...document.querySelectorAll('.opblock')].map(block => [
        block.querySelector('.opblock-summary-method').textContent.trim().toLowerCase(),
        block.querySelector('.opblock-summary-path').dataset.path,
    ])
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_chromium()
    workdir = tmp_path_factory.mktemp("browser")
    env = sqlite_environment(workdir)
    migrate_both(env)
    with serving("app.main:create_app", env, workdir / "server.log") as running:
        yield running


async def test_swagger_ui_renders_offline_signs_in_and_tries_out_users_me(
    server: Server, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        spec = (await http.get("/openapi.json")).json()
        registered = await http.post(
            "/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD}
        )
    assert registered.status_code == 201, registered.text
    operations = sorted([method, path] for path, item in spec["paths"].items() for method in item)
    page, elsewhere = await offline_page(browser, server)
    errors = page_errors(page)

    await page.goto(f"{server.url}/docs")

    await expect(page.locator(".opblock")).to_have_count(len(operations), timeout=15_000)
    assert sorted(await page.evaluate(RENDERED_OPERATIONS)) == operations

    # Authorize: the OAuth2 password flow posts the form to /api/v1/auth/login.
    await page.locator(".auth-wrapper button.authorize").click()
    oauth2 = page.locator(".auth-container").filter(has_text="OAuth2Password")
    await oauth2.locator("#oauth_username").fill(EMAIL)
    await oauth2.locator("#oauth_password").fill(PASSWORD)
    await oauth2.locator("button.authorize").click()
    await expect(oauth2.locator("button", has_text="Logout")).to_be_visible(timeout=SIGN_IN_TIMEOUT)
    await expect(oauth2).to_contain_text("Authorized")
    await oauth2.locator("button", has_text="Close").click()
    await expect(page.locator(".modal-ux")).to_have_count(0)

    me = page.locator(".opblock-get").filter(
        has=page.locator('.opblock-summary-path[data-path="/api/v1/users/me"]')
    )
    await me.locator(".opblock-summary").click()
    await me.locator("button", has_text="Try it out").click()
    await me.locator("button", has_text="Execute").click()

    answer = me.locator(".live-responses-table .response")
    await expect(answer.locator(".response-col_status")).to_have_text("200", timeout=15_000)
    await expect(answer.locator(".response-col_description")).to_contain_text(EMAIL)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await me.evaluate("block => block.scrollIntoView()")
    await page.screenshot(path=SCREENSHOTS / "swagger-try-it-out.png")

    assert elsewhere == []
    assert errors == []


async def test_redoc_renders_offline_with_tag_descriptions_and_request_examples(
    server: Server, browser: Browser
) -> None:
    page, elsewhere = await offline_page(browser, server)
    errors = page_errors(page)

    await page.goto(f"{server.url}/redoc")

    await expect(page.get_by_role("heading", name=re.compile(r"^Dualbase"))).to_be_visible(
        timeout=15_000
    )
    await expect(page.get_by_text("Your orders: placing one takes the stock")).to_be_visible()
    # ProjectCreate's example, in the "Request samples" panel.
    await expect(page.get_by_text('"Website relaunch"').first).to_be_attached()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "redoc.png")

    assert elsewhere == []
    # ReDoc always credits Redocly with a logo from its CDN: the service's CSP stops the
    # browser from fetching it, and ReDoc drops the image when it fails to load.
    assert [error for error in errors if REDOCLY_LOGO not in error] == []
