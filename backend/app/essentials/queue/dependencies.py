"""The queue a request dispatches to: the one the lifespan put on `app.state`."""

from typing import Annotated

from fastapi import Depends, Request

from app.essentials.queue.queue import Queue


async def get_queue(request: Request) -> Queue:
    queue: Queue = request.app.state.queue
    return queue


QueueDep = Annotated[Queue, Depends(get_queue)]
