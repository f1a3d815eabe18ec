"""The roles the migrations seed, and the statements that seed permissions.

Permission names are declared by each domain (`app.core.permissions.PermissionName`);
they live in the auth database's `permissions` table, granted to roles.
"""

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from sqlalchemy import column, delete, insert, select, table, true
from sqlalchemy.sql.expression import Executable

from app.core.permissions import PermissionName


class RoleName(StrEnum):
    """The roles the migrations seed; new users get `member`."""

    ADMIN = "admin"
    MEMBER = "member"


DEFAULT_ROLE = RoleName.MEMBER


# Lightweight tables for the migrations: they must not depend on today's models.
_permissions = table("permissions", column("id"), column("name"), column("description"))
_roles = table("roles", column("id"), column("name"))
_role_permissions = table("role_permissions", column("role_id"), column("permission_id"))

Grants = Mapping[PermissionName, tuple[str, Sequence[RoleName]]]


def seed_statements(grants: Grants) -> list[Executable]:
    """What a migration runs to add permissions (name: description and the roles
    granted it); the roles must exist."""
    statements: list[Executable] = [
        insert(_permissions).values(
            [{"name": name.value, "description": text} for name, (text, _) in grants.items()]
        )
    ]
    for name, (_, granted_to) in grants.items():
        statements.append(
            insert(_role_permissions).from_select(
                ["role_id", "permission_id"],
                select(_roles.c.id, _permissions.c.id)
                .select_from(_roles.join(_permissions, true()))  # every pair, then filtered
                .where(_roles.c.name.in_(granted_to), _permissions.c.name == name.value),
            )
        )
    return statements


def unseed_statements(names: Iterable[PermissionName]) -> list[Executable]:
    """What a migration's downgrade runs to take permissions away again."""
    values = [name.value for name in names]
    granted = select(_permissions.c.id).where(_permissions.c.name.in_(values))
    return [
        delete(_role_permissions).where(_role_permissions.c.permission_id.in_(granted)),
        delete(_permissions).where(_permissions.c.name.in_(values)),
    ]
