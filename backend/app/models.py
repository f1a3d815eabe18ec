"""Imports every model, so that each base's metadata knows all of its tables.

Alembic's env.py and `init_db` import this module; add each new models module here.
"""

from app.auth.models import ApiKey, LoginFailure, LoginSession, PasswordResetToken
from app.orders.models import Order, OrderItem
from app.products.models import Product
from app.projects.models import Project
from app.users.models import Permission, Role, User

__all__ = [
    "ApiKey",
    "LoginFailure",
    "LoginSession",
    "Order",
    "OrderItem",
    "PasswordResetToken",
    "Permission",
    "Product",
    "Project",
    "Role",
    "User",
]
