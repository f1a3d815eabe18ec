"""What a caller may do with orders (their own only: ownership is checked apart)."""

from app.core.permissions import PermissionName


class OrderPermission(PermissionName):
    READ = "orders:read"
    WRITE = "orders:write"
