"""Who may look after the queue: its admin page and endpoints."""

from app.core.permissions import PermissionName


class QueuePermission(PermissionName):
    ADMIN = "queue:admin"
