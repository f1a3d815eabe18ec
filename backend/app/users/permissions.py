"""Administering other people's accounts."""

from app.core.permissions import PermissionName


class UserPermission(PermissionName):
    ADMIN = "users:admin"
