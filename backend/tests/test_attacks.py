"""The attack catalogue: hostile input is stored or refused literally, never a 500."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.auth.models import User
from app.core.config import Settings
from app.main import create_app
from tests.accounts import API, PASSWORD, login, register, signed_up
from tests.conftest import client_for, empty_tables, make_settings, running, url_string
from tests.probes import with_probes

INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    '" OR ""="',
    "1; SELECT pg_sleep(5)--",
    "admin'--",
    "') UNION SELECT email, hashed_password FROM users --",
    "\\'; DELETE FROM projects WHERE '1'='1",
    "%' AND 1=0 UNION ALL SELECT NULL--",
]

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


async def user_count(app: FastAPI) -> int:
    async with app.state.databases.auth.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


# --- SQL injection -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_injection_in_text_fields_is_stored_literally(
    client: httpx.AsyncClient, payload: str
) -> None:
    ada = await signed_up(client, "ada@example.com")

    created = await client.post(
        f"{API}/projects", json={"name": payload, "description": payload}, headers=ada.headers
    )
    renamed = await client.patch(
        f"{API}/users/me", json={"full_name": payload}, headers=ada.headers
    )
    keyed = await client.post(
        f"{API}/auth/api-keys", json={"name": payload, "scopes": []}, headers=ada.headers
    )

    assert created.status_code == 201
    project = await client.get(f"{API}/projects/{created.json()['id']}", headers=ada.headers)
    assert project.json()["name"] == payload.strip()
    assert project.json()["description"] == payload
    assert renamed.json()["full_name"] == payload.strip()
    assert keyed.json()["name"] == payload.strip()
    listed = (await client.get(f"{API}/projects", headers=ada.headers)).json()["items"]
    assert len(listed) == 1  # the WHERE clause was not widened


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_injection_in_credentials_and_parameters_is_refused(
    client: httpx.AsyncClient, app: FastAPI, payload: str
) -> None:
    ada = await signed_up(client, "ada@example.com")
    before = await user_count(app)

    # An apostrophe is legal in an email's local part: that one is stored literally.
    as_email = await register(client, f"{payload}@example.com")
    assert as_email.status_code in (201, 422)
    if as_email.status_code == 201:
        assert as_email.json()["email"] == f"{payload}@example.com".lower()
        before += 1
    answers = [
        await register(client, payload),
        await login(client, payload, payload),
        await login(client, "ada@example.com", payload),
        await client.get(f"{API}/projects", params={"cursor": payload}, headers=ada.headers),
        await client.get(f"{API}/projects", params={"limit": payload}, headers=ada.headers),
        await client.get(f"{API}/projects/{payload}", headers=ada.headers),
        await client.post(f"{API}/auth/refresh", json={"refresh_token": payload}),
        await client.get(f"{API}/users/me", headers={"X-API-Key": payload}),
        await client.post(
            f"{API}/auth/password-reset/confirm",
            json={"token": payload, "new_password": "long enough password"},
        ),
    ]

    for answer in answers:
        assert 400 <= answer.status_code < 500, (answer.request.url, answer.text)
        assert isinstance(answer.json()["code"], str)
    assert await user_count(app) == before
    assert (await login(client, "ada@example.com")).status_code == 200


# --- bodies and content types -------------------------------------------------------------


async def test_a_body_over_one_mebibyte_is_refused_with_413(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    huge = {"name": "x", "description": "x" * (1024 * 1024)}

    response = await client.post(f"{API}/projects", json=huge, headers=ada.headers)

    assert response.status_code == 413
    assert response.json()["code"] == "content_too_large"
    assert (await client.get(f"{API}/projects", headers=ada.headers)).json()["items"] == []


async def test_a_streamed_body_without_length_is_cut_off_too(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "x", "description": "'
        for _ in range(20):
            yield b"y" * 65536
        yield b'"}'

    response = await client.post(
        f"{API}/projects",
        content=chunks(),
        headers={**ada.headers, "content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["code"] == "content_too_large"


@pytest.fixture
async def small_body_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with MAX_BODY_SIZE at 2 KiB: the limit is a setting."""
    small = make_settings(
        auth_database_url=url_string(settings.resolved_database_url("auth")),
        app_database_url=url_string(settings.resolved_database_url("app")),
        max_body_size=2048,
    )
    async with running(create_app(small)) as app, client_for(app) as http:
        yield http
        await empty_tables(app)


