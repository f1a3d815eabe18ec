"""Log lines: one per request with its route, status, duration and ids; secrets never."""

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth.dependencies import CurrentUser
from app.core.config import Settings
from app.core.observability.logging import REQUEST_ID, configure_logging
from tests.accounts import API, bearer, login, signed_up
from tests.conftest import client_for, empty_tables, make_settings, running
from tests.queue_support import run_app_jobs

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


class LogCapture:
    """Everything the service's log handler writes, one JSON object per line."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def requests(self, request_id: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line["logger"] == "app.requests" and line.get("request_id") == request_id
        ]


@pytest.fixture
def captured_logs(settings: Settings) -> Iterator[LogCapture]:
    capture = LogCapture()
    yield capture
    configure_logging(settings)  # back to standard error for the tests that follow


@pytest.fixture
async def logged_app(
    settings: Settings, captured_logs: LogCapture
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The API logging everything, debug lines included, as JSON into `captured_logs`."""
    debug_settings = settings.model_copy(update={"log_level": "debug", "log_format": "json"})
    app = create_test_app(debug_settings)
    async with running(app), client_for(app) as http:
        configure_logging(debug_settings, captured_logs.stream)
        # httpx logs the test client's own requests, query strings and all: not the service.
        client_logger = logging.getLogger("httpx")
        client_logger.setLevel(logging.WARNING)
        try:
            yield http, app
        finally:
            client_logger.setLevel(logging.NOTSET)
        await empty_tables(app)


def create_test_app(settings: Settings) -> FastAPI:
    """The app, plus routes that log from inside a handler and that fail unexpectedly."""
    from app.main import create_app

    app = create_app(settings)
    handler_logger = logging.getLogger("app.test")

    @app.get("/test/log")
    async def log_something(user: CurrentUser) -> dict[str, int]:
        handler_logger.warning("inside the handler")
        return {"id": user.id}

    @app.get("/test/fail")
    async def fail() -> None:
        raise RuntimeError("an unexpected failure")

    return app


async def test_each_request_writes_one_line_with_route_status_duration_and_user(
    logged_app: tuple[httpx.AsyncClient, FastAPI], captured_logs: LogCapture
) -> None:
    client, _ = logged_app
    ada = await signed_up(client, "ada@example.com")
    created = await client.post(f"{API}/projects", json={"name": "Apollo"}, headers=ada.headers)
    project_id = created.json()["id"]

    response = await client.get(
        f"{API}/projects/{project_id}", headers={**ada.headers, "X-Request-ID": "read-apollo-1"}
    )

    assert response.status_code == 200
    (line,) = captured_logs.requests("read-apollo-1")
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/projects/{project_id}"
    assert line["path"] == f"/api/v1/projects/{project_id}"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert 0 < line["duration_ms"] < 10_000
    assert line["user_id"] == ada.id


async def test_an_anonymous_or_unmatched_request_is_logged_without_user_or_route(
    logged_app: tuple[httpx.AsyncClient, FastAPI], captured_logs: LogCapture
) -> None:
    client, _ = logged_app

    await client.get("/no/such/page", headers={"X-Request-ID": "lost-1"})

    (line,) = captured_logs.requests("lost-1")
    assert line["status"] == 404
    assert line["route"] is None
    assert "user_id" not in line


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-DEF_1.2", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("two words", False),
        ("id\u00e9", False),
        ("", False),
        ("a;b=c", False),
    ],
)
async def test_a_sane_request_id_is_kept_and_anything_else_replaced(
    logged_app: tuple[httpx.AsyncClient, FastAPI],
    captured_logs: LogCapture,
    sent: str,
    kept: bool,
) -> None:
    client, _ = logged_app

    response = await client.get("/health/live", headers={b"X-Request-ID": sent.encode()})

    answered = response.headers["x-request-id"]
    if kept:
        assert answered == sent
    else:
        assert GENERATED_ID.fullmatch(answered)
    (line,) = captured_logs.requests(answered)
    assert line["route"] == "/health/live"


