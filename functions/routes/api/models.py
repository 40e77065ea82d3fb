"""Answers of the routes folder's functions as the OpenAPI document describes them (the health,
OAuth2 and identity answers; the management API's own models sit beside its routers)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class TokenOut(BaseModel):
    access_token: str = Field(description="An RS256 `at+jwt` access token")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds")
    scope: str = Field(description="The granted scopes, space-separated")


class JwkOut(BaseModel):
    kty: Literal["RSA"]
    kid: str = Field(description="RFC 7638 thumbprint")
    alg: str
    use: Literal["sig"]
    n: str
    e: str


class JwksOut(BaseModel):
    keys: list[JwkOut] = Field(description="The current signing key first, then the previous one")


class ServerMetadataOut(BaseModel):
    issuer: str
    token_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    tls_client_certificate_bound_access_tokens: bool
    scopes_supported: list[str]
    response_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    mtls_endpoint_aliases: dict[str, str] | None = Field(default=None, description="RFC 8705 §5")


class FieldError(BaseModel):
    loc: list[str] = Field(description="Where: body, query, path or header, then the field's path")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API (but the token endpoint's RFC 6749
    errors) is answered; further members may carry details of a particular problem."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})
    type: str = Field(description="A URN naming the problem: urn:gateway:problem:<code>")
    title: str
    status: int | None = Field(default=None, description="The HTTP status (left out by some gateway answers)")
    detail: str | None = None
    instance: str | None = Field(default=None, description="The request path")
    code: str = Field(description="Stable, machine-readable name of the problem")
    request_id: str | None = Field(default=None, description="Quote it when asking for help")
    errors: list[FieldError] | None = Field(default=None, description="Each invalid value, on 400 and 422")


class OAuthErrorOut(BaseModel):
    """RFC 6749 §5.2 error response of the token endpoint."""

    error: Literal[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    ]
    error_description: str | None = None


class GatewayMessage(BaseModel):
    """API Gateway's own error body, for requests refused before the API sees them."""

    message: str
