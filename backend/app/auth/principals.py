"""Each worker's verified principals, so that most requests check their credential
without a round trip to the auth database.

A principal is kept once the credential check has read it, and served again while both
hold: its login session or key has not expired, and the worker follows the change feed
(`app.auth.changes`), i.e. its last successful poll started less than `FRESHNESS`
seconds ago. A change to a user (logout, revocation, deactivation, erasure, new
password, roles or profile) drops their principals: at once in the worker that made it,
within `FRESHNESS` in every other. A worker that cannot poll stops serving from memory
and checks every request again until it can: it never serves a principal older than
the bound. `last_used_at` is written in batches by the follower, not by requests.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from app.auth.principal import Principal
from app.core.db.types import utc_now

FRESHNESS = 1.0  # seconds: the bound on how late a change reaches every worker
MAX_ENTRIES = 50_000


@dataclass(slots=True)
class _Entry:
    principal: Principal
    expires_at: datetime | None


@dataclass(eq=False)
class LastUse:
    """When each login session and key was last used, waiting for the follower to write
    it (at most once a `resolution` per credential, in one statement per batch)."""

    sessions: dict[int, datetime] = field(default_factory=dict)
    api_keys: dict[int, datetime] = field(default_factory=dict)

    def session(self, session_id: int) -> None:
        self.sessions[session_id] = utc_now()

    def api_key(self, key_id: int) -> None:
        self.api_keys[key_id] = utc_now()

    def take(self) -> tuple[dict[int, datetime], dict[int, datetime]]:
        taken = self.sessions, self.api_keys
        self.sessions, self.api_keys = {}, {}
        return taken

    def put_back(self, sessions: dict[int, datetime], api_keys: dict[int, datetime]) -> None:
        """Return what could not be written; a later use recorded since wins."""
        self.sessions = sessions | self.sessions
        self.api_keys = api_keys | self.api_keys


@dataclass(eq=False)
class PrincipalCache:
    """Verified principals by credential (`token:<access token>`, `key:<digest>`)."""

    enabled: bool = True
    fresh_until: float = 0.0  # monotonic time; set by the follower after each poll
    last_use: LastUse = field(default_factory=LastUse)
    # Bumped by every drop: a principal read from the database before a drop is stale.
    generation: int = 0
    _entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    _keys_of_user: dict[int, set[str]] = field(default_factory=dict)

    def get(self, key: str) -> Principal | None:
        if not self.enabled or time.monotonic() >= self.fresh_until:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= utc_now():
            self._drop_key(key)
            return None
        return entry.principal

    def put(
        self, key: str, principal: Principal, expires_at: datetime | None, *, generation: int
    ) -> None:
        """Keep `principal`, read from the database when `generation` was current; not if
        anything was dropped since (the read may predate the change)."""
        if not self.enabled or generation != self.generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._drop_key(next(iter(self._entries)))  # the oldest
        self._entries[key] = _Entry(principal, expires_at)
        self._keys_of_user.setdefault(principal.id, set()).add(key)

    def drop_user(self, user_id: int | None) -> None:
        """Forget the user's principals; `None`: everyone's."""
        self.generation += 1
        if user_id is None:
            self._entries.clear()
            self._keys_of_user.clear()
            return
        for key in self._keys_of_user.pop(user_id, set()):
            self._entries.pop(key, None)

    def _drop_key(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._keys_of_user.get(entry.principal.id, set()).discard(key)
