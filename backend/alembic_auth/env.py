"""Migrations of the auth database: `alembic -n auth ...` from backend/."""

from app import models
from app.core.db.migrations import run_migrations

run_migrations("auth", models.AUTH)
