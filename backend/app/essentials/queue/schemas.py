"""What the queue's admin endpoints return."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class QueueCountsRead(BaseModel):
    """One queue's jobs: ready to run, waiting for their time, running, failed for good."""

    model_config = ConfigDict(from_attributes=True)

    queue: str
    ready: int
    delayed: int
    running: int
    failed: int


class WorkerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    hostname: str
    pid: int
    queues: str
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime


class QueueStatus(BaseModel):
    queues: list[QueueCountsRead]
    workers: list[WorkerRead]


class RunningJobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    uuid: str
    name: str
    queue: str
    attempts: int
    max_attempts: int
    reserved_at: datetime | None
    worker_id: int


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
