"""Request-scoped access to what the lifespan built: settings and the mailer.

Every dependency is `async def`, even when it does not await: FastAPI runs a plain
`def` dependency in a worker thread, a hand-off that costs more than the work.
"""

from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings
from app.core.mail import Mailer


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_mailer(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


SettingsDep = Annotated[Settings, Depends(get_settings)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]
