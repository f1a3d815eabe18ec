"""/api/v1/auth: register, sign in and out, rotate tokens, sessions, password reset, API keys."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from app.auth import service
from app.auth.dependencies import SessionUser
from app.auth.models import ApiKey
from app.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    ResetRequested,
    SessionRead,
    TokenPair,
)
from app.core.database import AuthDb
from app.core.dependencies import MailerDep, SettingsDep
from app.core.errors import errors
from app.core.params import PathId
from app.users import service as users_service
from app.users.schemas import UserCreate, UserRead, normalize_email

router = APIRouter(prefix="/auth", tags=["auth"])


async def get_client(request: Request) -> service.Client:
    address = request.client.host if request.client else "unknown"
    return service.Client(address=address[:45], user_agent=request.headers.get("user-agent"))


ClientDep = Annotated[service.Client, Depends(get_client)]


@router.post("/register", status_code=201, responses=errors(409, 422))
async def register(*, body: UserCreate, auth_db: AuthDb) -> UserRead:
    """Create an account with the `member` role."""
    user = await users_service.create(auth_db, body)
    return UserRead.of(user, [role.name for role in user.roles])


@router.post("/login", responses=errors(401, 422, 429))
async def login(
    *,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    auth_db: AuthDb,
    settings: SettingsDep,
    client: ClientDep,
) -> TokenPair:
    """Sign in with the OAuth2 password form (`username` is the email)."""
    email = str(normalize_email(form.username))[:320]
    return await service.login(
        auth_db, settings, email=email, password=form.password[:1024], client=client
    )


@router.post("/refresh", responses=errors(401, 422))
async def refresh(
    *, body: RefreshRequest, auth_db: AuthDb, settings: SettingsDep, client: ClientDep
) -> TokenPair:
    """Exchange a refresh token for a new pair; the old one stops working."""
    return await service.refresh(auth_db, settings, body.refresh_token, client)


@router.post("/logout", status_code=204, responses=errors(401, 403))
async def logout(*, user: SessionUser, auth_db: AuthDb) -> None:
    """End this login session: its tokens stop working at once."""
    assert user.session_id is not None
    await service.revoke_session(auth_db, user.id, user.session_id)


@router.post("/logout-all", status_code=204, responses=errors(401, 403))
async def logout_all(*, user: SessionUser, auth_db: AuthDb) -> None:
    """End every login session of the user, this one included."""
    await service.revoke_sessions(auth_db, user.id)


@router.get("/sessions", responses=errors(401, 403))
async def list_sessions(*, user: SessionUser, auth_db: AuthDb) -> list[SessionRead]:
    sessions = await service.list_sessions(auth_db, user.id)
    return [
        SessionRead(
            id=session.id,
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            ip=session.ip,
            user_agent=session.user_agent,
            current=session.id == user.session_id,
        )
        for session in sessions
    ]


@router.delete("/sessions/{session_id}", status_code=204, responses=errors(401, 403, 404))
async def revoke_session(*, session_id: PathId, user: SessionUser, auth_db: AuthDb) -> None:
    await service.revoke_session(auth_db, user.id, session_id)


@router.post("/password-reset/request", status_code=202, responses=errors(422))
async def request_password_reset(
    *,
    body: PasswordResetRequest,
    auth_db: AuthDb,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
) -> ResetRequested:
    """Mail a reset link if the account exists; the answer is the same either way."""
    started = await service.start_password_reset(auth_db, settings, body.email)
    if started is not None:
        user, token = started
        link = settings.password_reset_url.format(token=token)
        background.add_task(
            mailer.send,
            user.email,
            "Reset your password",
            f"Someone asked to reset the password of {user.email}.\n"
            f"To choose a new one, open:\n{link}\n"
            f"The link works once, for {settings.password_reset_expire_minutes} minutes.\n"
            "If it was not you, ignore this message.",
        )
    return ResetRequested()


@router.post("/password-reset/confirm", status_code=204, responses=errors(400, 422))
async def confirm_password_reset(*, body: PasswordResetConfirm, auth_db: AuthDb) -> None:
    """Set a new password with a reset token; every session of the user ends."""
    await service.finish_password_reset(auth_db, body.token, body.new_password)


@router.post("/api-keys", status_code=201, responses=errors(400, 401, 403, 422))
async def create_api_key(
    *, body: ApiKeyCreate, user: SessionUser, auth_db: AuthDb, settings: SettingsDep
) -> ApiKeyCreated:
    """A personal API key, shown once. Its scopes must be permissions you hold."""
    allowed = (
        await users_service.all_permission_names(auth_db) if user.is_superuser else user.permissions
    )
    api_key, secret = await service.create_api_key(
        auth_db, settings, user_id=user.id, allowed=allowed, request=body
    )
    return ApiKeyCreated(**_api_key_read(api_key).model_dump(), key=secret)


@router.get("/api-keys", responses=errors(401, 403))
async def list_api_keys(*, user: SessionUser, auth_db: AuthDb) -> list[ApiKeyRead]:
    return [_api_key_read(key) for key in await service.list_api_keys(auth_db, user.id)]


@router.delete("/api-keys/{key_id}", status_code=204, responses=errors(401, 403, 404))
async def revoke_api_key(*, key_id: PathId, user: SessionUser, auth_db: AuthDb) -> None:
    """Revoke a key: it stops working at once."""
    await service.revoke_api_key(auth_db, user.id, key_id)


def _api_key_read(api_key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=api_key.id,
        name=api_key.name,
        prefix=api_key.prefix,
        scopes=api_key.scopes.split(),
        created_at=api_key.created_at,
        expires_at=api_key.expires_at,
        last_used_at=api_key.last_used_at,
    )
