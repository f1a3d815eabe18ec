"""What the auth endpoints accept and return; secrets appear only where they are handed out."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from app.users.schemas import Email, Password, RequestBody

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
    id: int
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


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


class ApiKeyRead(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key itself: shown this once, stored only as a hash")
