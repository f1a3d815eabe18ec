"""Who may change the catalogue; anyone signed in reads it."""

from app.core.permissions import PermissionName


class ProductPermission(PermissionName):
    WRITE = "products:write"
