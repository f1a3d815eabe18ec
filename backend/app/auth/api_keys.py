"""API keys (personal access tokens): created within the owner's permissions, shown once,
stored as a SHA-256 digest, revoked at once."""

from datetime import datetime

from sqlalchemy import select, update

from app.auth import accounts
from app.auth.changes import record_change
from app.auth.models import ApiKey
from app.auth.principal import Principal
from app.auth.schemas import ApiKeyCreate
from app.core.config import Settings
from app.core.db.base import AuthSession
from app.core.db.types import utc_now
from app.core.errors import BadRequest, Forbidden, NotFound
from app.core.security import digest, new_secret
from app.essentials.activity.recording import BY_HAND, activity


async def create(
    auth_db: AuthSession, settings: Settings, owner: Principal, request: ApiKeyCreate
) -> tuple[ApiKey, str]:
    """A new key whose scopes must lie within what its owner may do (a superuser: any
    permission that exists); returns it with the secret, which is stored only hashed."""
    allowed = (
        await accounts.all_permission_names(auth_db) if owner.is_superuser else owner.permissions
    )
    excess = sorted(set(request.scopes) - allowed)
    if excess:
        raise Forbidden(
            f"A key cannot have scopes its owner lacks: {', '.join(excess)}",
            code="scope_not_allowed",
        )
    if request.expires_at is not None and request.expires_at <= utc_now():
        raise BadRequest("expires_at must be in the future", code="invalid_expiry")
    key = f"{settings.api_key_prefix}{new_secret(32)}"
    api_key = ApiKey(
        user_id=owner.id,
        name=request.name,
        prefix=key[: len(settings.api_key_prefix) + 6],
        key_hash=digest(key),
        scopes=" ".join(sorted(set(request.scopes))),
        expires_at=request.expires_at,
    )
    auth_db.add(api_key)
    await auth_db.flush()
    return api_key, key


async def list_for(auth_db: AuthSession, user_id: int) -> list[ApiKey]:
    result = await auth_db.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.id)
    )
    return list(result)


async def revoke(auth_db: AuthSession, user_id: int, key_id: int) -> None:
    now = utc_now()
    result = await auth_db.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False, **BY_HAND)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("API key")
    await _log_revoked(auth_db, [key_id], now)
    record_change(auth_db, user_id)


async def revoke_all(auth_db: AuthSession, user_id: int) -> None:
    now = utc_now()
    live = ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)
    key_ids = list(await auth_db.scalars(select(ApiKey.id).where(*live)))
    if key_ids:
        await auth_db.execute(
            update(ApiKey)
            .where(ApiKey.id.in_(key_ids), *live)
            .values(revoked_at=now)
            .execution_options(synchronize_session=False, **BY_HAND)
        )
        await _log_revoked(auth_db, key_ids, now)
    record_change(auth_db, user_id)


async def _log_revoked(auth_db: AuthSession, key_ids: list[int], now: datetime) -> None:
    """The entries of the guarded UPDATEs above, which the ORM does not see."""
    for key_id in key_ids:
        await (
            activity("auth")
            .on("api_keys", key_id)
            .event("revoked")
            .with_properties({"old": {"revoked_at": None}, "attributes": {"revoked_at": now}})
            .log(auth_db, "API key revoked")
        )
