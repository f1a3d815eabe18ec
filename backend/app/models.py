"""Every model, imported so that each base's metadata knows all of its tables.

Alembic's env.py files, `init-db` and the erasure (which must see every app table)
read `AUTH` and `APP` from here; add each new models module below.
"""

from typing import Literal

from sqlalchemy import MetaData

from app.auth import models as auth_models
from app.core.db.base import AppBase, AuthBase
from app.essentials.activity import models as activity_models
from app.essentials.cache import models as cache_models
from app.essentials.notifications import models as notifications_models
from app.essentials.outbox import models as outbox_models
from app.essentials.queue import models as queue_models
from app.essentials.schedule import models as schedule_models
from app.orders import models as orders_models
from app.products import models as products_models
from app.projects import models as projects_models

AUTH = AuthBase.metadata
APP = AppBase.metadata

MODULES = (
    auth_models,
    activity_models,
    cache_models,
    notifications_models,
    outbox_models,
    queue_models,
    schedule_models,
    orders_models,
    products_models,
    projects_models,
)

# The databases whose tables these models define and the migrations make, by name (an
# extra database, EXTRA_DATABASES, has neither).
Migrated = Literal["auth", "app"]
METADATA: dict[Migrated, MetaData] = {"auth": AUTH, "app": APP}
