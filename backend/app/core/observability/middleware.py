"""Logs, metrics and traces, installed on an app by `install_observability`.

`RequestObserver`, one pure ASGI middleware (no extra task, no per-request objects
beyond a closure), gives each request its id, then writes its log line and records
its metrics once the answer is sent. The pieces live in `app.core.logging`,
`app.core.metrics` and `app.core.tracing`.
"""

import logging
import os
import re
import time

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from opentelemetry import trace
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.observability.logging import REQUEST_ID, USER_ID, configure_logging
from app.core.observability.metrics import HttpMetrics, create_metrics
from app.core.observability.tracing import install_tracing, otlp_exporter

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only if it is short and plain: it is echoed into headers and logs.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")

request_logger = logging.getLogger("app.requests")


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Logging for the process, `/metrics` and the request middleware for `app`, and
    tracing when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Call it after other middleware,
    so that the request line times and sees everything."""
    configure_logging(settings)
    metrics = create_metrics(app) if settings.metrics_enabled else None
    app.add_middleware(RequestObserver, templates=RouteTemplates(app), metrics=metrics)
    if settings.otel_exporter_otlp_endpoint:
        install_tracing(app, settings, otlp_exporter(settings.otel_exporter_otlp_endpoint))


class RequestObserver:
    """Request id in, `X-Request-ID` out; one log line and the metrics per request."""

    def __init__(
        self, app: ASGIApp, *, templates: "RouteTemplates", metrics: HttpMetrics | None
    ) -> None:
        self.app = app
        self.templates = templates
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 0

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        request_id_token = REQUEST_ID.set(request_id.decode())
        user_id_token = USER_ID.set(None)
        span = trace.get_current_span()
        if span.is_recording():  # tracing is on: the request's span
            span.set_attribute("http.request.id", request_id.decode())
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_request_id)
        except BaseException:
            # The error handler outside this middleware answers 500 and logs the
            # traceback; the ids stay set so that its line carries them too.
            self._record(scope, status or 500, started)
            raise
        self._record(scope, status, started)
        USER_ID.reset(user_id_token)
        REQUEST_ID.reset(request_id_token)

    def _record(self, scope: Scope, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        route = self.templates.of(scope)
        method: str = scope["method"]
        if self.metrics is not None:
            self.metrics.observe(method, route, status, seconds)
        if request_logger.isEnabledFor(logging.INFO):
            path: str = scope["path"]
            milliseconds = seconds * 1000
            # makeRecord and handle: what info() does, without looking up the caller's
            # frame, which is always this one.
            record = request_logger.makeRecord(
                request_logger.name,
                logging.INFO,
                __file__,
                0,
                "%s %s %d %.1fms",
                (method, path, status, milliseconds),
                None,
                extra={
                    "method": method,
                    "route": route,
                    "path": path,
                    "status": status,
                    "duration_ms": round(milliseconds, 2),
                },
            )
            request_logger.handle(record)


class RouteTemplates:
    """The full path template of the route that answered, e.g. `/api/v1/projects/{project_id}`.

    FastAPI puts an API route in `scope["route"]`, but for an included router that is the
    router's own route, without the prefix, and a plain Starlette route (`/metrics`, the
    docs) is not put there at all; the app's route contexts know both. They are indexed
    at the first request, and again whenever an unknown API route answers.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._api: dict[int, list[RouteContext]] | None = None  # by id(): unhashable routes
        self._plain: list[RouteContext] = []

    def of(self, scope: Scope) -> str | None:
        if self._api is None:
            self._index()
        assert self._api is not None
        route = scope.get("route")
        if route is None:  # a plain route, or nothing matched (a 404)
            return _matching(self._plain, scope)
        contexts = self._api.get(id(route))
        if contexts is None:  # added since, or out of the app's sight (in a mount): once
            self._index()
            contexts = self._api.setdefault(id(route), [])
        if len(contexts) == 1:
            return contexts[0].path_format
        return _matching(contexts, scope) or getattr(route, "path", None)

    def _index(self) -> None:
        self._api, self._plain = {}, []
        for context in iter_route_contexts(self.app.routes):
            if isinstance(context.original_route, APIRoute):
                self._api.setdefault(id(context.original_route), []).append(context)
            else:
                self._plain.append(context)


def _matching(contexts: list[RouteContext], scope: Scope) -> str | None:
    for context in contexts:
        if context.matches(scope)[0] is not Match.NONE:
            return context.path_format
    return None


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return bytes(value)
            break
    return os.urandom(16).hex().encode()
