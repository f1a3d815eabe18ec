"""The domain error family: what services raise when something expected goes wrong.

Services raise these and never import FastAPI; `app.core.web.errors` renders each as
`{"detail": ..., "code": ...}` with its status.
"""

from typing import Any


class DomainError(Exception):
    """An expected failure with its HTTP status; subclasses set `status_code` and `code`."""

    status_code: int = 400
    code: str = "bad_request"
    detail: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.detail = detail or self.detail
        self.code = code or self.code
        self.headers = headers
        self.extra = extra
        super().__init__(self.detail)


class BadRequest(DomainError):
    pass


class Unauthorized(DomainError):
    status_code = 401
    code = "not_authenticated"
    detail = "Not authenticated"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class InvalidData(DomainError):
    """Well-formed input the domain cannot take (beyond what schema validation sees)."""

    status_code = 422
    code = "invalid_data"
    detail = "The request cannot be processed"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, errors=[], **extra)


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
    detail = "Not allowed"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"

    def __init__(self, resource: str = "resource", **extra: Any) -> None:
        super().__init__(f"{resource[:1].upper()}{resource[1:]} not found", **extra)


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
    detail = "Conflicts with existing data"


class TooManyRequests(DomainError):
    status_code = 429
    code = "too_many_requests"
    detail = "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class DatabaseUnavailable(DomainError):
    status_code = 503
    code = "database_unavailable"

    def __init__(self, database: str) -> None:
        super().__init__(
            f"The {database} database is unavailable",
            database=database,
            headers={"Retry-After": "1"},
        )


class DatabaseReadOnly(DomainError):
    """A write reached a database configured read-only, which refused it: nothing is written.

    403: the request is understood and will never be carried out, by anyone.
    """

    status_code = 403
    code = "database_read_only"

    def __init__(self, database: str) -> None:
        super().__init__(f"The {database} database is read-only", database=database)