async def test_each_request_gets_its_own_generated_id(
    logged_app: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, _ = logged_app

    first = await client.get("/health/live")
    second = await client.get("/health/live")

    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_every_line_logged_during_a_request_carries_its_ids(
    logged_app: tuple[httpx.AsyncClient, FastAPI], captured_logs: LogCapture
) -> None:
    client, _ = logged_app
    ada = await signed_up(client, "ada@example.com")

    await client.get("/test/log", headers={**ada.headers, "X-Request-ID": "inside-1"})
    logging.getLogger("app.test").warning("outside any request")

    lines = {line["message"]: line for line in captured_logs.lines()}
    inside = lines["inside the handler"]
    assert (inside["request_id"], inside["user_id"]) == ("inside-1", ada.id)
    assert "request_id" not in lines["outside any request"]
    assert REQUEST_ID.get() is None


async def test_an_unexpected_error_logs_its_traceback_with_the_request_id(
    logged_app: tuple[httpx.AsyncClient, FastAPI], captured_logs: LogCapture
) -> None:
    client, _ = logged_app

    response = await client.get("/test/fail", headers={"X-Request-ID": "fail-1"})

    assert response.status_code == 500
    assert "an unexpected failure" not in response.text
    (request_line,) = captured_logs.requests("fail-1")
    assert request_line["status"] == 500
    errors = [
        line
        for line in captured_logs.lines()
        if line["level"] == "ERROR" and line.get("request_id") == "fail-1"
    ]
    assert errors, captured_logs.text
    assert "RuntimeError: an unexpected failure" in errors[0]["exception"]


@pytest.mark.parametrize(
    ("environment", "log_format", "json_expected"),
    [
        ("development", "auto", False),
        ("production", "auto", True),
        ("test", "auto", True),
        ("development", "json", True),
        ("production", "text", False),
    ],
)
def test_development_reads_as_text_and_everything_else_as_json(
    settings: Settings,
    captured_logs: LogCapture,
    environment: str,
    log_format: str,
    json_expected: bool,
) -> None:
    chosen = make_settings(environment=environment, log_format=log_format.upper())
    configure_logging(chosen, captured_logs.stream)
    token = REQUEST_ID.set("req-7")
    try:
        logging.getLogger("app.test").warning("the disk is %d%% full", 91, extra={"disk": "/"})
    finally:
        REQUEST_ID.reset(token)

    line = captured_logs.text.strip()
    if json_expected:
        parsed = json.loads(line)
        assert parsed["message"] == "the disk is 91% full"
        assert parsed["level"] == "WARNING"
        assert (parsed["disk"], parsed["request_id"]) == ("/", "req-7")
    else:
        assert not line.startswith("{")
        assert "WARNING" in line
        assert "the disk is 91% full" in line
        assert "request_id=req-7" in line


async def test_secrets_tokens_and_passwords_never_reach_the_logs(
    logged_app: tuple[httpx.AsyncClient, FastAPI],
    captured_logs: LogCapture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, app = logged_app
    password, new_password = "first secret pass", "second secret pass"
    ada = await signed_up(client, "ada@example.com", password)
    assert (await login(client, "ada@example.com", "a wrong password")).status_code == 401
    refreshed = await client.post(f"{API}/auth/refresh", json={"refresh_token": ada.refresh_token})
    access_token = refreshed.json()["access_token"]
    refresh_token = refreshed.json()["refresh_token"]
    assert (await client.get(f"{API}/users/me", headers=bearer(access_token))).status_code == 200
    created = await client.post(
        f"{API}/auth/api-keys",
        json={"name": "ci", "scopes": ["projects:read"]},
        headers=bearer(access_token),
    )
    api_key = created.json()["key"]
    assert (await client.get(f"{API}/users/me", headers={"X-API-Key": api_key})).status_code == 200
    assert (await client.get(f"{API}/projects", headers=bearer(api_key))).status_code == 200
    assert (await client.get(f"{API}/users/me", headers=bearer(api_key + "x"))).status_code == 401
    # Where a careless client puts a token: the query string, on a path that does not exist.
    await client.get(f"{API}/nowhere?access_token={access_token}", headers=bearer(access_token))
    await client.post(f"{API}/auth/register", json={"email": "bad", "password": password})
    capsys.readouterr()
    await client.post(f"{API}/auth/password-reset/request", json={"email": "ada@example.com"})
    await run_app_jobs(app)
    mailed = capsys.readouterr().out
    reset_token = re.search(r"token=(\S+)", mailed)[1]  # type: ignore[index]
    confirmed = await client.post(
        f"{API}/auth/password-reset/confirm",
        json={"token": reset_token, "new_password": new_password},
    )
    assert confirmed.status_code == 204, confirmed.text
    assert (await login(client, "ada@example.com", new_password)).status_code == 200

    logged = captured_logs.text
    assert len(captured_logs.lines()) >= 14  # the requests above were logged
    secrets = {
        "password": password,
        "new password": new_password,
        "access token": ada.access_token,
        "refresh token": ada.refresh_token,
        "rotated access token": access_token,
        "rotated refresh token": refresh_token,
        "API key": api_key,
        "reset token": reset_token,
    }
    for name, secret in secrets.items():
        assert secret not in logged, f"the {name} is in the logs"
        # A token's signature, or a key's random part, alone is a leak too.
        assert secret[-20:] not in logged, f"part of the {name} is in the logs"
    assert "Bearer " not in logged
