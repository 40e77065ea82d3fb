"""Deployed gateway versions as the functions that serve them read them: immutable named tuples
built from the stored JSON, so the data plane and the health checks need no pydantic (named
tuples, with real rather than postponed annotations: on the data plane's cold path they cost a
fraction of what frozen dataclasses cost to define).

A version is validated once, when it is deployed (the management API's RouteSpec and GatewaySpec
models, functions/routes/logic/route_spec.py and gateways.py); what is stored is that model's
JSON, read here field by field with the same defaults. A test keeps the two in step: every field
of the models has its twin here.
"""

import hashlib
from datetime import date
from typing import Any, NamedTuple, Protocol


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value or ())


class Target(NamedTuple):
    url: str
    weight: int = 1

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Target":
        return cls(url=str(data["url"]).rstrip("/"), weight=int(data.get("weight", 1)))


class RouteLimits(NamedTuple):
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None
    burst: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "RouteLimits | None":
        if data is None:
            return None
        return cls(**{k: None if data.get(k) is None else int(data[k]) for k in cls._fields})


class RetrySettings(NamedTuple):
    max_attempts: int = 3
    initial_delay: float = 1.0
    max_delay: float = 5.0
    multiplier: float = 2.0

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "RetrySettings | None":
        if data is None:
            return None
        defaults = cls()
        return cls(
            max_attempts=int(data.get("max_attempts", defaults.max_attempts)),
            initial_delay=float(data.get("initial_delay", defaults.initial_delay)),
            max_delay=float(data.get("max_delay", defaults.max_delay)),
            multiplier=float(data.get("multiplier", defaults.multiplier)),
        )


class CircuitBreakerSettings(NamedTuple):
    failure_threshold: int = 5
    reset_timeout_seconds: float = 60.0

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "CircuitBreakerSettings":
        data = data or {}
        return cls(
            failure_threshold=int(data.get("failure_threshold", 5)),
            reset_timeout_seconds=float(data.get("reset_timeout_seconds", 60.0)),
        )


class RequestTransform(NamedTuple):
    headers: dict[str, Any] | None = None
    query: dict[str, Any] | None = None
    body: Any = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "RequestTransform | None":
        if data is None:
            return None
        return cls(headers=data.get("headers"), query=data.get("query"), body=data.get("body"))


class ResponseTransform(NamedTuple):
    headers: dict[str, Any] | None = None
    body: Any = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "ResponseTransform | None":
        if data is None:
            return None
        return cls(headers=data.get("headers"), body=data.get("body"))


class SoapSettings(NamedTuple):
    namespace: str
    operation: str
    version: str = "1.1"
    action: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "SoapSettings | None":
        if data is None:
            return None
        return cls(
            namespace=str(data["namespace"]),
            operation=str(data["operation"]),
            version=str(data.get("version", "1.1")),
            action=data.get("action"),
        )

    def config(self) -> dict[str, Any]:
        """The settings as the SOAP bridge takes them (unset ones left out)."""
        found = {"version": self.version, "namespace": self.namespace, "operation": self.operation}
        return found | ({"action": self.action} if self.action is not None else {})


class GraphqlSettings(NamedTuple):
    query: str
    operation_name: str | None = None
    variables: Any = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "GraphqlSettings | None":
        if data is None:
            return None
        return cls(query=str(data["query"]), operation_name=data.get("operation_name"), variables=data.get("variables"))

    def config(self) -> dict[str, Any]:
        """The settings as the GraphQL bridge takes them (unset ones left out)."""
        found: dict[str, Any] = {"query": self.query}
        if self.operation_name is not None:
            found["operation_name"] = self.operation_name
        if self.variables is not None:
            found["variables"] = self.variables
        return found


class HealthCheck(NamedTuple):
    path: str = "/health"
    expect_status: int = 200

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "HealthCheck | None":
        if data is None:
            return None
        return cls(path=str(data.get("path", "/health")), expect_status=int(data.get("expect_status", 200)))


def _date(value: Any) -> date | None:
    return date.fromisoformat(str(value)) if value else None


