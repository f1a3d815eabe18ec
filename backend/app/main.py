"""The application factory: settings, both databases, routers and error handlers."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from app.auth import router as auth
from app.auth.changes import following
from app.auth.dependencies import SECURITY_ALTERNATIVES, current_user, require_permissions
from app.auth.principals import PrincipalCache
from app.core.config import API_PREFIX, Settings
from app.core.db.routing import monitoring
from app.core.db.sessions import check_database_names
from app.core.observability.middleware import install_observability
from app.core.observability.tracing import trace_databases
from app.core.web.docs import install_docs
from app.core.web.errors import install_error_handlers
from app.core.web.openapi import operation_id
from app.core.web.protections import install_http_protections
from app.dashboard import router as dashboard
from app.erasure import router as erasure
from app.essentials.activity import router as activity
from app.essentials.activity.permissions import ActivityPermission
from app.essentials.cache.factory import create_cache
from app.essentials.cache.stickiness import CacheStickiness
from app.essentials.notifications import router as notifications
from app.essentials.notifications.permissions import NotificationPermission
from app.essentials.queue import router as queue
from app.essentials.queue.admin import install_admin_page
from app.essentials.queue.permissions import QueuePermission
from app.health import router as health
from app.orders import router as orders
from app.products import router as products
from app.projects import router as projects
from app.runtime import create_runtime
from app.users import router as users

logger = logging.getLogger(__name__)

# The routers, in the order a request is matched against them: Starlette tries each
# router's routes in turn, so the ones most requests hit come first (the reads of the
# domains; sign-in and account management are rarer). It saves about 4% of the CPU of
# `GET /api/v1/projects` over the order of the docs, which is `TAGS`'.
API_ROUTERS: list[APIRouter] = [
    projects.router,
    products.router,
    orders.router,
    dashboard.router,
    notifications.create_router(current_user, require_permissions(NotificationPermission.ANNOUNCE)),
    users.router,
    auth.router,
    erasure.router,
    queue.create_router(require_permissions(QueuePermission.ADMIN)),
    activity.create_router(require_permissions(ActivityPermission.READ)),
]
TAGS = [
    health.TAG,
    auth.TAG,
    users.TAG,
    projects.TAG,
    products.TAG,
    orders.TAG,
    dashboard.TAG,
    notifications.TAG,
    queue.TAG,
    activity.TAG,
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Engines connect lazily: the service starts even when a database is down,
        # and /health/ready says which one.
        check_database_names(app, settings)
        runtime = create_runtime(settings)
        app.state.runtime = runtime
        app.state.databases = runtime.databases
        app.state.queue = runtime.queue
        app.state.outbox = runtime.outbox
        trace_databases(app)
        app.state.cache = create_cache(settings, app.state.databases)
        # Read-your-writes holds on every worker: who wrote lately is kept in the cache.
        app.state.databases.stickiness = CacheStickiness(app.state.cache)
        app.state.principals = PrincipalCache(enabled=settings.principal_cache)
        logger.info(
            "databases (%s mode): auth=%s app=%s; cache: %s",
            settings.database_mode.value,
            settings.resolved_database_url("auth").render_as_string(hide_password=True),
            settings.resolved_database_url("app").render_as_string(hide_password=True),
            settings.cache_store,
        )
        # Everything built so far lives as long as the process: move it out of the
        # collector's sight, or each full collection walks it all and stalls every
        # request for some 50 ms.
        gc.collect()
        gc.freeze()
        try:
            async with (
                monitoring(
                    app.state.databases.replicas(),
                    max_lag=settings.replica_max_lag_seconds,
                    check_timeout=settings.health_check_timeout,
                ),
                following(app.state.databases.auth, app.state.principals),
            ):
                yield
        finally:
            await app.state.cache.close()
            await runtime.queue.close()
            await app.state.databases.dispose()

    app = FastAPI(
        title=settings.project_name,
        summary="An async FastAPI service with an auth database and an app database.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
        # Traces are app.core.observability.tracing's (its own provider, when OTEL_* is
        # set). FastAPI's native telemetry would look for global providers on every
        # request, and find none.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    install_http_protections(app, settings)
    install_observability(app, settings)
    install_error_handlers(app)
    install_docs(app, SECURITY_ALTERNATIVES)
    install_admin_page(app)
    app.include_router(health.router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    return app
