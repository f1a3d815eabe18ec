"""Passwords, JWTs and random secrets: the primitives the auth domain is built from."""

import contextlib
import hashlib
import os
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal, TypeVar

import anyio.to_thread
from jose import JWTError, jwt
from passlib.context import CryptContext

from app.core.config import Settings
from app.core.db.types import parse_id

TokenType = Literal["access", "refresh"]
T = TypeVar("T")

# argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane); bcrypt only verifies hashes
# made before, and `deprecated="auto"` makes every non-argon2 hash "outdated".
_passwords = CryptContext(
    schemes=["argon2", "bcrypt"],
    deprecated="auto",
    argon2__type="ID",
    argon2__memory_cost=19 * 1024,
    argon2__time_cost=2,
    argon2__parallelism=1,
)
_BCRYPT_MAX_BYTES = 72

# Hashing runs in worker threads, but no more of them at once than leaves a core to
# the event loop: sixteen logins hashing on two cores would starve every request.
_hashing = anyio.CapacityLimiter(max(1, (os.cpu_count() or 1) - 1))


def _in_background(work: Callable[..., T]) -> Callable[..., T]:
    """Run `work` at the lowest CPU priority: when a core is contended, the event loop's
    thread wins over a hash (Linux schedules threads, and takes a nice value per thread)."""

    def run(*args: Any) -> T:
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        return work(*args)

    return run


async def hash_password(password: str) -> str:
    """Hash in a worker thread: argon2 takes tens of milliseconds of CPU."""
    return str(
        await anyio.to_thread.run_sync(_in_background(_passwords.hash), password, limiter=_hashing)
    )


async def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Check a password off the event loop; also returns a new hash when the stored one
    is outdated. With no stored hash (unknown user) a dummy one is checked, so that
    the answer takes as long as for a real user."""
    return await anyio.to_thread.run_sync(
        _in_background(_verify_and_update), password, hashed, limiter=_hashing
    )


def _verify_and_update(password: str, hashed: str | None) -> tuple[bool, str | None]:
    if hashed is None:
        _passwords.verify(password, _dummy_hash())
        return False, None
    secret: str | bytes = password
    if _passwords.identify(hashed) == "bcrypt":
        # Old bcrypt libraries cut passwords at 72 bytes; bcrypt 5 refuses longer ones.
        secret = password.encode()[:_BCRYPT_MAX_BYTES]
    try:
        valid, new_hash = _passwords.verify_and_update(secret, hashed)
    except ValueError:  # not a hash we know: treat as a wrong password
        return False, None
    if valid and new_hash is not None and isinstance(secret, bytes):
        new_hash = _passwords.hash(password)
    return valid, new_hash


@cache
def _dummy_hash() -> str:
    return str(_passwords.hash(secrets.token_urlsafe(16)))


def new_secret(nbytes: int = 32) -> str:
    """A random, URL-safe secret (reset tokens, API keys)."""
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret: what is stored instead of the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    session_id: int
    type: TokenType
    jti: str
    expires_at: datetime


def create_token(
    settings: Settings, *, type: TokenType, user_id: int, session_id: int, jti: str | None = None
) -> tuple[str, TokenClaims]:
    now = datetime.now(UTC)
    lifetime = (
        timedelta(minutes=settings.access_token_expire_minutes)
        if type == "access"
        else timedelta(days=settings.refresh_token_expire_days)
    )
    claims = TokenClaims(user_id, session_id, type, jti or uuid.uuid4().hex, now + lifetime)
    payload = {
        "sub": str(user_id),
        "sid": str(session_id),
        "type": type,
        "jti": claims.jti,
        "iat": int(now.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    token = jwt.encode(payload, settings.signing_key, algorithm=settings.jwt_algorithm)
    return token, claims


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or of the wrong type."""


def decode_token(settings: Settings, token: str, expected_type: TokenType) -> TokenClaims:
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            settings.signing_key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require_sub": True,
                "require_jti": True,
                "require_iat": True,
                "require_exp": True,
                "require_iss": True,
                "require_aud": True,
            },
        )
    except (JWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from None
    if payload.get("type") != expected_type:
        raise InvalidToken(f"not an {expected_type} token")
    try:
        return TokenClaims(
            user_id=parse_id(payload["sub"]),
            session_id=parse_id(payload["sid"]),
            type=expected_type,
            jti=str(payload["jti"]),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (KeyError, ValueError, TypeError, OverflowError):
        raise InvalidToken("malformed claims") from None
