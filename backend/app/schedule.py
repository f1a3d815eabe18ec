"""Every recurring task, as `app/jobs.py` lists every job.

The scheduler (run by every long-running `queue work`, or by `schedule run`) enqueues
each task's job at the times of its cron expression, in UTC; SCHEDULE_CRON replaces
an expression, or turns a task off, by name. Add a task with one line below: a name,
a cron expression, and an async function taking the `JobContext`. `schedule list`
shows them, with their next and last runs.
"""

from app.auth.cleanup import SessionsCleanup, cleanup_sessions
from app.essentials.activity import service as activity
from app.essentials.cache.factory import create_cache
from app.essentials.notifications import service as notifications
from app.essentials.outbox.outbox import Outbox
from app.essentials.queue.context import JobContext
from app.essentials.queue.queue import PrunedJobs
from app.essentials.schedule.runs import prune_runs
from app.essentials.schedule.tasks import Schedule, Task


async def collect_cache_garbage(ctx: JobContext) -> str:
    """Expired cache entries and locks (and with them, old sign-in failures)."""
    cache = create_cache(ctx.settings, ctx.databases)
    try:
        return f"{await cache.gc()} expired cache entries"
    finally:
        await cache.close()


async def clean_up_sessions(ctx: JobContext) -> SessionsCleanup:
    """Ended login sessions, spent reset tokens, followed credential changes."""
    return await cleanup_sessions(ctx.databases, ctx.settings)


async def prune_failed_jobs(ctx: JobContext) -> PrunedJobs:
    """Failed jobs and finished batches older than QUEUE_FAILED_RETENTION_DAYS."""
    return await ctx.queue.prune_failed(days=ctx.settings.queue_failed_retention_days)


async def prune_outbox_receipts(ctx: JobContext) -> str:
    """Outbox receipts older than OUTBOX_RECEIPT_RETENTION_DAYS."""
    outbox = Outbox(ctx.databases, ctx.settings, {})
    return f"{await outbox.prune_receipts()} outbox receipts"


async def prune_notifications(ctx: JobContext) -> str:
    """Notifications read more than NOTIFICATIONS_RETENTION_DAYS ago."""
    days = ctx.settings.notifications_retention_days
    pruned = await notifications.prune(ctx.databases, days=days)
    return f"{pruned} notifications read more than {days} days ago"


async def prune_activity(ctx: JobContext) -> str:
    """Activity entries older than ACTIVITY_RETENTION_DAYS."""
    days = ctx.settings.activity_retention_days
    pruned = await activity.prune(ctx.databases, days)
    return f"{pruned} activity entries older than {days} days"


async def prune_scheduled_runs(ctx: JobContext) -> str:
    """This schedule's record of occurrences older than SCHEDULE_RUN_RETENTION_DAYS."""
    days = ctx.settings.schedule_run_retention_days
    return f"{await prune_runs(ctx.databases, days=days)} scheduled runs"


# Hourly and nightly, a few minutes apart, off the hour that everyone else's cron uses.
SCHEDULE = Schedule(
    [
        Task("cache.gc", "7 * * * *", collect_cache_garbage),
        Task("sessions.cleanup", "17 3 * * *", clean_up_sessions),
        Task("queue.prune_failed", "27 3 * * *", prune_failed_jobs),
        Task("outbox.prune_receipts", "37 3 * * *", prune_outbox_receipts),
        Task("schedule.prune_runs", "47 3 * * *", prune_scheduled_runs),
        Task("notifications.prune", "57 3 * * *", prune_notifications),
        Task("activity.prune", "7 4 * * *", prune_activity),
    ]
)