async def test_the_body_limit_is_configurable(small_body_client: httpx.AsyncClient) -> None:
    small = await register(small_body_client, "ada@example.com", full_name="x" * 100)
    large = await register(small_body_client, "bob@example.com", full_name="x" * 3000)

    assert small.status_code == 201
    assert large.status_code == 413


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"email": "ada@example.com", "password": ', "application/json"),
        (b"{'email': 'single quotes'}", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"email=ada@example.com&password=correct+horse+battery", "text/plain"),
        (b"<user><email>ada@example.com</email></user>", "application/xml"),
        (
            b"email=ada@example.com&password=correct+horse+battery",
            "application/x-www-form-urlencoded",
        ),
        (b"null", "application/json"),
        (b"[]", "application/json"),
        (b'"just a string"', "application/json"),
    ],
)
async def test_malformed_bodies_and_wrong_content_types_are_4xx(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(
        f"{API}/auth/register", content=content, headers={"content-type": content_type}
    )

    assert 400 <= response.status_code < 500
    assert isinstance(response.json()["code"], str)


async def test_json_sent_to_the_login_form_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/login", json={"username": "ada@example.com", "password": PASSWORD}
    )

    assert response.status_code == 422


# --- paths and unicode ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/../../etc/passwd",
        "/api/v1/projects/..%2F..%2Fetc%2Fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/v1/projects/1%00",
        "/api/v1/users/%C0%AE%C0%AE",
        "/static/../app/core/config.py",
        "/docs/../../backend/.env",
    ],
)
async def test_path_traversal_finds_nothing(client: httpx.AsyncClient, path: str) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.get(path, headers=ada.headers)

    assert response.status_code in (403, 404, 422)
    assert "SECRET_KEY" not in response.text
    assert "root:" not in response.text


@pytest.mark.parametrize(
    "email",
    [
        "ada\u202e@example.com",  # right-to-left override
        "ada\u200b@example.com",  # zero-width space
        "ada@exa\u0000mple.com",  # NUL
        "ada@example..com",
        "\uff41\uff44\uff41@example.com",  # fullwidth letters
        "a" * 65 + "@example.com",  # local part too long
        "ada@" + "x" * 300 + ".com",
    ],
)
async def test_unicode_oddities_in_emails_are_refused_or_normalised(
    client: httpx.AsyncClient, app: FastAPI, email: str
) -> None:
    response = await register(client, email)

    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        stored = response.json()["email"]
        assert stored == stored.strip().lower()
        assert "\u202e" not in stored
        assert "\u200b" not in stored


async def test_one_address_has_one_account_whatever_its_unicode_form(
    client: httpx.AsyncClient,
) -> None:
    composed = "jos\u00e9@example.com"  # é as one code point
    decomposed = "jose\u0301@example.com"  # e + combining acute accent

    first = await register(client, composed)
    second = await register(client, decomposed.upper())

    assert first.status_code == 201
    assert second.status_code == 409
    assert (await login(client, decomposed)).status_code == 200


# --- CORS and headers ----------------------------------------------------------------------


