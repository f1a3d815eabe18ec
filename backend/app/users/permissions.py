"""Administering other people's accounts."""

from app.auth.permissions import PermissionName


class UserPermission(PermissionName):
    ADMIN = "users:admin"
