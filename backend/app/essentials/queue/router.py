"""/api/v1/queue: counts, running and failed jobs, retry and forget; for admins.

The essentials cannot import `app.auth`, so the router is built by `create_router`
with the dependency that lets admins through, handed over by `app/main.py`.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.core.db.types import parse_id
from app.core.errors import NotFound
from app.core.web.openapi import errors
from app.core.web.pagination import Cursor, Limit, Page, decode_cursor, page_of
from app.core.web.params import PathId
from app.essentials.queue.backend import RunningJob
from app.essentials.queue.dependencies import QueueDep
from app.essentials.queue.schemas import FailedJobRead, QueueStatus, Retried

TAG = {
    "name": "queue",
    "description": "Background jobs, for holders of `queue:admin`: counts per queue, the "
    "workers and the jobs they run, failed jobs with their error, retry and forget. Lives "
    "in the **auth database**. The page at `/admin/queue` shows the same.",
}

RunningLimit = Annotated[int, Query(ge=1, le=500, description="Jobs to list (1 to 500)")]


def create_router(guard: Callable[..., Awaitable[Any]]) -> APIRouter:
    """The queue's endpoints, each behind `guard` (a permission check)."""
    router = APIRouter(
        prefix="/queue",
        tags=[TAG["name"]],
        dependencies=[Depends(guard)],
        responses=errors(401, 403),
    )

    @router.get("/status")
    async def read_status(*, queue: QueueDep) -> QueueStatus:
        """Per queue: ready, delayed, running and failed jobs; and the live workers."""
        return QueueStatus(queues=await queue.status(), workers=await queue.workers())

    @router.get("/running")
    async def list_running(*, queue: QueueDep, limit: RunningLimit = 100) -> list[RunningJob]:
        """Jobs being run now, the longest-running first."""
        return await queue.running(limit=limit)

    @router.get("/failed", responses=errors(400))
    async def list_failed(
        *, queue: QueueDep, limit: Limit = 20, cursor: Cursor = None
    ) -> Page[FailedJobRead]:
        """Failed jobs, newest first."""
        before_id = decode_cursor(cursor, parse_id)[0] if cursor else None
        rows = await queue.failed(limit=limit + 1, before_id=before_id)
        return page_of(rows, limit, FailedJobRead.model_validate, lambda row: row.id)

    @router.post("/failed/{failed_id}/retry", responses=errors(404))
    async def retry_failed(*, failed_id: PathId, queue: QueueDep) -> Retried:
        """Enqueue a failed job again, with its attempts restored."""
        if not await queue.retry(failed_id):
            raise NotFound("failed job")
        return Retried(retried=1)

    @router.post("/failed/retry-all")
    async def retry_all_failed(*, queue: QueueDep) -> Retried:
        """Enqueue every failed job again."""
        return Retried(retried=await queue.retry(None))

    @router.delete("/failed/{failed_id}", status_code=204, responses=errors(404))
    async def forget_failed(*, failed_id: PathId, queue: QueueDep) -> None:
        """Delete a failed job without running it."""
        if not await queue.forget(failed_id):
            raise NotFound("failed job")

    return router
