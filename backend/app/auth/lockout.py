"""Brute-force protection, counted in the cache: too many failed sign-ins for an email, or
from an address, shut the door for a while, even to the right password; too many
password-reset requests for an email, or from an address, are refused for a while.

Fixed windows (`RateLimiter`): the first failure opens a window of
LOGIN_FAILURE_WINDOW_MINUTES, and the door opens again when it ends. With the database
or Redis store, every worker counts in the same place.
"""

from app.core.config import Settings
from app.core.errors import TooManyRequests
from app.essentials.cache.facade import Cache
from app.essentials.cache.limits import Limit, RateLimiter


def _login_limits(settings: Settings, email: str, address: str) -> tuple[Limit, Limit]:
    window = settings.login_failure_window_minutes * 60
    return (
        Limit(f"login-failures:email:{email}", settings.login_max_failures_per_email, window),
        Limit(f"login-failures:address:{address}", settings.login_max_failures_per_address, window),
    )


async def ensure_not_locked_out(cache: Cache, settings: Settings, email: str, address: str) -> None:
    """429 while the email, or the address, has used up its failures in the window."""
    retry_after = await RateLimiter(cache).retry_after(_login_limits(settings, email, address))
    if retry_after is not None:
        raise TooManyRequests(retry_after, "Too many failed sign-in attempts; try again later")


async def record_failure(cache: Cache, settings: Settings, email: str, address: str) -> None:
    limiter = RateLimiter(cache)
    for limit in _login_limits(settings, email, address):
        await limiter.hit(limit)


async def clear_failures(cache: Cache, settings: Settings, email: str, address: str) -> None:
    """A successful sign-in forgives the email's failures (not the address's)."""
    by_email, _ = _login_limits(settings, email, address)
    await RateLimiter(cache).clear(by_email)


async def count_reset_request(cache: Cache, settings: Settings, email: str, address: str) -> None:
    """Count a password-reset request; 429 once the email or the address has asked too
    often in the window. Counted before the account is looked up, so the answer is the
    same whether or not it exists."""
    window = settings.password_reset_window_minutes * 60
    limits = (
        Limit(f"password-resets:email:{email}", settings.password_reset_max_per_email, window),
        Limit(
            f"password-resets:address:{address}", settings.password_reset_max_per_address, window
        ),
    )
    retry_after = await RateLimiter(cache).attempt(limits)
    if retry_after is not None:
        raise TooManyRequests(retry_after, "Too many password reset requests; try again later")
