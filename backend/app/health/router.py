from fastapi import APIRouter, Response

from app.core.db.sessions import DatabasesDep
from app.core.web.dependencies import SettingsDep
from app.health import service
from app.health.schemas import Liveness, Readiness

TAG = {
    "name": "health",
    "description": "Probes for load balancers and orchestrators: `/health/live` touches no "
    "database, `/health/ready` checks every configured database.",
}
router = APIRouter(prefix="/health", tags=[TAG["name"]])


@router.get("/live", summary="The process answers (touches no database)")
async def live() -> Liveness:
    return Liveness()


@router.get(
    "/ready",
    summary="Every database answers",
    responses={503: {"model": Readiness, "description": "A database is down; it is named"}},
)
async def ready(*, response: Response, databases: DatabasesDep, settings: SettingsDep) -> Readiness:
    statuses = await service.check_databases(databases, settings.health_check_timeout)
    down = [name for name, status in statuses.items() if status.status == "down"]
    skipped = [
        f"{name} replica {replica.replica} is {replica.status}"
        for name, status in statuses.items()
        for replica in status.replicas or ()
        if replica.status != "up"
    ]
    if down:
        response.status_code = 503
        return Readiness(
            status="unavailable",
            mode=settings.database_mode,
            databases=statuses,
            detail=f"database unavailable: {', '.join(down)}",
        )
    return Readiness(
        status="degraded" if skipped else "ok",
        mode=settings.database_mode,
        databases=statuses,
        detail="; ".join(skipped) or None,
    )
