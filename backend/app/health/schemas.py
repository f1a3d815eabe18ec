from typing import Literal

from pydantic import BaseModel

from app.core.config import DatabaseMode


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class DatabaseStatus(BaseModel):
    status: Literal["up", "down"]
    latency_ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    mode: DatabaseMode
    databases: dict[str, DatabaseStatus]
    detail: str | None = None
