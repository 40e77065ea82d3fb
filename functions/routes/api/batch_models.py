"""The body and answer of `POST /api/v1/batch`. The data plane validates batches with these
models, importing them (and pydantic) at the first batch only; the management function's OpenAPI
document describes the operation with the same models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_REQUESTS = 25


class SubRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(min_length=4, max_length=2048, pattern=r"^/gw(/[^\s]*)?$", description="e.g. /gw/orders/42?x=1")
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    body: Any = Field(default=None, description="JSON, sent as application/json; a string is sent as it is")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    requests: list[SubRequest] = Field(min_length=1, max_length=MAX_REQUESTS)


class SubResponse(BaseModel):
    id: str
    status: int
    headers: dict[str, str]
    body: Any


class BatchOut(BaseModel):
    responses: list[SubResponse]
