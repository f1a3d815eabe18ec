"""Domain errors and the one place that turns every failure into a JSON answer.

Services raise `DomainError`s and never import FastAPI; `install_error_handlers`
renders them, request validation, HTTP errors and database failures as
`{"detail": ..., "code": ...}`. Nothing reaches a client as a stack trace.
"""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from asyncpg.exceptions import (
    CannotConnectNowError,
    PostgresConnectionError,
    TooManyConnectionsError,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from app.core.http import security_headers

logger = logging.getLogger(__name__)


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


# Raised by the drivers themselves before SQLAlchemy has a connection to wrap.
_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    sa_exc.TimeoutError,  # the pool had no connection to give within DB_POOL_TIMEOUT
    PostgresConnectionError,
    CannotConnectNowError,
    TooManyConnectionsError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database could not be reached, rather than a bad query."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, _OUTAGE_TYPES)
    return isinstance(exc, _OUTAGE_TYPES)


class ErrorBody(BaseModel):
    """Every error answer has this shape."""

    detail: str
    code: str


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(ErrorBody):
    errors: list[ValidationErrorItem] = []


_DESCRIPTIONS = {
    400: "Bad request (also: a body that cannot be parsed)",
    401: "Missing, invalid or expired credentials",
    403: "Authenticated, but not allowed",
    404: "Not found (also for rows that belong to someone else)",
    409: "Conflicts with existing data",
    413: "Request body too large",
    422: "Invalid request",
    429: "Too many attempts; see Retry-After",
    503: "A database is unavailable; see `database`",
}


def errors(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the error statuses a route can give."""
    return {
        code: {
            "model": ValidationErrorBody if code == 422 else ErrorBody,
            "description": _DESCRIPTIONS.get(code, HTTPStatus(code).phrase),
        }
        for code in status_codes
    }


def _json(
    status_code: int,
    detail: str,
    code: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "code": code, **extra}, status_code=status_code, headers=headers
    )


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    if isinstance(exc, DatabaseUnavailable):
        logger.warning("database unavailable: %s (%r)", exc.extra["database"], exc.__cause__)
    return _json(exc.status_code, exc.detail, exc.code, exc.headers, **exc.extra)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only location, message and type: echoing the input would echo passwords back.
    items = [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    return _json(422, "The request is invalid", "validation_error", errors=items)


# RFC 9110's names where Python 3.11 still has the older ones.
_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = _PHRASES.get(exc.status_code) or HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route on the path; list them all.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return _json(exc.status_code, detail, code, headers)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE and isinstance(route, Route | APIRoute):
            methods.update(route.methods or ())
    return sorted(methods)


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    logger.info("integrity error: %s", type(exc).__name__)
    return _json(409, "Conflicts with existing data", "conflict")


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    if is_outage(exc):
        logger.warning("database unavailable: %r", exc)
        return _json(503, "A database is unavailable", "database_unavailable", {"Retry-After": "1"})
    if isinstance(exc, sa_exc.DataError):
        return _json(422, "A value does not fit its column", "invalid_data", errors=[])
    logger.exception("database error")
    return _json(500, "Internal server error", "internal_error")


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    # This answer is made outside the middleware stack, so it adds the headers itself.
    https_only = request.app.state.settings.environment == "production"
    headers = {
        name.decode(): value.decode()
        for name, value in security_headers(request.url.path, https_only=https_only)
    }
    return _json(500, "Internal server error", "internal_error", headers)


def add_common_errors(schema: dict[str, Any]) -> None:
    """Document, on every operation of an OpenAPI `schema`, the errors any operation of
    its kind can give.

    Routes list their own (404, 409...); this adds what comes from the framework and
    the infrastructure: 400 and 413 for an unreadable or oversized body, 401 where
    credentials are taken, 503 where a database is used, and FastAPI's 422 described
    with our error shape instead of its own.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, ValidationErrorItem, ValidationErrorBody):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            wanted = set()
            if operation.get("parameters") or operation.get("requestBody"):
                wanted.add(422)
            if operation.get("requestBody"):
                wanted |= {400, 413}
            if operation.get("security"):
                wanted.add(401)
            if not path.startswith("/health/live"):
                wanted.add(503)
            for status, answer in errors(*sorted(wanted)).items():
                responses.setdefault(str(status), {}).update(
                    description=answer["description"],
                    content={
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{answer['model'].__name__}"}
                        }
                    },
                )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.IntegrityError, _integrity_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)
    app.add_exception_handler(Exception, _unhandled_error)
