"""The application factory: settings, both databases, routers and error handlers."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.auth.router import router as auth_router
from app.core.config import API_PREFIX, Settings
from app.core.database import create_databases
from app.core.docs import OPENAPI_TAGS, install_docs
from app.core.errors import install_error_handlers
from app.core.http import install_http_protections
from app.core.mail import create_mailer
from app.core.observability import install_observability
from app.core.tracing import trace_databases
from app.dashboard.router import router as dashboard_router
from app.health.router import router as health_router
from app.orders.router import router as orders_router
from app.products.router import router as products_router
from app.projects.router import router as projects_router
from app.users.router import router as users_router

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Engines connect lazily: the service starts even when a database is down,
        # and /health/ready says which one.
        app.state.databases = create_databases(settings)
        trace_databases(app)
        app.state.mailer = create_mailer(settings)
        logger.info(
            "databases (%s mode): auth=%s app=%s",
            settings.database_mode.value,
            settings.resolved_database_url("auth").render_as_string(hide_password=True),
            settings.resolved_database_url("app").render_as_string(hide_password=True),
        )
        # Everything built so far lives as long as the process: move it out of the
        # collector's sight, or each full collection walks it all and stalls every
        # request for some 50 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.databases.dispose()

    app = FastAPI(
        title=settings.project_name,
        summary="An async FastAPI service with an auth database and an app database.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_tags=OPENAPI_TAGS,
        # Traces are app.core.tracing's (its own provider, when OTEL_* is set). FastAPI's
        # native telemetry would look for global providers on every request, and find none.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    install_http_protections(app, settings)
    install_observability(app, settings)
    install_error_handlers(app)
    install_docs(app)
    app.include_router(health_router)
    app.include_router(auth_router, prefix=API_PREFIX)
    app.include_router(users_router, prefix=API_PREFIX)
    app.include_router(projects_router, prefix=API_PREFIX)
    app.include_router(products_router, prefix=API_PREFIX)
    app.include_router(orders_router, prefix=API_PREFIX)
    app.include_router(dashboard_router, prefix=API_PREFIX)
    return app
