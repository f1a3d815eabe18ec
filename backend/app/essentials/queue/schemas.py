"""What the queue's admin endpoints return: the backend's own records where they are
what a reader wants (`QueueCounts`, `RegisteredWorker`, `RunningJob`), and these."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.essentials.queue.backend import QueueCounts, RegisteredWorker


class QueueStatus(BaseModel):
    """Per queue: jobs ready to run, waiting for their time, running, failed for good;
    and the workers alive."""

    queues: list[QueueCounts]
    workers: list[RegisteredWorker]


class FailedJobRead(BaseModel):
    """A job that failed for good; `payload` is its arguments as stored (JSON text,
    or whatever a worker could not read), `exception` the error with its traceback."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    uuid: str
    name: str
    queue: str
    payload: str
    exception: str
    attempts: int
    max_attempts: int
    batch_id: int | None
    failed_at: datetime


class Retried(BaseModel):
    retried: int