async def test_without_configured_origins_no_origin_is_allowed(
    client: httpx.AsyncClient,
) -> None:
    simple = await client.get("/health/live", headers={"Origin": "https://evil.example"})
    preflight = await client.options(
        f"{API}/users/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )

    assert "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code in (400, 405)


@pytest.fixture
async def cors_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    allowed = make_settings(
        auth_database_url=url_string(settings.resolved_database_url("auth")),
        app_database_url=url_string(settings.resolved_database_url("app")),
        cors_origins="https://app.example.com, http://localhost:5173/",
    )
    async with running(create_app(allowed)) as app, client_for(app) as http:
        yield http


async def test_configured_origins_are_allowed_and_others_refused(
    cors_client: httpx.AsyncClient,
) -> None:
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }

    good = await cors_client.options(
        f"{API}/users/me", headers={"Origin": "https://app.example.com", **preflight}
    )
    local = await cors_client.get("/health/live", headers={"Origin": "http://localhost:5173"})
    evil = await cors_client.options(
        f"{API}/users/me", headers={"Origin": "https://evil.example", **preflight}
    )
    evil_simple = await cors_client.get("/health/live", headers={"Origin": "https://evil.example"})

    assert good.status_code == 200
    assert good.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "authorization" in good.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in good.headers
    assert local.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert evil.status_code == 400
    assert evil.json()["code"] == "cors_refused"
    assert "access-control-allow-origin" not in evil.headers
    assert "access-control-allow-origin" not in evil_simple.headers


@pytest.fixture
async def probe(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(with_probes(create_app(settings))) as app, client_for(app) as http:
        yield http
        await empty_tables(app)


async def test_security_headers_are_on_every_response(probe: httpx.AsyncClient) -> None:
    ada = await signed_up(probe, "ada@example.com")
    responses = [
        await probe.get("/health/live"),
        await probe.get(f"{API}/users/me", headers=ada.headers),
        await probe.get(f"{API}/users/me"),
        await probe.get("/nowhere"),
        await probe.post(f"{API}/auth/register", json={}),
        await probe.post(
            f"{API}/projects",
            content=b"x" * (1024 * 1024 + 1),
            headers={**ada.headers, "content-type": "application/json"},
        ),
        await probe.get("/probe/boom"),
        await probe.get("/openapi.json"),
    ]

    assert [response.status_code for response in responses] == [
        200,
        200,
        401,
        404,
        422,
        413,
        500,
        200,
    ]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.url, name)
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"


# --- user enumeration ----------------------------------------------------------------------


async def test_login_and_reset_do_not_tell_who_has_an_account(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await register(client, "ada@example.com")

    known_login = await login(client, "ada@example.com", "wrong password")
    unknown_login = await login(client, "nobody@example.com", "wrong password")
    known_reset = await client.post(
        f"{API}/auth/password-reset/request", json={"email": "ada@example.com"}
    )
    unknown_reset = await client.post(
        f"{API}/auth/password-reset/request", json={"email": "nobody@example.com"}
    )

    assert (known_login.status_code, known_login.json()) == (
        unknown_login.status_code,
        unknown_login.json(),
    )
    assert (known_reset.status_code, known_reset.json()) == (
        unknown_reset.status_code,
        unknown_reset.json(),
    )
    # Headers differ only in what every response varies by.
    same = {"content-type", "www-authenticate", "content-length"}
    for name in same:
        assert known_login.headers.get(name) == unknown_login.headers.get(name)
        assert known_reset.headers.get(name) == unknown_reset.headers.get(name)


async def test_a_taken_email_gets_one_answer_whatever_the_accounts_state(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Registration must say 409 for a taken email (that is its contract); it says
    nothing more: not whether the account is active, locked out or being erased."""
    await register(client, "active@example.com")
    await register(client, "inactive@example.com")
    async with app.state.databases.auth.sessions() as session:
        user = await session.scalar(select(User).where(User.email == "inactive@example.com"))
        assert user is not None
        user.is_active = False
        await session.commit()

    answers = [
        await register(client, email) for email in ("active@example.com", "inactive@example.com")
    ]

    assert {answer.status_code for answer in answers} == {409}
    assert answers[0].json() == answers[1].json()


async def test_fifty_concurrent_registrations_of_one_email_give_one_account(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    answers = await asyncio.gather(*(register(client, "race@example.com") for _ in range(50)))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 49
    assert await user_count(app) == 1
