"""What a user is told when an administrator changes their account."""

from dataclasses import dataclass
from typing import Any

from app.essentials.notifications.notification import Mail, Notification


@dataclass(frozen=True)
class AccountDeactivated(Notification):
    """Sent by mail too: a deactivated user can no longer sign in to read the inbox."""

    type = "users.deactivated"
    channels = ("database", "mail")

    def to_database(self) -> dict[str, Any]:
        return {}

    def to_mail(self) -> Mail:
        return Mail(
            "Your account has been deactivated",
            "An administrator deactivated your account: you are signed out everywhere and "
            "your API keys are revoked. Contact them if you think this is a mistake.",
        )


@dataclass(frozen=True)
class RolesChanged(Notification):
    type = "users.roles_changed"
    channels = ("database", "mail")

    roles: tuple[str, ...]

    def to_database(self) -> dict[str, Any]:
        return {"roles": list(self.roles)}

    def to_mail(self) -> Mail:
        held = ", ".join(self.roles) or "none"
        return Mail("Your roles have changed", f"An administrator changed your roles to: {held}.")
