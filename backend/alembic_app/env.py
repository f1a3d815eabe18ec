"""Migrations of the app database: `alembic -n app ...` from backend/."""

import app.models  # noqa: F401  (registers every model on its base)
from app.core.database import AppBase
from app.core.migrations import run_migrations

run_migrations("app", AppBase.metadata)
