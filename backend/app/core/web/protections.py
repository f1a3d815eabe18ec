"""What every request meets before a route: the body size limit, CORS for the configured
origins only, and the security headers every response carries."""

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Environment, Settings

API_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# JSON answers run no scripts and may not be framed.
API_POLICY = b"default-src 'none'; frame-ancestors 'none'"
# The browser docs need their own scripts and styles (and Swagger's inline start-up).
DOCS_POLICY = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
)
DOCS_PREFIXES = ("/docs", "/redoc", "/static/")
# Admin pages (/admin/queue) are ours: their own script and stylesheet, calls to this
# service's API, and nothing else; no inline script, so injected markup cannot run.
ADMIN_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
ADMIN_PREFIX = "/admin/"
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


def security_headers(path: str, *, https_only: bool) -> list[tuple[bytes, bytes]]:
    docs = path.startswith(DOCS_PREFIXES)
    policy = DOCS_POLICY if docs else ADMIN_POLICY if path.startswith(ADMIN_PREFIX) else API_POLICY
    headers = [*API_HEADERS, (b"content-security-policy", policy)]
    if not docs:
        # Answers can carry tokens and personal data: no cache may keep them.
        headers.append((b"cache-control", b"no-store"))
    if https_only:
        headers.append(HSTS)
    return headers


class SecurityHeadersMiddleware:
    """Adds the headers to every response, errors included (pure ASGI: no extra task)."""

    def __init__(self, app: ASGIApp, *, https_only: bool) -> None:
        self.app = app
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope["path"], https_only=self.https_only)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(header for header in extra if header[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """413 for a body over `max_body_size`, announced (Content-Length) or streamed.

    An announced size is refused before the body is read; a streamed body is counted
    as it arrives and refused when it passes the limit. Either way the answer is the
    usual JSON error, with the security headers.
    """

    def __init__(self, app: ASGIApp, *, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = Headers(scope=scope).get("content-length", "")
        if announced.isdigit() and int(announced) > self.max_body_size:
            await too_large()(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    raise HTTPException(413, "Content Too Large")
            return message

        await self.app(scope, counted, send)


def too_large() -> JSONResponse:
    return JSONResponse({"detail": "Content Too Large", "code": "content_too_large"}, 413)


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered in JSON like every other error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        return JSONResponse(
            {"detail": bytes(response.body).decode(), "code": "cors_refused"},
            status_code=400,
            headers={"vary": "Origin"},
        )


def install_http_protections(app: FastAPI, settings: Settings) -> None:
    # add_middleware wraps: the last one added sees the request first.
    app.add_middleware(BodyLimitMiddleware, max_body_size=settings.max_body_size)
    _install_cors(app, settings.cors_origins)
    app.add_middleware(
        SecurityHeadersMiddleware,
        https_only=settings.environment is Environment.PRODUCTION,
    )


def _install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    if not origins:
        return  # no CORS headers at all: browsers refuse every other origin
    app.add_middleware(
        JsonCORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
        allow_credentials=False,  # credentials travel in headers, never in cookies
        max_age=600,
    )
