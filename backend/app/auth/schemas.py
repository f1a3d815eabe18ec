"""What the auth endpoints accept and return; secrets appear only where they are handed out.

Also the shapes of an account every package shares: `Email`, `Password`, `UserCreate`
and `UserRead` (never a password hash).
"""

import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from app.auth.models import User
from app.core.web.schemas import RequestBody


def normalize_email(value: object) -> object:
    """Trimmed, NFC-normalised and lower-cased, so one address has one spelling."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value.strip()).lower()
    return value


def _check_email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("not a valid email address") from None
    return value


Email = Annotated[
    str,
    BeforeValidator(normalize_email),
    StringConstraints(min_length=3, max_length=320),
    AfterValidator(_check_email),
    Field(json_schema_extra={"format": "email"}, examples=["ada@example.com"]),
]
Password = Annotated[
    str, StringConstraints(min_length=8, max_length=128), Field(examples=["correct horse battery"])
]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Scope = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*$", max_length=64)
]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")


class RefreshRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": "<refresh_token from the login answer>"}]}
    )

    refresh_token: Token


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = Field(default=False, description="The session of this request's token")


class PasswordResetRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ada@example.com"}]})

    email: Email


class ResetRequested(BaseModel):
    """The same answer whether or not the email belongs to an account."""

    detail: str = "If an account uses this email, a reset link is on its way"


class PasswordResetConfirm(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"token": "<token from the mail>", "new_password": "a brand new secret"}]
        }
    )

    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    new_password: Password


class ApiKeyCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "ci", "scopes": ["projects:read", "projects:write"]}]
        }
    )

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(max_length=50, examples=[["projects:read"]])]
    expires_at: AwareDatetime | None = None


def _words(value: object) -> object:
    # Scopes are stored space-separated.
    return value.split() if isinstance(value, str) else value


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    scopes: Annotated[list[str], BeforeValidator(_words)]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key itself: shown this once, stored only as a hash")


class UserCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "password": "correct horse battery",
                    "full_name": "Ada Lovelace",
                }
            ]
        }
    )

    email: Email
    password: Password
    full_name: FullName | None = None


class UserRead(BaseModel):
    id: int
    email: str
    full_name: str | None
    is_active: bool
    is_superuser: bool
    roles: list[str]
    created_at: datetime

    @classmethod
    def of(cls, user: User, roles: list[str] | frozenset[str]) -> "UserRead":
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            is_active=user.is_active,
            is_superuser=user.is_superuser,
            roles=sorted(roles),
            created_at=user.created_at,
        )

    @classmethod
    def of_account(cls, user: User) -> "UserRead":
        """From a user loaded with its roles."""
        return cls.of(user, [role.name for role in user.roles])
