from typing import Literal

from pydantic import BaseModel

from app.core.config import DatabaseMode


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class ReplicaStatus(BaseModel):
    """A read replica as the monitor last found it; reads skip it unless `up`."""

    replica: str  # host:port/database
    status: Literal["unknown", "up", "lagging", "down"]
    lag_seconds: float | None = None
    error: str | None = None


class DatabaseStatus(BaseModel):
    status: Literal["up", "down"]
    latency_ms: float
    error: str | None = None
    replicas: list[ReplicaStatus] | None = None


class Readiness(BaseModel):
    """`degraded`: every database answers, but a replica is skipped (reads use the primary)."""

    status: Literal["ok", "degraded", "unavailable"]
    mode: DatabaseMode
    databases: dict[str, DatabaseStatus]
    detail: str | None = None
