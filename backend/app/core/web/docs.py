"""Swagger UI at /docs and ReDoc at /redoc, with their JavaScript and CSS served by the
service itself: FastAPI's default pages load them from a CDN, and render blank offline.

The assets come from the `fastapi-offline` package (Swagger UI 5, ReDoc 2), so
upgrading them is a lock-file change.
"""

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.security.base import SecurityBase
from fastapi.staticfiles import StaticFiles

from app.core.web.openapi import build_openapi

SWAGGER_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"


def install_docs(
    app: FastAPI, security_alternatives: Mapping[str, SecurityBase] | None = None
) -> None:
    """Serve both pages, their assets and the OpenAPI document they read; `app` must be
    built with docs_url=redoc_url=None. `security_alternatives`: see `build_openapi`."""
    app.mount(
        ASSETS_URL,
        StaticFiles(packages=[("fastapi_offline", "static")]),
        name="docs-assets",
    )
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or f"{SWAGGER_URL}/oauth2-redirect"

    @app.get(SWAGGER_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect_url}",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # No badge fetched from the public validator: the page makes no outside request.
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    # Where Swagger UI's OAuth2 flows that leave the page (not the password flow) land.
    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    alternatives = dict(security_alternatives or {})
    app.openapi = lambda: build_openapi(app, alternatives)  # type: ignore[method-assign]
