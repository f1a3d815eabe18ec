"""Forged, altered and garbage credentials: always a JSON 401, never a 500."""

import asyncio
import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt
from sqlalchemy import delete

from app.auth.changes import record_change
from app.auth.models import User
from app.core.config import Settings
from app.essentials.activity.recording import UNAUDITED
from tests.accounts import API, Account, bearer, commit_changed, signed_up

ME = f"{API}/users/me"
REFRESH = f"{API}/auth/refresh"
OTHER_SECRET = "another-secret-key-that-is-long-enough-for-hs256-9876543210"


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str)
    assert isinstance(body["code"], str)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def session_id_of(account: Account) -> str:
    payload = json.loads(unb64url(account.access_token.split(".")[1]))
    return str(payload["sid"])


def claims_for(account: Account, settings: Settings) -> dict[str, Any]:
    """The claims of a valid access token of `account`'s live session."""
    now = datetime.now(UTC)
    return {
        "sub": str(account.id),
        "sid": session_id_of(account),
        "type": "access",
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }


def sign(claims: dict[str, Any], key: str, algorithm: str) -> str:
    return str(jwt.encode(claims, key, algorithm=algorithm))


async def test_a_token_made_with_the_right_key_and_claims_works(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """The control for the forgeries below: only their one defect makes them fail."""
    ada = await signed_up(client, "ada@example.com")
    token = sign(claims_for(ada, settings), settings.signing_key, settings.jwt_algorithm)

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == ada.id


async def test_a_token_remembered_by_the_worker_is_still_refused_once_it_expires(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """A token served from the worker's memory is not decoded again: its expiry is kept
    with it, and holds to the second."""
    ada = await signed_up(client, "ada@example.com")
    claims = claims_for(ada, settings)
    claims["exp"] = int(datetime.now(UTC).timestamp()) + 2
    token = sign(claims, settings.signing_key, settings.jwt_algorithm)
    assert (await client.get(ME, headers=bearer(token))).status_code == 200
    assert (await client.get(ME, headers=bearer(token))).status_code == 200  # from memory

    # jose compares whole seconds: a decoded token is refused from `exp` + 1 on.
    await asyncio.sleep(claims["exp"] + 1 - time.time() + 0.1)

    assert_unauthorized(await client.get(ME, headers=bearer(token)))
    assert (await client.get(ME, headers=ada.headers)).status_code == 200


async def test_an_unsigned_alg_none_token_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")
    claims = claims_for(ada, settings)
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())

    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_a_token_signed_with_another_key_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")

    token = sign(claims_for(ada, settings), OTHER_SECRET, settings.jwt_algorithm)

    assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_a_token_signed_with_another_hmac_algorithm_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")
    other = "HS512" if settings.jwt_algorithm != "HS512" else "HS256"

    token = sign(claims_for(ada, settings), settings.signing_key, other)

    assert_unauthorized(await client.get(ME, headers=bearer(token)))


def _past(minutes: int) -> int:
    return int((datetime.now(UTC) - timedelta(minutes=minutes)).timestamp())


def _future(minutes: int) -> int:
    return int((datetime.now(UTC) + timedelta(minutes=minutes)).timestamp())


FLAWS: dict[str, dict[str, Any]] = {
    "refresh-type": {"type": "refresh"},
    "no-type": {"type": None},
    "unknown-type": {"type": "admin"},
    "wrong-audience": {"aud": "someone-else"},
    "no-audience": {"aud": None},
    "wrong-issuer": {"iss": "someone-else"},
    "no-issuer": {"iss": None},
    "no-jti": {"jti": None},
    "no-sid": {"sid": None},
    "sid-not-an-int": {"sid": "abc"},
    "no-sub": {"sub": None},
    "sub-not-an-int": {"sub": "abc"},
    "sub-a-float": {"sub": "1.5"},
    "sub-not-a-string": {"sub": ["1"]},
    "no-iat": {"iat": None},
    "no-exp": {"exp": None},
    "expired": {"exp": "past", "iat": "long-ago"},
    "exp-not-a-number": {"exp": "tomorrow"},
}


@pytest.mark.parametrize("flaw", list(FLAWS), ids=list(FLAWS))
async def test_a_token_with_a_flawed_claim_is_refused_even_with_the_right_key(
    client: httpx.AsyncClient, settings: Settings, flaw: str
) -> None:
    ada = await signed_up(client, "ada@example.com")
    claims = claims_for(ada, settings)
    for name, value in FLAWS[flaw].items():
        if value is None:
            del claims[name]
        elif value == "past":
            claims[name] = _past(1)
        elif value == "long-ago":
            claims[name] = _past(30)
        else:
            claims[name] = value

    token = sign(claims, settings.signing_key, settings.jwt_algorithm)

    assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_a_token_for_another_session_of_the_same_user_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")
    claims = claims_for(ada, settings) | {"sid": str(int(session_id_of(ada)) + 1000)}

    token = sign(claims, settings.signing_key, settings.jwt_algorithm)

    assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_a_token_whose_user_does_not_own_the_session_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    claims = claims_for(ada, settings) | {"sub": str(bob.id)}

    token = sign(claims, settings.signing_key, settings.jwt_algorithm)

    assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_a_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    assert_unauthorized(await client.get(ME, headers=bearer(ada.refresh_token)))


async def test_an_access_token_cannot_refresh(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.post(REFRESH, json={"refresh_token": ada.access_token})

    assert_unauthorized(response)
    refreshed = await client.post(REFRESH, json={"refresh_token": ada.refresh_token})
    assert refreshed.status_code == 200


async def test_a_token_with_a_flipped_character_is_refused(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    header, payload, signature = ada.access_token.split(".")
    middle = len(payload) // 2
    flipped = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1 :]

    response = await client.get(ME, headers=bearer(f"{header}.{flipped}.{signature}"))

    assert_unauthorized(response)
    assert (await client.get(ME, headers=ada.headers)).status_code == 200


async def test_a_token_rewritten_to_name_another_user_is_refused(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    header, payload, signature = ada.access_token.split(".")
    claims = json.loads(unb64url(payload)) | {"sub": str(bob.id)}
    rewritten = b64url(json.dumps(claims).encode())

    response = await client.get(ME, headers=bearer(f"{header}.{rewritten}.{signature}"))

    assert_unauthorized(response)


async def test_a_token_with_its_signature_removed_is_refused(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")
    header, payload, _ = ada.access_token.split(".")

    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        assert_unauthorized(await client.get(ME, headers=bearer(token)))


GARBAGE: dict[str, list[tuple[bytes, bytes]]] = {
    "bearer-without-token": [(b"Authorization", b"Bearer")],
    "bearer-and-space": [(b"Authorization", b"Bearer ")],
    "bearer-huge": [(b"Authorization", b"Bearer " + b"a" * 10000)],
    "bearer-three-dots": [(b"Authorization", b"Bearer ...")],
    "bearer-junk-segments": [(b"Authorization", b"Bearer a.b.c")],
    "bearer-prefix-only": [(b"Authorization", b"Bearer dbk_")],
    "bearer-huge-key": [(b"Authorization", b"Bearer dbk_" + b"a" * 10000)],
    "basic": [(b"Authorization", b"Basic dXNlcjpwYXNz")],
    "scheme-only-junk": [(b"Authorization", b"\x00\x01")],
    "bearer-non-ascii": [(b"Authorization", b"Bearer \xff\xfe\xfd\xe9")],
    "bearer-non-ascii-key": [(b"Authorization", b"Bearer dbk_\xff\xe9\xe8")],
    "bearer-utf8": [(b"Authorization", "Bearer jéton.ü.ß".encode())],
    "api-key-non-ascii": [(b"X-API-Key", b"\xff\xfe\xfd")],
    "api-key-5000": [(b"X-API-Key", b"k" * 5000)],
    "api-key-prefixed-5000": [(b"X-API-Key", b"dbk_" + b"k" * 5000)],
    "api-key-a-jwt-shape": [(b"X-API-Key", b"a.b.c")],
    "two-authorization-headers": [
        (b"Authorization", b"Bearer a.b.c"),
        (b"Authorization", b"Bearer d.e.f"),
    ],
}


@pytest.mark.parametrize("headers", list(GARBAGE.values()), ids=list(GARBAGE))
async def test_garbage_credentials_are_a_json_401(
    client: httpx.AsyncClient, headers: list[tuple[bytes, bytes]]
) -> None:
    response = await client.get(ME, headers=headers)

    assert_unauthorized(response)


async def test_a_bad_api_key_is_not_ignored_in_favour_of_a_good_token(
    client: httpx.AsyncClient,
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.get(ME, headers={**ada.headers, "X-API-Key": "dbk_wrong"})

    assert_unauthorized(response)


async def test_a_token_of_a_deleted_user_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await signed_up(client, "ada@example.com")
    assert (await client.get(ME, headers=ada.headers)).status_code == 200

    async with app.state.databases.auth.sessions() as session:
        await session.execute(delete(User).where(User.id == ada.id).execution_options(**UNAUDITED))
        record_change(session, ada.id)
        await commit_changed(app, session, ada.id)

    assert_unauthorized(await client.get(ME, headers=ada.headers))
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": ada.refresh_token}))


async def test_a_token_naming_a_user_id_beyond_the_id_range_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ada = await signed_up(client, "ada@example.com")
    claims = claims_for(ada, settings) | {"sub": str(2**63), "sid": str(2**63)}

    token = sign(claims, settings.signing_key, settings.jwt_algorithm)

    assert_unauthorized(await client.get(ME, headers=bearer(token)))
