"""Who may read everyone's activity log."""

from app.core.permissions import PermissionName


class ActivityPermission(PermissionName):
    READ = "activity:read"
