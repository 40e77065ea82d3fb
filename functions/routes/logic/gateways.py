"""Gateways (seed 004 api_gateways): a named set of routes and settings that is deployed as
immutable, numbered versions. The proxy serves deployed versions only, never the draft:

* deploy: the current routes and settings become version n+1 and serve all traffic, or a canary
  share of it (`canary_percent`), or none yet (`staged`: the green side of a blue-green switch);
* activate: any published version serves all traffic (a rollback, or the blue-green switch);
* canary: change the canary's share; promote: the canary serves all traffic.

A caller goes to the canary when a stable hash of its client id (its address when anonymous) falls
under the share, so a client sees one version, not a mix, while the share stays the same
(gateway_core.deployed.serves_canary, which the proxy applies).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from functions.routes.logic.names import InvalidName, display_name
from functions.routes.logic.route_spec import MAX_TIMEOUT_SECONDS, CircuitBreakerSpec, RetrySpec, Route
from gateway_core.errors import Conflict, NotFound

_ORIGIN = re.compile(r"^(\*|https?://[A-Za-z0-9.-]+(:\d{1,5})?)$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CorsSpec(_Strict):
    allow_origins: list[str] = Field(min_length=1, max_length=20)
    allow_headers: list[str] = Field(
        default_factory=lambda: ["Authorization", "Content-Type", "X-Api-Key", "Idempotency-Key", "X-Request-Id"],
        max_length=50,
    )
    expose_headers: list[str] = Field(
        default_factory=lambda: ["X-Request-Id", "RateLimit", "RateLimit-Policy", "Retry-After"], max_length=50
    )
    max_age_seconds: int = Field(default=600, ge=0, le=86_400)

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        bad = [o for o in origins if not _ORIGIN.fullmatch(o)]
        if bad:
            raise ValueError(f"origins are '*' or scheme://host[:port]: {bad}")
        return origins

    @field_validator("allow_headers", "expose_headers")
    @classmethod
    def _headers(cls, headers: list[str]) -> list[str]:
        bad = [h for h in headers if not _HEADER.fullmatch(h)]
        if bad:
            raise ValueError(f"not header names: {bad}")
        return headers


class GatewaySpec(_Strict):
    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=2000)
    base_path: str = Field(
        default="",
        pattern=r"^(/[a-z0-9][a-z0-9-]{0,62}){0,3}$",
        description="Served under /gw<base_path>; '' for the root",
    )
    default_timeout_seconds: float = Field(default=10.0, ge=0.1, le=MAX_TIMEOUT_SECONDS)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    circuit_breaker: CircuitBreakerSpec = Field(default_factory=CircuitBreakerSpec)
    cors: CorsSpec | None = None
    status: Literal["active", "inactive"] = "active"

    @field_validator("name")
    @classmethod
    def _name(cls, name: str, info: ValidationInfo) -> str:
        # Stored as people read it, and unique by what they see (logic/names.py); a stored
        # gateway was checked when written and loads as it is.
        if (info.context or {}).get("stored"):
            return name
        try:
            return display_name(name)
        except InvalidName as error:
            raise ValueError(str(error)) from error


class Deployment(_Strict):
    latest_version: int = 0
    active_version: int | None = None
    canary_version: int | None = None
    canary_percent: int = Field(default=0, ge=0, le=100)


class Gateway(GatewaySpec):
    gateway_id: str
    created_at: str
    updated_at: str
    version: int
    deployment: Deployment = Field(default_factory=Deployment)

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def spec(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=set(GatewaySpec.model_fields))


class GatewayVersion(_Strict):
    """What a deploy publishes; never changed afterwards."""

    gateway_id: str
    version: int
    description: str = ""
    created_at: str
    created_by: str
    settings: GatewaySpec
    routes: list[Route]

    def public(self) -> dict[str, Any]:
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {
            "gateway_id": self.gateway_id,
            "version": self.version,
            "description": self.description,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "routes": len(self.routes),
        }

    @classmethod
    def stored(cls, data: dict[str, Any]) -> GatewayVersion:
        return cls.model_validate(data, context={"stored": True})


class UnknownVersion(NotFound):
    code = "version_not_found"


class DuplicateGateway(Conflict):
    code = "duplicate_gateway"


class GatewayNotEmpty(Conflict):
    code = "gateway_not_empty"


@dataclass(frozen=True)
class DeployRequest:
    description: str = ""
    strategy: Literal["all", "canary", "staged"] = "all"
    canary_percent: int = 0


def next_deployment(current: Deployment, request: DeployRequest) -> Deployment:
    version = current.latest_version + 1
    if request.strategy == "all":
        return Deployment(latest_version=version, active_version=version)
    if request.strategy == "canary":
        if current.active_version is None:
            raise Conflict("A canary needs a version already serving; deploy with strategy 'all' first.")
        if not 1 <= request.canary_percent <= 99:
            raise Conflict("A canary takes 1 to 99 percent of the traffic.", code="invalid_canary")
        return Deployment(
            latest_version=version,
            active_version=current.active_version,
            canary_version=version,
            canary_percent=request.canary_percent,
        )
    return current.model_copy(update={"latest_version": version})


def activate(current: Deployment, version: int) -> Deployment:
    if not 1 <= version <= current.latest_version:
        raise UnknownVersion(f"Version {version} was never deployed (latest is {current.latest_version}).")
    return Deployment(latest_version=current.latest_version, active_version=version)


def previous_version(current: Deployment) -> int:
    if current.active_version is None or current.active_version <= 1:
        raise UnknownVersion("There is no earlier version to roll back to.")
    return current.active_version - 1


def set_canary(current: Deployment, percent: int) -> Deployment:
    if current.canary_version is None:
        raise Conflict("No canary is deployed.", code="no_canary")
    if not 0 <= percent <= 99:
        raise Conflict("A canary takes 1 to 99 percent of the traffic (0 ends it).", code="invalid_canary")
    if percent == 0:
        return Deployment(latest_version=current.latest_version, active_version=current.active_version)
    return current.model_copy(update={"canary_percent": percent})


def promote(current: Deployment) -> Deployment:
    if current.canary_version is None:
        raise Conflict("No canary is deployed.", code="no_canary")
    return Deployment(latest_version=current.latest_version, active_version=current.canary_version)
