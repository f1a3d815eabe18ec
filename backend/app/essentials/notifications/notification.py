"""`Notification`: what a kind of notification declares, its channels and renderings.

    @dataclass(frozen=True)
    class OrderShipped(Notification):
        type = "orders.shipped"
        channels = ("database", "mail")

        order_id: int

        def to_database(self) -> dict[str, Any]:
            return {"order_id": self.order_id}

        def to_mail(self) -> Mail:
            return Mail(f"Your order #{self.order_id} is on its way", "...")

A notification is rendered when it is sent (`render`), in the request: what the job
carries is the rendered text, so that a worker needs no class to deliver it and a user
reads what was true when it happened. Only the mail's address is looked up later.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, get_args

from app.core.db.types import utc_now
from app.essentials.notifications.models import TYPE_LENGTH

Channel = Literal["database", "mail"]
CHANNELS: frozenset[str] = frozenset(get_args(Channel))


@dataclass(frozen=True, slots=True)
class Mail:
    """A notification as a mail: its subject and plain-text body."""

    subject: str
    body: str


class Notification:
    """The base of every kind: `type` names it (the client tells kinds apart by it),
    `channels` says where it goes; each channel named has its `to_<channel>` method."""

    type: ClassVar[str]
    channels: ClassVar[tuple[Channel, ...]] = ("database",)

    def to_database(self) -> dict[str, Any]:
        """The JSON object the client reads in the inbox (`data`)."""
        raise NotImplementedError(f"{self.type} goes to the database but has no to_database")

    def to_mail(self) -> Mail:
        raise NotImplementedError(f"{self.type} goes by mail but has no to_mail")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A notification ready to deliver: its id and time (chosen once, at dispatch, so
    that a delivery run again writes the same row), and what each channel shows."""

    id: str
    type: str
    created_at: datetime
    data: dict[str, Any] | None
    mail: Mail | None

    def arguments(self) -> dict[str, Any]:
        """As a job's JSON arguments."""
        return {
            "id": self.id,
            "type": self.type,
            "created_at": self.created_at.isoformat(),
            "data": self.data,
            "mail": None if self.mail is None else [self.mail.subject, self.mail.body],
        }

    @classmethod
    def from_arguments(cls, arguments: dict[str, Any]) -> "Rendered":
        mail = arguments["mail"]
        return cls(
            id=arguments["id"],
            type=arguments["type"],
            created_at=datetime.fromisoformat(arguments["created_at"]),
            data=arguments["data"],
            mail=None if mail is None else Mail(*mail),
        )


def render(notification: Notification) -> Rendered:
    """Render each channel of `notification` now, under a new id."""
    kind = notification.type
    if not kind or len(kind) > TYPE_LENGTH:
        raise ValueError(f"a notification type has 1 to {TYPE_LENGTH} characters: {kind!r}")
    unknown = set(notification.channels) - CHANNELS
    if not notification.channels or unknown:
        raise ValueError(f"{kind}: channels must be some of {sorted(CHANNELS)}, not {unknown}")
    channels = set(notification.channels)
    return Rendered(
        id=str(uuid.uuid4()),
        type=kind,
        created_at=utc_now(),
        data=notification.to_database() if "database" in channels else None,
        mail=notification.to_mail() if "mail" in channels else None,
    )


def recipient_id(rendered_id: str, user_id: int) -> str:
    """The id of one user's copy of a notification sent to many: derived, not drawn, so
    that a chunk delivered twice writes each row once."""
    return str(uuid.uuid5(uuid.UUID(rendered_id), str(user_id)))
