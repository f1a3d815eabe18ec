"""What a caller may do with projects (their own only: ownership is checked apart)."""

from app.core.permissions import PermissionName


class ProjectPermission(PermissionName):
    READ = "projects:read"
    WRITE = "projects:write"
