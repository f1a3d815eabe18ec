"""The floor the service is measured against: Starlette and raw asyncpg, no ORM.

It serves the two queries that `GET /api/v1/projects` makes for a signed-in member:
the one auth-database query that checks the session (user active, session live,
roles and permissions) and the app-database page of the caller's projects.
Run by bench/run.py as: uvicorn --factory floor_app:create_app
"""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

AUTH_QUERY = """
SELECT users.id, users.email, roles.name, permissions.name
FROM users
JOIN login_sessions ON login_sessions.user_id = users.id
LEFT OUTER JOIN user_roles ON user_roles.user_id = users.id
LEFT OUTER JOIN roles ON roles.id = user_roles.role_id
LEFT OUTER JOIN role_permissions ON role_permissions.role_id = roles.id
LEFT OUTER JOIN permissions ON permissions.id = role_permissions.permission_id
WHERE users.is_active AND users.id = $1 AND login_sessions.id = $2
  AND login_sessions.revoked_at IS NULL AND login_sessions.expires_at > now()
"""
PROJECTS_QUERY = """
SELECT id, owner_id, name, description, created_at, updated_at FROM projects
WHERE owner_id = $1 ORDER BY id DESC LIMIT $2
"""


def create_app() -> Starlette:
    user_id = int(os.environ["FLOOR_USER_ID"])
    session_id = int(os.environ["FLOOR_SESSION_ID"])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.auth = await asyncpg.create_pool(os.environ["FLOOR_AUTH_DSN"], max_size=10)
        app.state.app = await asyncpg.create_pool(os.environ["FLOOR_APP_DSN"], max_size=30)
        yield
        await app.state.auth.close()
        await app.state.app.close()

    async def projects(request: Request) -> Response:
        rows = await request.app.state.auth.fetch(AUTH_QUERY, user_id, session_id)
        if not rows or "projects:read" not in {row[3] for row in rows}:
            return Response(status_code=403)
        page = await request.app.state.app.fetch(PROJECTS_QUERY, user_id, 21)
        items = [
            {
                **dict(row),
                "created_at": row["created_at"].isoformat(),
                "updated_at": row["updated_at"].isoformat(),
            }
            for row in page[:20]
        ]
        return Response(
            json.dumps({"items": items, "next_cursor": None}), media_type="application/json"
        )

    return Starlette(routes=[Route("/api/v1/projects", projects)], lifespan=lifespan)
