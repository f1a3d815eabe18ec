"""What every HTTP response carries: security headers, and CORS for the configured origins only.

The request body limit (413 past `MAX_BODY_SIZE`) is FastAPI's own `max_body_size`,
set in `create_app`; its error is rendered as JSON by the HTTP error handler.
"""

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers
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
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class SecurityHeadersMiddleware:
    """Adds the headers to every response, errors included (pure ASGI: no extra task)."""

    def __init__(self, app: ASGIApp, *, https_only: bool) -> None:
        self.app = app
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        docs = path.startswith(DOCS_PREFIXES)
        extra = [*API_HEADERS, (b"content-security-policy", DOCS_POLICY if docs else API_POLICY)]
        if not docs:
            # Answers can carry tokens and personal data: no cache may keep them.
            extra.append((b"cache-control", b"no-store"))
        if self.https_only:
            extra.append(HSTS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(header for header in extra if header[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
