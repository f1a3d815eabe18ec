"""Imports every model, so that each base's metadata knows all of its tables.

Alembic's env.py and `init_db` import this module; add each new models module here.
"""

from app.auth.models import User
from app.projects.models import Project

__all__ = ["Project", "User"]
