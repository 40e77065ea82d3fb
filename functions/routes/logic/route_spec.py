"""What an admin says about a route (seed 000 api_routes, seed 004 api_endpoints) and the rules
every route must meet before it is stored: a valid path template, upstream URLs that pass the SSRF
guard, transformations and protocol settings that compile, limits that make sense.

These pydantic models are both the API's input and what is stored and deployed: a route is a
document of nested settings, and one model keeps the API, the store and the proxy in agreement.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from functions.routes.logic import paths, redaction
from functions.routes.logic.catalog import SCOPES
from functions.routes.logic.schema_hints import Scope
from functions.routes.logic.transform import graphql, rules, soap, templates
from gateway_core.ssrf import SsrfPolicy, validate_upstream_url

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"]
Algorithm = Literal["round_robin", "weighted", "least_outstanding", "consistent_hash"]
Protocol = Literal["rest", "soap", "graphql"]
MAX_TIMEOUT_SECONDS = 28.0  # API Gateway answers 504 at 29 s; the proxy must finish first


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TargetSpec(_Strict):
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="Base URL (http or https, a public host); the upstream path is appended",
        json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+"},
    )
    weight: int = Field(default=1, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _safe(cls, url: str, info: ValidationInfo) -> str:
        # Admin input is checked here; stored routes were checked when written (a later change of
        # the allowlist must not make deployed versions unreadable), and every call is checked
        # again at connect time by the guarded transport.
        if not (info.context or {}).get("stored"):
            validate_upstream_url(url, SsrfPolicy.from_env())
        return url.rstrip("/")

    @field_serializer("url")
    def _masked(self, url: str, info: SerializationInfo) -> str:
        return url if redaction.unmasked(info.context) else redaction.mask_url(url)


class LimitsSpec(_Strict):
    per_minute: int | None = Field(default=None, ge=1, le=100_000_000)
    per_hour: int | None = Field(default=None, ge=1, le=1_000_000_000)
    per_day: int | None = Field(default=None, ge=1, le=10_000_000_000)
    burst: int | None = Field(
        default=None, ge=1, le=100_000_000, description="At most this many at once (per-minute bucket)"
    )

    @model_validator(mode="after")
    def _coherent(self) -> LimitsSpec:
        if self.per_minute is None and self.per_hour is None and self.per_day is None:
            raise ValueError("give at least one of per_minute, per_hour, per_day")
        if self.burst is not None and (self.per_minute is None or self.burst > self.per_minute):
            raise ValueError("burst needs per_minute and may not exceed it")
        return self


class RetrySpec(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=5)
    initial_delay: float = Field(default=1.0, ge=0.01, le=5.0)
    max_delay: float = Field(default=5.0, ge=0.01, le=10.0)
    multiplier: float = Field(default=2.0, ge=1.0, le=4.0)


class CircuitBreakerSpec(_Strict):
    failure_threshold: int = Field(default=5, ge=1, le=100)
    reset_timeout_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)


class RequestTransformSpec(_Strict):
    headers: dict[str, Any] | None = None
    query: dict[str, Any] | None = None
    body: Any = None

    @model_validator(mode="after")
    def _compiles(self, info: ValidationInfo) -> RequestTransformSpec:
        rules.validate_rules(self.headers)
        rules.validate_rules(self.query)
        if self.body is not None:
            templates.validate_template(self.body)
        if not (info.context or {}).get("stored"):  # routes stored earlier are read as they are
            redaction.refuse_literal_credentials(
                {
                    "request_transform.headers": redaction.literal_credentials(self.headers),
                    "request_transform.query": redaction.literal_credentials(self.query),
                    "request_transform.body": redaction.template_literals(self.body),
                }
            )
        return self

    @field_serializer("headers", "query")
    def _masked(self, rules: dict[str, Any] | None, info: SerializationInfo) -> dict[str, Any] | None:
        return rules if redaction.unmasked(info.context) else redaction.mask_rules(rules)

    @field_serializer("body")
    def _masked_body(self, body: Any, info: SerializationInfo) -> Any:
        return body if redaction.unmasked(info.context) else redaction.mask_template(body)


class ResponseTransformSpec(_Strict):
    headers: dict[str, Any] | None = None
    body: Any = None

    @model_validator(mode="after")
    def _compiles(self) -> ResponseTransformSpec:
        rules.validate_rules(self.headers)
        if self.body is not None:
            templates.validate_template(self.body)
        if rules.secret_references(self.headers) or templates.secret_references(self.body):
            raise ValueError("response rules reach every caller: they cannot use secrets")
        return self


class SoapSpec(_Strict):
    version: Literal["1.1", "1.2"] = "1.1"
    namespace: str = Field(min_length=1, max_length=512)
    operation: str = Field(min_length=1, max_length=128)
    action: str | None = Field(default=None, max_length=512)

    @model_validator(mode="after")
    def _compiles(self) -> SoapSpec:
        soap.validate_soap_config(self.model_dump(exclude_none=True))
        return self


class GraphqlSpec(_Strict):
    query: str = Field(min_length=1, max_length=20_000)
    operation_name: str | None = Field(default=None, max_length=128)
    variables: Any = None

    @model_validator(mode="after")
    def _compiles(self, info: ValidationInfo) -> GraphqlSpec:
        graphql.validate_graphql_config(self.model_dump(exclude_none=True, context=redaction.UNMASKED))
        if not (info.context or {}).get("stored"):
            redaction.refuse_literal_credentials(
                {
                    "graphql.query": redaction.graphql_literals(self.query),
                    "graphql.variables": redaction.template_literals(self.variables),
                }
            )
        return self

    @field_serializer("query")
    def _masked_query(self, query: str, info: SerializationInfo) -> str:
        return query if redaction.unmasked(info.context) else redaction.mask_graphql(query)

    @field_serializer("variables")
    def _masked_variables(self, variables: Any, info: SerializationInfo) -> Any:
        return variables if redaction.unmasked(info.context) else redaction.mask_template(variables)


class HealthCheckSpec(_Strict):
    path: str = Field(default="/health", pattern=r"^/[A-Za-z0-9._~/-]*$", max_length=256)
    expect_status: int = Field(default=200, ge=200, le=399)


class RouteSpec(_Strict):
    gateway_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=2000)
    method: Method
    path: str = Field(min_length=1, max_length=paths.MAX_PATH_LENGTH, description="e.g. /orders/{id}")
    upstream_path: str | None = Field(
        default=None, max_length=paths.MAX_PATH_LENGTH, description="Path on the target; default: the route's path"
    )
    targets: list[TargetSpec] = Field(min_length=1, max_length=10)
    load_balancing: Algorithm = "round_robin"
    auth_required: bool = True
    required_scopes: list[Scope] = Field(default_factory=list, max_length=20)
    rate_limits: LimitsSpec | None = Field(default=None, description="Per client on this route")
    total_rate_limits: LimitsSpec | None = Field(default=None, description="All clients together on this route")
    request_transform: RequestTransformSpec | None = None
    response_transform: ResponseTransformSpec | None = None
    protocol: Protocol = "rest"
    soap: SoapSpec | None = None
    graphql: GraphqlSpec | None = None
    timeout_seconds: float | None = Field(default=None, ge=0.1, le=MAX_TIMEOUT_SECONDS)
    retry: RetrySpec | None = None
    cache_ttl_seconds: int = Field(default=0, ge=0, le=86_400)
    cache_key_template: str | None = Field(default=None, max_length=512)
    health_check: HealthCheckSpec | None = None
    active: bool = True
    deprecated: bool = False
    deprecation_date: date | None = Field(default=None, strict=False)
    sunset_date: date | None = Field(default=None, strict=False)

    @field_validator("path")
    @classmethod
    def _template(cls, path: str) -> str:
        paths.parse_template(path)
        return path

    @field_validator("required_scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = sorted({s for s in scopes if s not in SCOPES})
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        return sorted(set(scopes))

    @field_validator("request_transform", "response_transform")
    @classmethod
    def _writable_header_rules(cls, transform: Any, info: ValidationInfo) -> Any:
        # Refused when written; a route stored earlier is read as it is (the function leaves out
        # a header it cannot write: gateway_core.endpoints).
        if transform is not None and not (info.context or {}).get("stored"):
            rules.validate_header_values(transform.headers)
        return transform

    @field_validator("cache_key_template")
    @classmethod
    def _key_template(cls, template: str | None) -> str | None:
        if template is not None:
            templates.validate_template(template)
            if templates.secret_references(template):
                raise ValueError("a cache key cannot use secrets")
        return template

    @model_validator(mode="after")
    def _coherent(self) -> RouteSpec:
        names = set(paths.parameters(self.path))
        if self.upstream_path is not None:
            paths.parse_template(self.upstream_path)
            missing = set(paths.parameters(self.upstream_path)) - names
            if missing:
                raise ValueError(f"upstream_path uses parameters the path does not have: {sorted(missing)}")
        if (self.protocol == "soap") != (self.soap is not None):
            raise ValueError("protocol 'soap' and the 'soap' settings go together")
        if (self.protocol == "graphql") != (self.graphql is not None):
            raise ValueError("protocol 'graphql' and the 'graphql' settings go together")
        if self.protocol != "rest" and self.method not in ("POST", "GET"):
            raise ValueError("SOAP and GraphQL routes are GET or POST")
        if self.sunset_date and self.deprecation_date and self.sunset_date < self.deprecation_date:
            raise ValueError("sunset_date comes after deprecation_date")
        if (self.deprecation_date or self.sunset_date) and not self.deprecated:
            raise ValueError("deprecation_date and sunset_date need deprecated: true")
        if not self.auth_required and self.required_scopes:
            raise ValueError("required_scopes need auth_required: true")
        if self.cache_ttl_seconds and self.method not in ("GET", "HEAD"):
            raise ValueError("only GET and HEAD routes are cached")
        return self


class Route(RouteSpec):
    """A stored route: the spec plus identity and bookkeeping."""

    route_id: str
    version: int
    created_at: str
    updated_at: str
    created_by: str

    def spec(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=set(RouteSpec.model_fields))

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def stored(cls, data: dict[str, Any]) -> Route:
        return cls.model_validate(data, context={"stored": True})
