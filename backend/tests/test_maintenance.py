"""The maintenance commands: each removes exactly what it should, in batches.

Rows are seeded a minute either side of each command's cutoff; the commands run as an
operator (or the scheduler's job) runs them, against the real databases.
"""

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from app.auth.cleanup import cleanup_sessions
from app.auth.models import CredentialChange, LoginSession, PasswordResetToken, User
from app.core.config import Settings
from app.core.db.registry import Databases
from app.core.db.types import utc_now
from app.essentials.queue.models import FailedJob, JobBatch
from tests.conftest import empty_tables, run_cli

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


@pytest.fixture
async def databases(app: FastAPI) -> AsyncIterator[Databases]:
    yield app.state.databases
    await empty_tables(app)


async def seed(databases: Databases, model: Any, rows: list[dict[str, Any]]) -> None:
    async with databases.auth.engine.begin() as connection:
        await connection.execute(insert(model), rows)


async def left(databases: Databases, column: Any) -> set[Any]:
    """The values of `column` in the rows still there."""
    async with databases.auth.engine.connect() as connection:
        return set(await connection.scalars(select(column)))


async def a_user(databases: Databases) -> int:
    async with databases.auth.engine.begin() as connection:
        await connection.execute(insert(User).values(email="ada@example.com", hashed_password="-"))
        return int(await connection.scalar(select(User.id)) or 0)


def session(
    user_id: int, name: str, *, expires: datetime, revoked: datetime | None = None
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "refresh_jti": name,
        "expires_at": expires,
        "revoked_at": revoked,
        "created_at": expires - 14 * DAY,
        "last_used_at": expires - 14 * DAY,
    }


def reset_token(
    user_id: int, name: str, *, expires: datetime, used: datetime | None = None
) -> dict[str, Any]:
    return {"user_id": user_id, "token_hash": name, "expires_at": expires, "used_at": used}


async def test_sessions_cleanup_removes_what_ended_before_the_retention_and_keeps_the_rest(
    settings: Settings, databases: Databases
) -> None:
    user_id = await a_user(databases)
    now = utc_now()
    cutoff = now - 7 * DAY  # SESSIONS_RETENTION_DAYS=7
    await seed(
        databases,
        LoginSession,
        [
            session(user_id, "expired-long-ago", expires=cutoff - MINUTE),
            session(user_id, "expired-lately", expires=cutoff + MINUTE),
            session(user_id, "live", expires=now + 14 * DAY),
            session(user_id, "revoked-long-ago", expires=now + DAY, revoked=cutoff - MINUTE),
            session(user_id, "revoked-lately", expires=now + DAY, revoked=cutoff + MINUTE),
        ],
    )
    await seed(
        databases,
        PasswordResetToken,
        [
            reset_token(user_id, "expired-long-ago", expires=cutoff - MINUTE),
            reset_token(user_id, "expired-lately", expires=cutoff + MINUTE),
            reset_token(user_id, "used-long-ago", expires=cutoff + MINUTE, used=cutoff - MINUTE),
            reset_token(user_id, "used-lately", expires=cutoff + 2 * MINUTE, used=cutoff + MINUTE),
            reset_token(user_id, "live", expires=now + 30 * MINUTE),
        ],
    )
    await seed(
        databases,
        CredentialChange,
        [
            {"user_id": user_id, "created_at": now - DAY - MINUTE},
            {"user_id": None, "created_at": now - DAY + MINUTE},
        ],
    )

    result = await run_cli(settings, "sessions", "cleanup", SESSIONS_RETENTION_DAYS="7")

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "removed 2 login sessions, 2 password reset tokens, 1 credential changes\n"
    )
    assert await left(databases, LoginSession.refresh_jti) == {
        "expired-lately",
        "live",
        "revoked-lately",
    }
    assert await left(databases, PasswordResetToken.token_hash) == {
        "expired-lately",
        "used-lately",
        "live",
    }
    assert await left(databases, CredentialChange.user_id) == {None}


async def test_sessions_cleanup_deletes_in_batches_and_keeps_live_rows_between_them(
    settings: Settings, databases: Databases, caplog: pytest.LogCaptureFixture
) -> None:
    user_id = await a_user(databases)
    now = utc_now()
    # 2,500 expired sessions, with a live one after every ten of them.
    rows = [
        session(user_id, f"s{n}", expires=now + DAY if n % 11 == 10 else now - 30 * DAY)
        for n in range(2750)
    ]
    await seed(databases, LoginSession, rows)
    caplog.set_level(logging.INFO, logger="app.core.db.integrity")

    removed = await cleanup_sessions(databases, settings)

    assert removed.login_sessions == 2500
    assert await left(databases, LoginSession.refresh_jti) == {
        f"s{n}" for n in range(2750) if n % 11 == 10
    }
    transactions = [r for r in caplog.records if r.getMessage().startswith("prune login sessions")]
    assert len(transactions) == 3  # 1,000 + 1,000 + 500
    assert all(r.getMessage().endswith("committed") for r in transactions)


async def test_queue_prune_failed_removes_old_failures_and_finished_batches(
    settings: Settings, databases: Databases
) -> None:
    now = utc_now()
    cutoff = now - 3 * DAY
    await seed(
        databases,
        FailedJob,
        [
            failed("old", cutoff - MINUTE),
            failed("recent", cutoff + MINUTE),
        ],
    )
    await seed(
        databases,
        JobBatch,
        [
            batch("finished long ago", created=cutoff - DAY, finished=cutoff - MINUTE),
            batch("finished lately", created=cutoff - DAY, finished=cutoff + MINUTE),
            batch("unfinished", created=cutoff - DAY, finished=None),
        ],
    )

    result = await run_cli(settings, "queue", "prune-failed", "--days", "3")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "removed 1 failed jobs, 1 finished batches\n"
    assert await left(databases, FailedJob.uuid) == {"recent"}
    assert await left(databases, JobBatch.name) == {"finished lately", "unfinished"}


async def test_queue_prune_failed_takes_the_retention_setting_and_refuses_negative_days(
    settings: Settings, databases: Databases
) -> None:
    now = utc_now()
    await seed(
        databases,
        FailedJob,
        [failed("9 days", now - 9 * DAY), failed("7 days", now - 7 * DAY + MINUTE)],
    )

    refused = await run_cli(settings, "queue", "prune-failed", "--days", "-1")
    assert refused.returncode == 2
    assert "--days" in refused.stderr
    assert await left(databases, FailedJob.uuid) == {"9 days", "7 days"}

    result = await run_cli(settings, "queue", "prune-failed", QUEUE_FAILED_RETENTION_DAYS="8")
    assert result.returncode == 0, result.stderr
    assert await left(databases, FailedJob.uuid) == {"7 days"}


def failed(uuid: str, at: datetime) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "queue": "default",
        "name": "tests.fail",
        "payload": "{}",
        "exception": "RuntimeError",
        "attempts": 3,
        "max_attempts": 3,
        "backoff": "[1]",
        "timeout": None,
        "batch_id": None,
        "failed_at": at,
    }


def batch(name: str, *, created: datetime, finished: datetime | None) -> dict[str, Any]:
    return {
        "name": name,
        "total_jobs": 1,
        "pending_jobs": 0 if finished else 1,
        "failed_jobs": 0,
        "created_at": created,
        "finished_at": finished,
    }
