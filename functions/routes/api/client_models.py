"""Request and response models of /api/v1/clients (they also make the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.routes.logic.catalog import ClientType, Tier
from functions.routes.logic.schema_hints import Scope, absent_or_set

# Upper bounds: beyond them a number is a mistake or a probe, and DynamoDB refuses numbers of
# more than 38 digits (a 500 once stored). The limits match a route's (logic/route_spec.py).
MAX_PER_MINUTE = 100_000_000
MAX_PER_HOUR = 1_000_000_000
MAX_PER_DAY = 10_000_000_000
MAX_MONTHLY_QUOTA = 1_000_000_000_000


class RateLimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    per_minute: int = Field(gt=0, le=MAX_PER_MINUTE)
    per_hour: int = Field(gt=0, le=MAX_PER_HOUR)
    per_day: int = Field(gt=0, le=MAX_PER_DAY)


class ClientRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=2000)
    client_type: ClientType
    organization: str = Field(default="", max_length=255)
    contact_email: str = Field(max_length=320)
    allowed_scopes: list[Scope] = Field(min_length=1, max_length=50)
    allowed_endpoints: list[str] = Field(default_factory=list, max_length=200)
    ip_allowlist: list[str] = Field(
        default_factory=list, max_length=100, description="CIDRs, IPv4 or IPv6; empty: any address"
    )
    tier: Tier = "free"
    rate_limits: RateLimitsIn | None = Field(default=None, description="Overrides the tier's defaults")
    monthly_quota: int | None = Field(default=None, gt=0, le=MAX_MONTHLY_QUOTA)
    expires_at: str | None = Field(default=None, description="ISO 8601 UTC")


class ClientUpdate(BaseModel):
    """Fields to change; absent fields keep their value."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra=absent_or_set("rate_limits", "monthly_quota", "expires_at")
    )
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    client_type: ClientType | None = None
    organization: str | None = Field(default=None, max_length=255)
    contact_email: str | None = Field(default=None, max_length=320)
    allowed_scopes: list[Scope] | None = Field(default=None, min_length=1, max_length=50)
    allowed_endpoints: list[str] | None = Field(default=None, max_length=200)
    ip_allowlist: list[str] | None = Field(default=None, max_length=100)
    tier: Tier | None = None
    rate_limits: RateLimitsIn | None = None
    monthly_quota: int | None = Field(default=None, gt=0, le=MAX_MONTHLY_QUOTA)
    expires_at: str | None = None


class RateLimitsOut(BaseModel):
    per_minute: int
    per_hour: int
    per_day: int


class ClientOut(BaseModel):
    client_id: str
    name: str
    description: str
    client_type: str
    organization: str
    contact_email: str
    allowed_scopes: list[str]
    allowed_endpoints: list[str]
    ip_allowlist: list[str]
    tier: str
    rate_limits: RateLimitsOut
    rate_limits_overridden: bool
    monthly_quota: int | None
    expires_at: str | None
    status: Literal["active", "suspended"]
    created_at: str
    updated_at: str
    version: int
    grace_until: str | None = Field(
        default=None, description="Until when the secret replaced by the last rotation still authenticates"
    )


class ClientWithSecret(ClientOut):
    client_secret: str = Field(description="Shown once; store it now. Only a hash is kept.")


class ClientPage(BaseModel):
    items: list[ClientOut]
    next_cursor: str | None


class AuditEventOut(BaseModel):
    event_id: str
    at: str
    actor: str
    actor_credential: str
    action: str
    target: str
    request_id: str
    before_hash: str | None
    after_hash: str | None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    client_id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=255)
    scopes: list[Scope] | None = Field(
        default=None, max_length=50, description="Default: all the client's allowed scopes"
    )
    expires_at: str | None = Field(default=None, description="ISO 8601 UTC")
    rate_limits: RateLimitsIn | None = Field(default=None, description="Overrides the client's limits for this key")


class ClientSecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    grace_seconds: int | None = Field(
        default=None,
        ge=0,
        le=30 * 24 * 3600,
        description="How long the replaced secret still authenticates; default 86400 (24 h), 0 ends it now",
    )


class KeyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=absent_or_set("expires_at", "rate_limits"))
    name: str | None = Field(default=None, min_length=1, max_length=255)
    scopes: list[Scope] | None = Field(default=None, max_length=50)
    expires_at: str | None = None
    rate_limits: RateLimitsIn | None = None


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    grace_seconds: int | None = Field(default=None, ge=0, le=30 * 24 * 3600, description="Default 86400 (24 h)")


class KeyOut(BaseModel):
    key_id: str
    client_id: str
    name: str
    scopes: list[str]
    tier: str
    status: Literal["active", "expired", "rotated", "revoked"] = Field(
        description="What the key is good for now: `expired` past `expires_at`, `rotated` past its"
        " rotation grace (`grace_until`), `revoked`; `active` otherwise, during a rotation grace too"
    )
    prefix: str
    last_four: str
    created_at: str
    updated_at: str
    expires_at: str | None
    grace_until: str | None
    rotated_to: str | None
    revoked_at: str | None
    rate_limits: RateLimitsOut | None
    version: int
    last_used_at: str | None = Field(
        default=None, description="When the key was last used, to within an hour (not written on every request)"
    )


class KeyWithSecret(KeyOut):
    api_key: str = Field(description="Shown once; store it now. Only its SHA-256 is kept.")


class KeyRotation(BaseModel):
    new_key: KeyWithSecret
    old_key: KeyOut


class KeyPage(BaseModel):
    items: list[KeyOut]
    next_cursor: str | None
