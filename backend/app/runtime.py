"""What a process builds once from its settings: the databases, the mailer, the queue
and the outbox. The API's lifespan and the worker command build the same `Runtime`,
so a job dispatched by one is run with the same services by the other.
"""

from dataclasses import dataclass

from app.core.config import Settings
from app.core.db.registry import Databases, create_databases
from app.core.mail import Mailer, create_mailer
from app.essentials.activity import recording as activity
from app.essentials.outbox.outbox import Outbox
from app.essentials.queue.context import JobServices
from app.essentials.queue.jobs import JobMessage
from app.essentials.queue.queue import Queue, create_queue


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    databases: Databases
    mailer: Mailer
    queue: Queue
    outbox: Outbox

    @property
    def job_services(self) -> JobServices:
        return JobServices(self.databases, self.settings, self.mailer, self.queue)


def create_runtime(settings: Settings) -> Runtime:
    databases = create_databases(settings)
    queue = create_queue(settings, databases)
    # Each outbox kind and the handler that delivers it (jobs: into the queue; the app
    # database's activity entries: into activity_log).
    outbox = Outbox(
        databases, settings, {JobMessage.kind: queue.deliver, activity.KIND: activity.deliver}
    )
    return Runtime(settings, databases, create_mailer(settings), queue, outbox)
