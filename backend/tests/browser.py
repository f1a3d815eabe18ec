"""Headless Chromium for the pages the service serves, with no network beyond it.

Every request a page makes to another host is aborted and recorded, so a page that
needed a CDN fails here as it would offline. Loaded as a plugin by conftest.py, so
that `browser` is a fixture of every test module.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from app.core.config import BACKEND_DIR
from tests.server import Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() == "true"
# How long a sign-in may take to show (ms): the password is hashed in a thread at the
# lowest CPU priority (core/security.py), which on a machine busy with other work (CI
# runs three suites at once on two cores) waits seconds for a core.
SIGN_IN_TIMEOUT = 30_000
# Screenshots land in artifacts/ at the repository root (CI keeps them).
ARTIFACTS = BACKEND_DIR.parent / "artifacts"


def require_chromium() -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


async def offline_page(browser: Browser, server: Server) -> tuple[Page, list[str]]:
    """A page that can reach the service only; returns it and the URLs it tried elsewhere."""
    context = await browser.new_context(viewport={"width": 1280, "height": 1600})
    service = urlsplit(server.url).netloc
    elsewhere: list[str] = []

    async def only_the_service(route: Route) -> None:
        if urlsplit(route.request.url).netloc == service:
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_service)
    return await context.new_page(), elsewhere


def page_errors(page: Page) -> list[str]:
    """Script errors and console errors (a refused asset or a CSP violation shows there)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    return errors
