"""Outgoing mail: printed to the console in development, sent over SMTP when configured."""

import smtplib
import sys
from email.message import EmailMessage
from typing import Protocol

import anyio.to_thread

from app.core.config import Settings


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class ConsoleMailer:
    """Writes each message to standard output, where a developer running the service sees it.

    It bypasses logging on purpose: messages carry secrets (reset links) that must
    never end up in log storage.
    """

    async def send(self, to: str, subject: str, body: str) -> None:
        sys.stdout.write(f"--- mail to {to}: {subject}\n{body}\n---\n")
        sys.stdout.flush()


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        await anyio.to_thread.run_sync(self._deliver, message)

    def _deliver(self, message: EmailMessage) -> None:
        settings = self.settings
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)


def create_mailer(settings: Settings) -> Mailer:
    return SmtpMailer(settings) if settings.mail_backend == "smtp" else ConsoleMailer()
