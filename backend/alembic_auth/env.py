"""Migrations of the auth database: `alembic -n auth ...` from backend/."""

import app.models  # noqa: F401  (registers every model on its base)
from app.core.database import AuthBase
from app.core.migrations import run_migrations

run_migrations("auth", AuthBase.metadata)
