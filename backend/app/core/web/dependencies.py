"""Request-scoped access to what the lifespan built: the settings.

Every dependency is `async def`, even when it does not await: FastAPI runs a plain
`def` dependency in a worker thread, a hand-off that costs more than the work.
"""

from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
