"""Response models of the routes function (they also make its OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class CheckOut(BaseModel):
    status: Literal["ok", "warn", "fail"]
    latency_ms: float
    facts: dict[str, Any] = Field(default_factory=dict)


class HealthOut(BaseModel):
    status: Literal["healthy", "degraded", "unavailable"] = Field(
        description="unavailable when the data table cannot be reached; degraded when anything else fails or the DLQ holds messages"
    )
    checked_at: str
    stage: str
    checks: dict[str, CheckOut]


class IdentityOut(BaseModel):
    client_id: str
    credential_kind: str
    scopes: list[str]
    tier: str
    certificate_bound: bool = False  # a token bound to this request's client certificate (RFC 8705)
