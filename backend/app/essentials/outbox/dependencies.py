"""The outbox a request stages messages in: the one the lifespan put on `app.state`."""

from typing import Annotated

from fastapi import Depends, Request

from app.essentials.outbox.outbox import Outbox


async def get_outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.outbox
    return outbox


OutboxDep = Annotated[Outbox, Depends(get_outbox)]
