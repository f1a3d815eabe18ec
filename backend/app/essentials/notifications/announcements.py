"""Announcements: a title and a body from the administrators, to every active user."""

from dataclasses import dataclass
from typing import Any

from app.essentials.notifications.notification import Notification


@dataclass(frozen=True)
class Announcement(Notification):
    type = "announcement"
    channels = ("database",)

    title: str
    body: str

    def to_database(self) -> dict[str, Any]:
        return {"title": self.title, "body": self.body}
