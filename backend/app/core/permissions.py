"""The registry of permission names.

Each domain declares its permissions as a `PermissionName` subclass in its own
`permissions.py` (`ProjectPermission.READ` is `"projects:read"`); routes require them
and the migrations that seed them import the same names, so a typo fails at import or
in mypy instead of becoming a silent 403. `registered_permissions()` lists them all.
The base lives in core so that any layer, the essentials included, can declare its own.
"""

from enum import StrEnum


class PermissionName(StrEnum):
    """Base of every domain's permissions; a member's value is its name in the database."""


def registered_permissions() -> set[str]:
    """Every permission declared by an imported module."""
    return {member.value for kind in PermissionName.__subclasses__() for member in kind}
