"""What a running job is given: `JobContext`, the services of its process and who it is.

Apart from `jobs` (where a job is declared), because it names the `Queue`, which
imports the declarations: a job can dispatch more jobs through `ctx.queue`.
"""

from dataclasses import dataclass

from app.core.config import Settings
from app.core.db.registry import Databases
from app.core.mail import Mailer
from app.essentials.queue.queue import Queue


@dataclass(frozen=True, slots=True)
class JobServices:
    """What every job of a process shares: the databases, settings, mailer and queue."""

    databases: Databases
    settings: Settings
    mailer: Mailer
    queue: Queue


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running job is given: the process's services, and who it is (its uuid,
    this attempt's number from 1, and the batch it belongs to, if any)."""

    services: JobServices
    uuid: str
    name: str
    attempt: int
    batch_id: int | None = None

    @property
    def databases(self) -> Databases:
        return self.services.databases

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def mailer(self) -> Mailer:
        return self.services.mailer

    @property
    def queue(self) -> Queue:
        return self.services.queue
