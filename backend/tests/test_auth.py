"""Accounts, sign-in, token rotation, sessions, password changes and resets, the lockout."""

import asyncio
import socket
import statistics
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message

import bcrypt
import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import event, select, update

from app.auth.models import LoginSession, PasswordResetToken, User
from app.core import security
from app.core.config import Settings
from app.essentials.cache.models import CacheEntry
from app.essentials.cache.store import now_ms
from app.main import create_app
from tests.accounts import API, PASSWORD, Account, bearer, login, register, signed_up
from tests.conftest import client_for, empty_tables, running
from tests.queue_support import run_app_jobs

# --- registration ----------------------------------------------------------------------


async def test_register_returns_the_user_without_any_hash(client: httpx.AsyncClient) -> None:
    response = await register(client, "  Grace.Hopper@Example.COM ", full_name="Grace Hopper")

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "grace.hopper@example.com"
    assert body["full_name"] == "Grace Hopper"
    assert body["roles"] == ["member"]
    assert body["is_active"] is True
    assert body["is_superuser"] is False
    assert "password" not in response.text
    assert "$argon2" not in response.text


async def test_a_duplicate_email_in_any_case_is_a_409(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")

    again = await register(client, "ADA@example.com ")

    assert again.status_code == 409
    assert again.json() == {
        "detail": "A user with this email already exists",
        "code": "email_taken",
    }


@pytest.mark.parametrize(
    ("password", "status"),
    [("1234567", 422), ("12345678", 201), ("x" * 128, 201), ("x" * 129, 422)],
)
async def test_passwords_must_be_8_to_128_characters(
    client: httpx.AsyncClient, password: str, status: int
) -> None:
    response = await register(client, "len@example.com", password)

    assert response.status_code == status
    if status == 422:
        assert response.json()["code"] == "validation_error"
        assert password not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "a@b", "password": PASSWORD},
        {"email": "ada@example.com"},
        {"email": "ada@example.com", "password": PASSWORD, "is_superuser": True},
        {"email": "x" * 400 + "@example.com", "password": PASSWORD},
    ],
)
async def test_bad_registrations_are_422(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post(f"{API}/auth/register", json=body)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


# --- login -----------------------------------------------------------------------------


async def test_login_returns_a_bearer_token_pair(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")

    response = await login(client, " ADA@example.com", PASSWORD)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    me = await client.get(f"{API}/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"


async def test_unknown_email_wrong_password_and_inactive_user_get_the_same_401(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await register(client, "ada@example.com")
    await register(client, "gone@example.com")
    async with app.state.databases.auth.sessions() as session:
        gone = await session.scalar(select(User).where(User.email == "gone@example.com"))
        assert gone is not None
        gone.is_active = False
        await session.commit()

    answers = [
        await login(client, "nobody@example.com", PASSWORD),
        await login(client, "ada@example.com", "wrong password"),
        await login(client, "gone@example.com", PASSWORD),
    ]

    for answer in answers:
        assert answer.status_code == 401
        assert answer.json() == {
            "detail": "Incorrect email or password",
            "code": "invalid_credentials",
        }
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_an_unknown_email_takes_about_as_long_as_a_wrong_password(
    client: httpx.AsyncClient,
) -> None:
    """Both verify an argon2 hash; skipping it for unknown emails would reveal who exists."""
    await register(client, "ada@example.com")

    async def duration(email: str) -> float:
        started = time.perf_counter()
        assert (await login(client, email, "wrong password")).status_code == 401
        return time.perf_counter() - started

    unknown, known = [], []
    for _ in range(3):
        unknown.append(await duration("nobody@example.com"))
        known.append(await duration("ada@example.com"))

    # Without the dummy hash an unknown email answers some 30 times faster.
    assert statistics.median(unknown) > 0.4 * statistics.median(known)


async def test_a_bcrypt_hash_is_upgraded_to_argon2id_on_login(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    old_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    async with app.state.databases.auth.sessions() as session:
        session.add(User(email="legacy@example.com", hashed_password=old_hash))
        await session.commit()

    assert (await login(client, "legacy@example.com")).status_code == 200

    async with app.state.databases.auth.sessions() as session:
        stored = await session.scalar(
            select(User.hashed_password).where(User.email == "legacy@example.com")
        )
    assert stored is not None
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await login(client, "legacy@example.com")).status_code == 200
    assert (await login(client, "legacy@example.com", "wrong password")).status_code == 401


async def test_a_login_in_progress_does_not_hold_up_health_live(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Password hashing runs in a worker thread, so the event loop stays free.

    The check below holds the password check until /health/live has answered: were the
    check on the event loop, /health/live could never answer and the hold would time out.
    """
    await register(client, "ada@example.com")
    order: list[str] = []
    live_answered = threading.Event()
    hashing = threading.Event()
    verify = security._verify_and_update

    def held_verify(password: str, hashed: str | None) -> tuple[bool, str | None]:
        hashing.set()
        if not live_answered.wait(timeout=5):
            order.append("timed out waiting for live")
        order.append("password checked")
        return verify(password, hashed)

    monkeypatch.setattr(security, "_verify_and_update", held_verify)

    async def live() -> None:
        assert await asyncio.to_thread(hashing.wait, 5)
        assert (await client.get("/health/live")).status_code == 200
        order.append("live answered")
        live_answered.set()

    signed_in, _ = await asyncio.gather(login(client, "ada@example.com"), live())

    assert signed_in.status_code == 200
    assert order == ["live answered", "password checked"]


# --- refresh rotation ------------------------------------------------------------------


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    rotated = await refresh(client, ada.refresh_token)

    assert rotated.status_code == 200
    pair = rotated.json()
    assert pair["refresh_token"] != ada.refresh_token
    assert (
        await client.get(f"{API}/users/me", headers=bearer(pair["access_token"]))
    ).status_code == 200
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_a_replayed_refresh_token_revokes_the_whole_session(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    stolen = ada.refresh_token
    pair = (await refresh(client, stolen)).json()

    replay = await refresh(client, stolen)

    assert replay.status_code == 401
    assert replay.json()["code"] == "token_reused"
    # Every token of that session is dead now, the legitimate new ones included.
    assert (await refresh(client, pair["refresh_token"])).status_code == 401
    assert (
        await client.get(f"{API}/users/me", headers=bearer(pair["access_token"]))
    ).status_code == 401
    assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 401


async def test_concurrent_refreshes_of_one_token_give_one_success(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")

    answers = await asyncio.gather(*(refresh(client, ada.refresh_token) for _ in range(5)))

    assert sorted(answer.status_code for answer in answers) == [200, 401, 401, 401, 401]


@pytest.mark.parametrize("token", ["", "x" * 5000, "not.a.jwt", None, 42])
async def test_garbage_refresh_tokens_are_4xx_json(
    client: httpx.AsyncClient, token: object
) -> None:
    response = await client.post(f"{API}/auth/refresh", json={"refresh_token": token})

    assert response.status_code in (401, 422)
    assert response.json()["code"] in ("invalid_token", "validation_error")


# --- logout and sessions ---------------------------------------------------------------


async def test_logout_stops_the_access_token_at_once(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    assert (await client.post(f"{API}/auth/logout", headers=ada.headers)).status_code == 204

    after = await client.get(f"{API}/users/me", headers=ada.headers)
    assert after.status_code == 401
    assert after.json()["code"] == "session_revoked"
    assert (await refresh(client, ada.refresh_token)).status_code == 401


async def test_logout_all_ends_every_session(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    laptop = (await login(client, ada.email)).json()

    assert (await client.post(f"{API}/auth/logout-all", headers=ada.headers)).status_code == 204

    for token in (ada.access_token, laptop["access_token"]):
        assert (await client.get(f"{API}/users/me", headers=bearer(token))).status_code == 401


async def test_sessions_are_listed_and_one_can_be_revoked(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    phone = (await login(client, ada.email, **{"User-Agent": "PhoneApp/1.0"})).json()

    listed = await client.get(f"{API}/auth/sessions", headers=ada.headers)

    assert listed.status_code == 200
    sessions = listed.json()
    assert len(sessions) == 2
    assert [session["current"] for session in sessions].count(True) == 1
    other = next(session for session in sessions if not session["current"])
    assert other["user_agent"] == "PhoneApp/1.0"
    assert other["ip"] == "127.0.0.1"
    assert {"created_at", "last_used_at"} <= set(other)

    revoked = await client.delete(f"{API}/auth/sessions/{other['id']}", headers=ada.headers)

    assert revoked.status_code == 204
    assert (
        await client.get(f"{API}/users/me", headers=bearer(phone["access_token"]))
    ).status_code == 401
    assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 200
    remaining = (await client.get(f"{API}/auth/sessions", headers=ada.headers)).json()
    assert [session["id"] for session in remaining] != [other["id"]]
    assert len(remaining) == 1


async def test_another_users_session_is_not_found(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    eve = await signed_up(client, "eve@example.com")
    ada_session = (await client.get(f"{API}/auth/sessions", headers=ada.headers)).json()[0]

    response = await client.delete(f"{API}/auth/sessions/{ada_session['id']}", headers=eve.headers)

    assert response.status_code == 404
    assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 200


async def test_a_credential_costs_one_auth_query_the_first_time_and_none_after(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        # The worker's change follower polls its own table meanwhile; not the request's.
        if "credential_changes" not in statement and not statement.lstrip().upper().startswith(
            ("BEGIN", "COMMIT", "ROLLBACK")
        ):
            statements.append(statement)

    engine = app.state.databases.auth.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 200
        first = len(statements)
        assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert first == 1, statements
    assert len(statements) == 1, statements  # the second was served from the worker's memory


# --- the account ------------------------------------------------------------------------


async def test_me_can_change_name_and_email(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.patch(
        f"{API}/users/me",
        json={"full_name": "Ada Lovelace", "email": "Countess@Example.com"},
        headers=ada.headers,
    )

    assert response.status_code == 200
    assert response.json()["email"] == "countess@example.com"
    assert response.json()["full_name"] == "Ada Lovelace"
    assert (await login(client, "countess@example.com")).status_code == 200


async def test_me_cannot_take_another_users_email(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    await register(client, "eve@example.com")

    response = await client.patch(
        f"{API}/users/me", json={"email": "eve@example.com"}, headers=ada.headers
    )

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    assert (await client.get(f"{API}/users/me", headers=ada.headers)).json()["email"] == (
        "ada@example.com"
    )


async def test_changing_the_password_signs_out_the_other_sessions(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    other = (await login(client, ada.email)).json()

    wrong = await client.post(
        f"{API}/users/me/password",
        json={"current_password": "not it at all", "new_password": "a brand new secret"},
        headers=ada.headers,
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "wrong_password"

    changed = await client.post(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
        headers=ada.headers,
    )

    assert changed.status_code == 204
    assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 200
    assert (
        await client.get(f"{API}/users/me", headers=bearer(other["access_token"]))
    ).status_code == 401
    assert (await login(client, ada.email)).status_code == 401
    assert (await login(client, ada.email, "a brand new secret")).status_code == 200


async def test_me_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/users/me")

    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated", "code": "not_authenticated"}
    assert response.headers["www-authenticate"] == "Bearer"


# --- password reset --------------------------------------------------------------------


class Outbox:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: object, _session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"

    def reset_token(self) -> str:
        (message,) = self.messages
        body = message.get_payload(decode=True)
        assert isinstance(body, bytes)
        (line,) = [line for line in body.decode().splitlines() if "token=" in line]
        return line.split("token=", 1)[1].strip()


@pytest.fixture
def smtp_outbox() -> Iterator[tuple[Outbox, int]]:
    outbox = Outbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(outbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield outbox, port
    finally:
        controller.stop()


@pytest.fixture
async def mailing_client(
    settings: Settings, smtp_outbox: tuple[Outbox, int]
) -> AsyncIterator[tuple[httpx.AsyncClient, Outbox, FastAPI]]:
    """The API with the SMTP mail backend pointed at the local outbox."""
    outbox, port = smtp_outbox
    smtp_settings = settings.model_copy(
        update={
            "mail_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
        }
    )
    async with running(create_app(smtp_settings)) as app, client_for(app) as http:
        yield http, outbox, app
        await empty_tables(app)


async def test_password_reset_over_smtp_end_to_end(
    mailing_client: tuple[httpx.AsyncClient, Outbox, FastAPI],
) -> None:
    client, outbox, app = mailing_client
    ada = await signed_up(client, "ada@example.com")

    requested = await client.post(
        f"{API}/auth/password-reset/request", json={"email": "Ada@Example.com"}
    )

    assert requested.status_code == 202
    assert requested.json() == {
        "detail": "If an account uses this email, a reset link is on its way"
    }
    assert outbox.messages == []  # a job sends it: the answer did not wait for the mail
    await run_app_jobs(app)
    (message,) = outbox.messages
    assert message["To"] == "ada@example.com"
    token = outbox.reset_token()
    async with app.state.databases.auth.sessions() as session:
        stored = list(await session.scalars(select(PasswordResetToken.token_hash)))
    assert stored
    assert token not in stored  # only its hash is kept

    confirmed = await client.post(
        f"{API}/auth/password-reset/confirm", json={"token": token, "new_password": "chosen anew"}
    )

    assert confirmed.status_code == 204
    assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 401
    assert (await login(client, ada.email)).status_code == 401
    assert (await login(client, ada.email, "chosen anew")).status_code == 200
    again = await client.post(
        f"{API}/auth/password-reset/confirm", json={"token": token, "new_password": "third time"}
    )
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"


async def test_a_reset_for_an_unknown_email_looks_the_same_and_sends_nothing(
    mailing_client: tuple[httpx.AsyncClient, Outbox, FastAPI],
) -> None:
    client, outbox, app = mailing_client

    response = await client.post(
        f"{API}/auth/password-reset/request", json={"email": "nobody@example.com"}
    )
    await run_app_jobs(app)

    assert response.status_code == 202
    assert response.json() == {
        "detail": "If an account uses this email, a reset link is on its way"
    }
    assert outbox.messages == []


async def test_an_expired_or_unknown_reset_token_is_400(
    mailing_client: tuple[httpx.AsyncClient, Outbox, FastAPI],
) -> None:
    client, outbox, app = mailing_client
    await signed_up(client, "ada@example.com")
    await client.post(f"{API}/auth/password-reset/request", json={"email": "ada@example.com"})
    await run_app_jobs(app)
    token = outbox.reset_token()
    async with app.state.databases.auth.sessions() as session:
        await session.execute(
            update(PasswordResetToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()

    for candidate in (token, "made-up-token"):
        response = await client.post(
            f"{API}/auth/password-reset/confirm",
            json={"token": candidate, "new_password": "chosen anew"},
        )
        assert response.status_code == 400
        assert response.json() == {
            "detail": "The reset token is invalid, used or expired",
            "code": "invalid_token",
        }
    assert (await login(client, "ada@example.com")).status_code == 200


async def test_the_console_mailer_prints_the_reset_link(
    client: httpx.AsyncClient, app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    await register(client, "ada@example.com")

    await client.post(f"{API}/auth/password-reset/request", json={"email": "ada@example.com"})
    await run_app_jobs(app)

    printed = capsys.readouterr().out
    assert "mail to ada@example.com: Reset your password" in printed
    assert "reset-password?token=" in printed


# --- brute force -----------------------------------------------------------------------


async def test_five_failures_lock_the_email_even_for_the_right_password(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")
    for _ in range(5):
        assert (await login(client, "ada@example.com", "wrong password")).status_code == 401

    locked = await login(client, "ada@example.com")

    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_requests"
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    # Another account from the same address is not affected.
    await register(client, "bob@example.com")
    assert (await login(client, "bob@example.com")).status_code == 200


async def test_a_success_resets_the_emails_counter(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    for _ in range(4):
        await login(client, "ada@example.com", "wrong password")
    assert (await login(client, "ada@example.com")).status_code == 200

    for _ in range(4):
        assert (await login(client, "ada@example.com", "wrong password")).status_code == 401
    assert (await login(client, "ada@example.com")).status_code == 200


async def test_twenty_failures_from_one_address_lock_that_address(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await register(client, "ada@example.com")
    for number in range(20):
        await login(client, f"guess{number}@example.com", "wrong password")

    assert (await login(client, "ada@example.com")).status_code == 429

    elsewhere = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://testserver") as other:
        assert (await login(other, "ada@example.com")).status_code == 200


async def test_the_lockout_is_shared_by_every_worker(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """The counters live in the cache, in the auth database by default: a second app
    instance sees them too (on Redis: tests/test_limits.py)."""
    await register(client, "ada@example.com")
    for _ in range(5):
        await login(client, "ada@example.com", "wrong password")

    async with running(create_app(settings)) as second_worker, client_for(second_worker) as other:
        assert (await login(other, "ada@example.com")).status_code == 429


async def test_the_lockout_lifts_when_the_failures_leave_the_window(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await register(client, "ada@example.com")
    for _ in range(5):
        await login(client, "ada@example.com", "wrong password")
    assert (await login(client, "ada@example.com")).status_code == 429

    async with app.state.databases.auth.sessions() as session:  # the window is over
        await session.execute(update(CacheEntry).values(expires_at=now_ms() - 1))
        await session.commit()

    assert (await login(client, "ada@example.com")).status_code == 200


# --- docs -------------------------------------------------------------------------------


async def test_openapi_offers_both_security_schemes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["OAuth2Password"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/login"
    assert schemes["APIKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["APIKey"]["description"],
    }
    # Either one, on every operation that takes credentials, and on no other.
    either: list[dict[str, list[str]]] = [{"OAuth2Password": []}, {"APIKey": []}]
    assert schema["paths"]["/api/v1/users/me"]["get"]["security"] == either
    assert schema["paths"]["/api/v1/projects"]["get"]["security"] == either  # a permission
    assert "security" not in schema["paths"]["/api/v1/auth/login"]["post"]


async def test_login_sessions_record_the_client(client: httpx.AsyncClient, app: FastAPI) -> None:
    ada: Account = await signed_up(client, "ada@example.com")

    async with app.state.databases.auth.sessions() as session:
        (stored,) = await session.scalars(
            select(LoginSession).where(LoginSession.user_id == ada.id)
        )
    assert stored.ip == "127.0.0.1"
    assert stored.revoked_at is None
    assert stored.expires_at > datetime.now(UTC) + timedelta(days=13)
