"""Who is calling: `CurrentUser`, `OptionalUser`, `SessionUser`, `require_permissions`,
and `owned`, the load-and-check of a row that belongs to its caller.

A request proves itself with an access token (`Authorization: Bearer <jwt>`) or an
API key (`X-API-Key: <key>`, or `Authorization: Bearer <key>`); `app.auth.credentials`
checks either with one query.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Protocol, TypeVar

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from fastapi.security.base import SecurityBase

from app.auth import credentials
from app.auth.principal import Principal
from app.auth.principals import PrincipalCache
from app.auth.signin import Client
from app.core.config import API_PREFIX, Settings
from app.core.db.base import AppSession
from app.core.db.registry import Databases
from app.core.db.sessions import AppDb, note_caller
from app.core.db.types import MAX_ID
from app.core.errors import Forbidden, NotFound, Unauthorized
from app.core.observability.logging import bind_user_id
from app.core.permissions import PermissionName

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=f"{API_PREFIX}/auth/login",
    auto_error=False,
    scheme_name="OAuth2Password",
    description="An access token from the login form (or an API key as a bearer token).",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="APIKey",
    description="A personal API key, created at POST /api/v1/auth/api-keys.",
)


async def get_principals(request: Request) -> PrincipalCache:
    principals: PrincipalCache = request.app.state.principals
    return principals


Principals = Annotated[PrincipalCache, Depends(get_principals)]


async def authenticate(
    request: Request, bearer: str | None, api_key: str | None
) -> Principal | None:
    """The caller, or None without credentials. Bad credentials are a 401, never ignored.

    What it needs comes from the app's state, not from sub-dependencies: every signed-in
    request runs this, and each dependency FastAPI resolves costs more than the lookup."""
    state = request.app.state
    databases: Databases = state.databases
    principals: PrincipalCache = state.principals
    settings: Settings = state.settings
    if api_key is not None:
        return await credentials.from_api_key(databases.auth, principals, api_key)
    if bearer is None:
        return None
    if bearer.startswith(settings.api_key_prefix):
        return await credentials.from_api_key(databases.auth, principals, bearer)
    return await credentials.from_access_token(databases.auth, principals, settings, bearer)


class _Credentials(SecurityBase):
    """Documented as the OAuth2 scheme: FastAPI marks the routes that depend on it as
    taking credentials (`SECURITY_ALTERNATIVES` adds the API key beside it)."""

    def __init__(self) -> None:
        self.model = oauth2_scheme.model
        self.scheme_name = oauth2_scheme.scheme_name


class Caller(_Credentials):
    """The dependency that authenticates a request (`current_user`), and with
    `needed`, lets through only callers holding each of those permissions
    (`require_permissions`).

    One dependency that reads both headers itself: FastAPI resolves each dependency
    at a cost, and this runs on every signed-in request (the bearer and API-key
    schemes as sub-dependencies cost 3% of a request's CPU)."""

    def __init__(self, *needed: PermissionName) -> None:
        super().__init__()
        self.needed = needed

    async def __call__(self, request: Request) -> Principal:
        principal = await _caller(request)
        if principal is None:
            raise Unauthorized()
        if self.needed and not principal.can(*self.needed):
            raise Forbidden(
                f"Requires permission: {', '.join(self.needed)}", code="permission_denied"
            )
        return principal


class OptionalCaller(_Credentials):
    """As `Caller`, for routes open to all that tell callers apart: None without
    credentials (bad ones are still a 401)."""

    async def __call__(self, request: Request) -> Principal | None:
        return await _caller(request)


async def _caller(request: Request) -> Principal | None:
    # The schemes parse their headers as they would as dependencies.
    bearer, api_key = await oauth2_scheme(request), await api_key_scheme(request)
    principal = await authenticate(request, bearer, api_key)
    if principal is not None:
        bind_user_id(principal.id)  # the request's log lines name the user from here on
        # Whose writes this request's reads must see (read replicas: read-your-writes).
        await note_caller(request, principal.credential)
    return principal


current_user = Caller()
optional_user = OptionalCaller()
# Where a route takes the OAuth2 scheme's bearer token, it takes an API key as well.
SECURITY_ALTERNATIVES: dict[str, SecurityBase] = {oauth2_scheme.scheme_name: api_key_scheme}


async def session_user(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    """Only a signed-in session, not an API key: for managing credentials themselves."""
    if principal.session_id is None:
        raise Forbidden("This needs a signed-in session, not an API key", code="session_required")
    return principal


OptionalUser = Annotated[Principal | None, Depends(optional_user)]
CurrentUser = Annotated[Principal, Depends(current_user)]
SessionUser = Annotated[Principal, Depends(session_user)]


def require_permissions(*needed: PermissionName) -> Caller:
    """A dependency that lets through callers holding every one of `needed`."""
    return Caller(*needed)


class Owned(Protocol):
    """An app-database row that belongs to a user of the auth database."""

    @property
    def owner_id(self) -> int: ...


Row = TypeVar("Row", bound=Owned)


def owned(
    load: Callable[[AppSession, int], Awaitable[Row | None]],
    resource: str,
    permission: PermissionName,
    *,
    path_param: str,
) -> Callable[..., Awaitable[Row]]:
    """A dependency that loads the row named by the path parameter `path_param` with
    `load(app_db, id)`, after checking that the caller holds `permission`, and lets it
    through only if the caller owns it: someone else's row is a 404, as a missing one.

    No foreign key crosses the databases, so this is where an app row's `owner_id` is
    checked against the caller: once, for every route of the domain.
    """
    caller = require_permissions(permission)

    async def load_owned(
        row_id: Annotated[int, Path(alias=path_param, ge=1, le=MAX_ID)],
        user: Annotated[Principal, Depends(caller)],
        app_db: AppDb,
    ) -> Row:
        row = await load(app_db, row_id)
        if row is None or row.owner_id != user.id:
            raise NotFound(resource)
        return row

    return load_owned


async def get_client(request: Request) -> Client:
    """Where the request comes from, as a login session records it."""
    address = request.client.host if request.client else "unknown"
    return Client(address=address[:45], user_agent=request.headers.get("user-agent"))


ClientDep = Annotated[Client, Depends(get_client)]
