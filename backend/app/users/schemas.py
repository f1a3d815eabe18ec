"""What the account endpoints accept: changes to one's own account and to others'."""

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from app.auth.schemas import Email, FullName, Password
from app.core.web.schemas import RequestBody

RoleLabel = Annotated[str, StringConstraints(min_length=1, max_length=64)]


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
    roles: Annotated[list[RoleLabel], Field(max_length=20)] | None = None