class DeployedRoute(NamedTuple):
    route_id: str
    gateway_id: str
    name: str
    method: str
    path: str
    targets: tuple[Target, ...]
    description: str = ""
    upstream_path: str | None = None
    load_balancing: str = "round_robin"
    auth_required: bool = True
    required_scopes: tuple[str, ...] = ()
    rate_limits: RouteLimits | None = None
    total_rate_limits: RouteLimits | None = None
    request_transform: RequestTransform | None = None
    response_transform: ResponseTransform | None = None
    protocol: str = "rest"
    soap: SoapSettings | None = None
    graphql: GraphqlSettings | None = None
    timeout_seconds: float | None = None
    retry: RetrySettings | None = None
    cache_ttl_seconds: int = 0
    cache_key_template: str | None = None
    health_check: HealthCheck | None = None
    active: bool = True
    deprecated: bool = False
    deprecation_date: date | None = None
    sunset_date: date | None = None
    version: int = 1
    created_at: str = ""
    updated_at: str = ""
    created_by: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DeployedRoute":
        timeout = data.get("timeout_seconds")
        return cls(
            route_id=str(data["route_id"]),
            gateway_id=str(data["gateway_id"]),
            name=str(data["name"]),
            method=str(data["method"]),
            path=str(data["path"]),
            targets=tuple(Target.from_json(t) for t in data["targets"]),
            description=str(data.get("description", "")),
            upstream_path=data.get("upstream_path"),
            load_balancing=str(data.get("load_balancing", "round_robin")),
            auth_required=bool(data.get("auth_required", True)),
            required_scopes=_tuple(data.get("required_scopes")),
            rate_limits=RouteLimits.from_json(data.get("rate_limits")),
            total_rate_limits=RouteLimits.from_json(data.get("total_rate_limits")),
            request_transform=RequestTransform.from_json(data.get("request_transform")),
            response_transform=ResponseTransform.from_json(data.get("response_transform")),
            protocol=str(data.get("protocol", "rest")),
            soap=SoapSettings.from_json(data.get("soap")),
            graphql=GraphqlSettings.from_json(data.get("graphql")),
            timeout_seconds=None if timeout is None else float(timeout),
            retry=RetrySettings.from_json(data.get("retry")),
            cache_ttl_seconds=int(data.get("cache_ttl_seconds", 0)),
            cache_key_template=data.get("cache_key_template"),
            health_check=HealthCheck.from_json(data.get("health_check")),
            active=bool(data.get("active", True)),
            deprecated=bool(data.get("deprecated", False)),
            deprecation_date=_date(data.get("deprecation_date")),
            sunset_date=_date(data.get("sunset_date")),
            version=int(data.get("version", 1)),
            created_at=str(data.get("created_at", "")),
            updated_at=str(data.get("updated_at", "")),
            created_by=str(data.get("created_by", "")),
        )


_DEFAULT_CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "X-Api-Key", "Idempotency-Key", "X-Request-Id")
_DEFAULT_CORS_EXPOSE_HEADERS = ("X-Request-Id", "RateLimit", "RateLimit-Policy", "Retry-After")


class CorsSettings(NamedTuple):
    """A gateway's browser origins (answered by the proxy, before credentials and limits)."""

    allow_origins: tuple[str, ...]
    allow_headers: tuple[str, ...] = _DEFAULT_CORS_ALLOW_HEADERS
    expose_headers: tuple[str, ...] = _DEFAULT_CORS_EXPOSE_HEADERS
    max_age_seconds: int = 600

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "CorsSettings | None":
        if data is None:
            return None
        return cls(
            allow_origins=_tuple(data["allow_origins"]),
            allow_headers=_tuple(data.get("allow_headers", _DEFAULT_CORS_ALLOW_HEADERS)),
            expose_headers=_tuple(data.get("expose_headers", _DEFAULT_CORS_EXPOSE_HEADERS)),
            max_age_seconds=int(data.get("max_age_seconds", 600)),
        )


class GatewaySettings(NamedTuple):
    name: str
    description: str = ""
    base_path: str = ""
    default_timeout_seconds: float = 10.0
    retry: RetrySettings = RetrySettings()
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    cors: CorsSettings | None = None
    status: str = "active"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "GatewaySettings":
        return cls(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            base_path=str(data.get("base_path", "")),
            default_timeout_seconds=float(data.get("default_timeout_seconds", 10.0)),
            retry=RetrySettings.from_json(data.get("retry")) or RetrySettings(),
            circuit_breaker=CircuitBreakerSettings.from_json(data.get("circuit_breaker")),
            cors=CorsSettings.from_json(data.get("cors")),
            status=str(data.get("status", "active")),
        )


class DeployedVersion(NamedTuple):
    """What a deploy published; never changed afterwards."""

    gateway_id: str
    version: int
    created_at: str
    created_by: str
    settings: GatewaySettings
    routes: tuple[DeployedRoute, ...]
    description: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DeployedVersion":
        return cls(
            gateway_id=str(data["gateway_id"]),
            version=int(data["version"]),
            created_at=str(data["created_at"]),
            created_by=str(data["created_by"]),
            settings=GatewaySettings.from_json(data["settings"]),
            routes=tuple(DeployedRoute.from_json(r) for r in data.get("routes", ())),
            description=str(data.get("description", "")),
        )


# -- what serves: the deployments index -----------------------------------------------------------


class Deployment(NamedTuple):
    """Which versions of a gateway serve (the `DEPLOYMENTS` index entry's numbers)."""

    latest_version: int = 0
    active_version: int | None = None
    canary_version: int | None = None
    canary_percent: int = 0


def canary_bucket(caller_key: str) -> int:
    """A caller's stable bucket 0..99: a client sees one version, not a mix, while the share holds."""
    return int.from_bytes(hashlib.blake2b(caller_key.encode(), digest_size=4).digest(), "big") % 100


class CanaryShare(Protocol):
    @property
    def canary_version(self) -> int | None: ...

    @property
    def canary_percent(self) -> int: ...


def serves_canary(deployment: CanaryShare, caller_key: str) -> bool:
    """Whether this caller's requests go to the canary."""
    if deployment.canary_version is None or deployment.canary_percent <= 0:
        return False
    return canary_bucket(caller_key) < deployment.canary_percent
