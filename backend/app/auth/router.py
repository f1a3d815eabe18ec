"""/api/v1/auth: register, sign in and out, rotate tokens, sessions, password reset, API keys."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends
from fastapi.security import OAuth2PasswordRequestForm

from app.auth import accounts, api_keys, lockout, password_reset, signin
from app.auth.dependencies import ClientDep, SessionUser
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
    UserCreate,
    UserRead,
    normalize_email,
)
from app.core.db.sessions import AuthDb
from app.core.web.dependencies import MailerDep, SettingsDep
from app.core.web.openapi import errors
from app.core.web.params import PathId
from app.essentials.cache.dependencies import CacheDep

TAG = {
    "name": "auth",
    "description": "Sign in and out, rotate tokens, list and end login sessions, reset a "
    "password, manage API keys. Lives in the **auth database**. To try the other routes "
    "here, register, then sign in with **Authorize** (the email is the username).",
}
router = APIRouter(prefix="/auth", tags=[TAG["name"]])


@router.post("/register", status_code=201, responses=errors(409, 422))
async def register(*, body: UserCreate, auth_db: AuthDb) -> UserRead:
    """Create an account with the `member` role."""
    user = await accounts.create(auth_db, body)
    return UserRead.of_account(user)


@router.post("/login", responses=errors(401, 422, 429))
async def login(
    *,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    auth_db: AuthDb,
    cache: CacheDep,
    settings: SettingsDep,
    client: ClientDep,
) -> TokenPair:
    """Sign in with the OAuth2 password form (`username` is the email)."""
    email = str(normalize_email(form.username))[:320]
    return await signin.login(
        auth_db, cache, settings, email=email, password=form.password[:1024], client=client
    )


@router.post("/refresh", responses=errors(401, 422))
async def refresh(
    *, body: RefreshRequest, auth_db: AuthDb, settings: SettingsDep, client: ClientDep
) -> TokenPair:
    """Exchange a refresh token for a new pair; the old one stops working."""
    return await signin.refresh(auth_db, settings, body.refresh_token, client)


@router.post("/logout", status_code=204, responses=errors(401, 403))
async def logout(*, user: SessionUser, auth_db: AuthDb) -> None:
    """End this login session: its tokens stop working at once."""
    assert user.session_id is not None
    await signin.revoke_session(auth_db, user.id, user.session_id)


@router.post("/logout-all", status_code=204, responses=errors(401, 403))
async def logout_all(*, user: SessionUser, auth_db: AuthDb) -> None:
    """End every login session of the user, this one included."""
    await signin.revoke_sessions(auth_db, user.id)


@router.get("/sessions", responses=errors(401, 403))
async def list_sessions(*, user: SessionUser, auth_db: AuthDb) -> list[SessionRead]:
    sessions = await signin.list_sessions(auth_db, user.id)
    return [
        SessionRead.model_validate(session).model_copy(
            update={"current": session.id == user.session_id}
        )
        for session in sessions
    ]


@router.delete("/sessions/{session_id}", status_code=204, responses=errors(401, 403, 404))
async def revoke_session(*, session_id: PathId, user: SessionUser, auth_db: AuthDb) -> None:
    await signin.revoke_session(auth_db, user.id, session_id)


@router.post("/password-reset/request", status_code=202, responses=errors(422, 429))
async def request_password_reset(
    *,
    body: PasswordResetRequest,
    auth_db: AuthDb,
    cache: CacheDep,
    settings: SettingsDep,
    client: ClientDep,
    mailer: MailerDep,
    background: BackgroundTasks,
) -> ResetRequested:
    """Mail a reset link if the account exists; the answer is the same either way. Too
    many requests for an email, or from an address, are a 429 for a while."""
    await lockout.count_reset_request(cache, settings, body.email, client.address)
    started = await password_reset.start(auth_db, settings, body.email)
    if started is not None:
        user, token = started
        subject, text = password_reset.reset_mail(settings, user.email, token)
        background.add_task(mailer.send, user.email, subject, text)
    return ResetRequested()


@router.post("/password-reset/confirm", status_code=204, responses=errors(400, 422))
async def confirm_password_reset(*, body: PasswordResetConfirm, auth_db: AuthDb) -> None:
    """Set a new password with a reset token; every session of the user ends."""
    await password_reset.finish(auth_db, body.token, body.new_password)


@router.post("/api-keys", status_code=201, responses=errors(400, 401, 403, 422))
async def create_api_key(
    *, body: ApiKeyCreate, user: SessionUser, auth_db: AuthDb, settings: SettingsDep
) -> ApiKeyCreated:
    """A personal API key, shown once. Its scopes must be permissions you hold."""
    api_key, secret = await api_keys.create(auth_db, settings, user, body)
    return ApiKeyCreated(**ApiKeyRead.model_validate(api_key).model_dump(), key=secret)


@router.get("/api-keys", responses=errors(401, 403))
async def list_api_keys(*, user: SessionUser, auth_db: AuthDb) -> list[ApiKeyRead]:
    return [ApiKeyRead.model_validate(key) for key in await api_keys.list_for(auth_db, user.id)]


@router.delete("/api-keys/{key_id}", status_code=204, responses=errors(401, 403, 404))
async def revoke_api_key(*, key_id: PathId, user: SessionUser, auth_db: AuthDb) -> None:
    """Revoke a key: it stops working at once."""
    await api_keys.revoke(auth_db, user.id, key_id)
