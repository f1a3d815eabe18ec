"""The one place that turns every failure into a JSON answer.

Domain errors, request validation, HTTP errors and database failures are all rendered
as `{"detail": ..., "code": ...}`. Nothing reaches a client as a stack trace.
"""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from app.core.db.failures import is_outage, is_read_only_refusal, is_transaction_conflict
from app.core.errors import DatabaseUnavailable, DomainError
from app.core.web.protections import security_headers

logger = logging.getLogger(__name__)


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
    if is_read_only_refusal(exc):
        return _json(403, "A database is read-only", "database_read_only")
    if is_transaction_conflict(exc):  # a lost deadlock, a standby's conflict with recovery
        logger.warning("transaction conflict: %s", getattr(exc, "orig", exc))
        return _json(
            503,
            "The database cancelled this request's work; try again",
            "try_again",
            {"Retry-After": "1"},
        )
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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.IntegrityError, _integrity_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)
    app.add_exception_handler(Exception, _unhandled_error)
