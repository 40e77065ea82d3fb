"""Request and answer bodies of the webhooks API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.webhooks.logic.filter_model import Filter

Pattern = Annotated[str, StringConstraints(min_length=1, max_length=100)]
HeaderValue = Annotated[str, StringConstraints(max_length=1024)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    url: str = Field(min_length=1, max_length=2048, description="Where events are sent (http(s); SSRF-checked)")
    method: Literal["POST", "PUT"] = "POST"
    event_types: list[Pattern] = Field(
        min_length=1, max_length=50, description="Event types or wildcards (`*`, `key.*`): GET /api/v1/events/types"
    )
    filters: list[Filter] = Field(
        default_factory=list, max_length=20, description="Conditions on the body; all must hold"
    )
    headers: dict[str, HeaderValue] = Field(
        default_factory=dict, max_length=20, description="Sent with every request; never replaces the gateway's"
    )
    timeout_s: int = Field(default=15, ge=1, le=30)
    max_retries: int = Field(default=7, ge=0, le=10, description="Retries after the first attempt (schedule: README)")
    rate_limit_per_s: int | None = Field(default=None, ge=1, le=1000, description="Attempts per second at most")
    ordering: Literal["none", "ordered"] = Field(
        default="none", description="`ordered`: one at a time, in publish order, each after the previous settled"
    )
    active: bool = True
    signing: Literal["v1", "v1a"] = Field(
        default="v1", description="`v1` HMAC-SHA256 with a shared secret; `v1a` ed25519 (receivers hold the public key)"
    )
    client_id: str | None = Field(default=None, min_length=1, max_length=100, description="Admins: the owning client")


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    method: Literal["POST", "PUT"] | None = None
    event_types: list[Pattern] | None = Field(default=None, min_length=1, max_length=50)
    filters: list[Filter] | None = Field(default=None, max_length=20)
    headers: dict[str, HeaderValue] | None = Field(default=None, max_length=20)
    timeout_s: int | None = Field(default=None, ge=1, le=30)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    rate_limit_per_s: int | None = Field(default=None, ge=1, le=1000)
    ordering: Literal["none", "ordered"] | None = None
    active: bool | None = None


class EndpointOut(BaseModel):
    endpoint_id: str
    client_id: str
    name: str
    description: str
    url: str
    method: str
    event_types: list[str]
    filters: list[dict[str, Any]]
    headers: dict[str, str]
    timeout_s: int
    max_retries: int
    rate_limit_per_s: int | None
    ordering: str
    active: bool
    audience: Literal["own", "all"] = Field(description="`all`: every event (an admin's endpoint); `own`: the client's")
    signing: Literal["v1", "v1a"]
    public_key: str | None = Field(description="`whpk_...` for v1a endpoints")
    previous_key_retires_at: str | None = Field(description="Until then the previous key signs too")
    consecutive_failures: int
    failing_since: str | None
    disabled_reason: str | None
    disabled_at: str | None
    created_at: str
    updated_at: str
    version: int


class EndpointCreated(EndpointOut):
    secret: str | None = Field(description="`whsec_...` (v1): shown once, keep it")


class EndpointPage(BaseModel):
    items: list[EndpointOut]
    next_cursor: str | None


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    grace_seconds: int | None = Field(
        default=None, ge=0, le=7 * 24 * 3600, description="How long the previous key keeps signing (default 24 h)"
    )


class Rotated(BaseModel):
    endpoint: EndpointOut
    secret: str | None = Field(description="The new `whsec_...` (v1): shown once")
    public_key: str | None = Field(description="The new `whpk_...` (v1a)")


class PublicKeyOut(BaseModel):
    endpoint_id: str
    signing: Literal["v1a"]
    public_key: str
    previous_public_keys: list[str] = Field(description="Keys still signing during a rotation's grace")


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    event_type: str = Field(alias="eventType", min_length=1, max_length=100)
    test_data: dict[str, Any] = Field(default_factory=dict, alias="testData")


class AttemptOut(BaseModel):
    attempt: int
    started_at: str
    outcome: Literal["success", "failure"]
    status_code: int | None
    latency_ms: int
    error: str | None
    response_headers: dict[str, str]
    response_body: str = Field(description="The first 1 KB of the answer")
    next_attempt_at: str | None


class DeliveryOut(BaseModel):
    delivery_id: str
    endpoint_id: str
    event_id: str = Field(description="The `webhook-id` header of every attempt")
    event_type: str
    status: Literal["pending", "retrying", "delivered", "failed", "abandoned"]
    attempts: int
    max_attempts: int
    next_attempt_at: str | None
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    trigger: str


class TestResult(BaseModel):
    delivery: DeliveryOut
    attempt: AttemptOut | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class AttemptPage(BaseModel):
    delivery: DeliveryOut
    items: list[AttemptOut]
    next_cursor: str | None


class RecoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    # Not strict: a JSON body carries the time as a string, which strict mode refuses for a datetime.
    since: datetime = Field(
        strict=False, description="Failed and abandoned deliveries created since then are sent again"
    )


class Recovered(BaseModel):
    recovered: int
    delivery_ids: list[str]


class Redriven(BaseModel):
    moved: int = Field(description="Messages taken off the DLQ")
    reopened: int = Field(description="Abandoned deliveries sent again")


class EventTypeOut(BaseModel):
    type: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the event's `data`")


class EventTypes(BaseModel):
    items: list[EventTypeOut]


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    event_type: str = Field(min_length=1, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)
    client_id: str | None = Field(
        default=None, min_length=1, max_length=100, description="Admins: publish as about this client's resources"
    )


class Triggered(BaseModel):
    event_id: str
    event_type: str
