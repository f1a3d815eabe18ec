"""Who may send notifications to everyone."""

from app.core.permissions import PermissionName


class NotificationPermission(PermissionName):
    ANNOUNCE = "notifications:announce"
