"""Who is calling, as the credential check established it."""

from dataclasses import dataclass
from datetime import datetime

from app.auth.schemas import UserRead


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as read by the credential check, and what this credential
    lets them do. To change the account itself, load it in the handler's session."""

    id: int
    email: str
    full_name: str | None
    is_superuser: bool
    created_at: datetime
    roles: frozenset[str]
    permissions: frozenset[str]  # for a key, already cut down to the key's scopes
    session_id: int | None = None
    api_key_id: int | None = None

    @property
    def credential(self) -> str:
        """The login session or API key this request came with, as a stable key."""
        if self.api_key_id is not None:
            return f"api-key:{self.api_key_id}"
        return f"session:{self.session_id}"

    def can(self, *needed: str) -> bool:
        if self.is_superuser and self.api_key_id is None:
            return True
        return set(needed) <= self.permissions

    def profile(self) -> UserRead:
        return UserRead(
            id=self.id,
            email=self.email,
            full_name=self.full_name,
            is_active=True,
            is_superuser=self.is_superuser,
            roles=sorted(self.roles),
            created_at=self.created_at,
        )
