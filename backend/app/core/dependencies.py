"""Request-scoped access to what the lifespan built: settings and the mailer."""

from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings
from app.core.mail import Mailer


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_mailer(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


SettingsDep = Annotated[Settings, Depends(get_settings)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]
