"""What every request schema shares."""

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """A request body: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")
