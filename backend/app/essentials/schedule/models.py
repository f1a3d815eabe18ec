"""`scheduled_runs`: one row per occurrence of a recurring task that was enqueued.

As Solid Queue's `recurring_executions`: a scheduler inserts `(task, run_at)` before it
enqueues the task's job, in the same transaction, and enqueues it only if the row is
new; the unique constraint lets one of several schedulers running at once through.
"""

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import AuthBase
from app.core.db.types import BigIntId, utc_now

TASK_NAME_LENGTH = 100


class ScheduledRun(AuthBase):
    __tablename__ = "scheduled_runs"
    __table_args__ = (UniqueConstraint("task", "run_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    task: Mapped[str] = mapped_column(String(TASK_NAME_LENGTH))
    run_at: Mapped[datetime]  # the occurrence, as the cron expression gives it
    job_uuid: Mapped[str] = mapped_column(String(36))  # the job that runs it
    created_at: Mapped[datetime] = mapped_column(default=utc_now)  # when it was enqueued
