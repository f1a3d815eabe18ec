"""The dashboard reads both databases at once: one task per database, each on its own session."""

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select

from app.auth.models import ApiKey, LoginSession
from app.auth.principal import Principal
from app.core.db.base import AuthSession
from app.core.db.reads import Reads
from app.core.db.registry import Database
from app.dashboard.schemas import AccountSummary, ActivitySummary, Dashboard
from app.orders import service as orders
from app.orders.schemas import OrderSummary
from app.projects import service as projects
from app.projects.schemas import ProjectRead

LATEST = 5


async def build(auth: Database[AuthSession], reads: Reads, user: Principal) -> Dashboard:
    """Both databases at once, each on its own connection."""
    account, activity = await asyncio.gather(
        account_summary(auth, user), activity_summary(reads, user.id)
    )
    return Dashboard(account=account, activity=activity)


async def account_summary(auth: Database[AuthSession], user: Principal) -> AccountSummary:
    """One statement on a connection held only while it runs: a request never keeps an
    auth connection while it waits for an app one, so two busy pools cannot deadlock."""
    now = datetime.now(UTC)
    sessions = select(func.count()).where(
        LoginSession.user_id == user.id,
        LoginSession.revoked_at.is_(None),
        LoginSession.expires_at > now,
    )
    keys = select(func.count()).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    async with auth.autocommit() as connection:
        row = (
            await connection.execute(select(sessions.scalar_subquery(), keys.scalar_subquery()))
        ).one()
    return AccountSummary(user=user.profile(), active_sessions=row[0], api_keys=row[1])


async def activity_summary(reads: Reads, owner_id: int) -> ActivitySummary:
    """Four statements one after another, each on a connection held only while it runs
    (never two at once: 64 requests each holding one and waiting for a second would
    drain the pool)."""
    return ActivitySummary(
        project_count=await projects.count(reads, owner_id),
        order_count=await orders.count(reads, owner_id),
        latest_projects=[
            ProjectRead.model_validate(project)
            for project in await projects.list_page(reads, owner_id, limit=LATEST, before_id=None)
        ],
        latest_orders=[
            OrderSummary.model_validate(order)
            for order in await orders.list_page(reads, owner_id, limit=LATEST, before_id=None)
        ],
    )
