"""Migrations of the app database: `alembic -n app ...` from backend/."""

from app import models
from app.core.db.migrations import run_migrations

run_migrations("app", models.APP)
