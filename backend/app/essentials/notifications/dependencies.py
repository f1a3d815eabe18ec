"""Who calls the notifications API, as the router sees them: anyone with an id.

`app/main.py` hands `create_router` the dependency that authenticates the caller; the
essentials only need the caller's id.
"""

from typing import Protocol


class Caller(Protocol):
    @property
    def id(self) -> int: ...
