"""What the API accepts and returns about users; never a password hash."""

import unicodedata
from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from app.users.models import User


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
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RequestBody(BaseModel):
    """A request body: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


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


class UserUpdate(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"full_name": "Ada King"}]})

    email: Email | None = None
    full_name: FullName | None = None


class PasswordChange(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"current_password": "correct horse battery", "new_password": "a brand new secret"}
            ]
        }
    )

    current_password: Annotated[str, StringConstraints(max_length=128)]
    new_password: Password


class AccountDeletion(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"password": "correct horse battery"}]}
    )

    password: Annotated[str, StringConstraints(max_length=128)]


class AdminUserUpdate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"is_active": True, "roles": ["member"]}]}
    )

    is_active: bool | None = None
    roles: Annotated[list[RoleName], Field(max_length=20)] | None = None


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
