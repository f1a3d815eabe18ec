"""Jobs of the auth domain: the password-reset mail."""

from app.auth import password_reset
from app.core.db.integrity import integrity_session
from app.essentials.queue.context import JobContext
from app.essentials.queue.jobs import job


@job("auth.send_password_reset", max_attempts=5, backoff=(10, 60, 300), timeout=60)
async def send_password_reset(ctx: JobContext, *, user_id: int) -> None:
    """Make a reset token for the user and mail them the link.

    The request only names the user: the token is made here, so that no secret ever
    waits in the queue's tables. A retry (the mail server was down) makes a new token;
    one that was never mailed expires unused.
    """
    async with integrity_session(ctx.databases, "auth", "password reset token") as auth_db:
        started = await password_reset.start(auth_db, ctx.settings, user_id)
    if started is None:
        return  # deactivated or erased since the request
    user, token = started
    subject, body = password_reset.reset_mail(ctx.settings, user.email, token)
    await ctx.mailer.send(user.email, subject, body)
