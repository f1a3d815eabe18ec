"""Swagger UI at /docs and ReDoc at /redoc, with their JavaScript and CSS served by the
service itself: FastAPI's default pages load them from a CDN, and render blank offline.

The assets come from the `fastapi-offline` package (Swagger UI 5, ReDoc 2), so
upgrading them is a lock-file change.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.core.errors import add_common_errors

SWAGGER_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"

OPENAPI_TAGS: list[dict[str, Any]] = [
    {
        "name": "health",
        "description": "Probes for load balancers and orchestrators: `/health/live` touches no "
        "database, `/health/ready` checks both.",
    },
    {
        "name": "auth",
        "description": "Sign in and out, rotate tokens, list and end login sessions, reset a "
        "password, manage API keys. Lives in the **auth database**. To try the other routes "
        "here, register, then sign in with **Authorize** (the email is the username).",
    },
    {
        "name": "users",
        "description": "Your own account, and every account for administrators (`users:admin`). "
        "Lives in the **auth database**; erasing a user also clears the app database.",
    },
    {
        "name": "projects",
        "description": "The example domain to copy: your own projects. Lives in the **app "
        "database**.",
    },
    {
        "name": "products",
        "description": "The catalogue: anyone signed in reads it, `products:write` changes it. "
        "Lives in the **app database**.",
    },
    {
        "name": "orders",
        "description": "Your orders: placing one takes the stock and records the prices of the "
        "moment, cancelling puts the stock back. Lives in the **app database**.",
    },
    {
        "name": "dashboard",
        "description": "Your account (auth database) and activity (app database), read from "
        "both at once.",
    },
]


def install_docs(app: FastAPI) -> None:
    """Serve both pages, their assets and the OpenAPI document they read; `app` must be
    built with docs_url=redoc_url=None."""
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

    def openapi() -> dict[str, Any]:
        """The OpenAPI document, built once: FastAPI's, with every operation's common
        errors and each request body's example added."""
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            add_common_errors(schema)
            add_request_examples(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_request_examples(schema: dict[str, Any]) -> None:
    """Copy each JSON body's first schema example onto its operations, where both pages
    look for it. The examples themselves live on the request schemas."""
    components = schema.get("components", {}).get("schemas", {})
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            media = content.get("application/json")
            if media is None:
                continue
            reference = media["schema"].get("$ref", "").rsplit("/", 1)[-1]
            examples = components.get(reference, {}).get("examples")
            if examples:
                media["example"] = examples[0]
