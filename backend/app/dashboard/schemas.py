from pydantic import BaseModel

from app.auth.schemas import UserRead
from app.orders.schemas import OrderSummary
from app.projects.schemas import ProjectRead


class AccountSummary(BaseModel):
    """From the auth database."""

    user: UserRead
    active_sessions: int
    api_keys: int


class ActivitySummary(BaseModel):
    """From the app database."""

    project_count: int
    order_count: int
    latest_projects: list[ProjectRead]
    latest_orders: list[OrderSummary]


class Dashboard(BaseModel):
    account: AccountSummary
    activity: ActivitySummary
