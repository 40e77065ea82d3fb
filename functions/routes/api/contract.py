"""What each operation of the API answers, for the OpenAPI document: its success status, model and
headers, the errors it can return, who may call it, and an example of its body.

The request side (parameters, body models) comes from the code that validates it (powertools'
routers, operations.py, the webhooks routers' generated openapi_webhooks.json); this table adds
what a handler's signature cannot say. Errors every
operation of a shape can return are derived, not listed: 401/403 behind an authorizer, 400, 413,
415 and 422 with a body, 422 with parameters, 404 with path parameters, 412/428 with If-Match, 429
(stage throttling) and 5XX (the gateway or a dependency failed) everywhere. `errors` adds the
rest. tests/integration/test_api_document.py checks every operation has an entry, and the
schemathesis run (tests/e2e/test_api_contract.py) checks the entries against what is served.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from functions.routes.logic.transform.templates import SECRET_NAME

# Security requirement sets (names of components.securitySchemes).
ADMIN = ("apiKey", "oauth2")  # the admin authorizer: an API key, or a bearer token
TOKEN_ONLY = ("oauth2",)
CERTIFICATE = ("mutualTLS",)
PUBLIC: tuple[str, ...] = ()
ANY_CREDENTIAL = ("apiKey", "oauth2", "mutualTLS")


class Contract(NamedTuple):
    status: int = 200
    model: str | None = None  # "module:Model" of the success body, where the handler's signature says str
    headers: tuple[str, ...] = ()  # success response headers (names in HEADERS)
    errors: tuple[int, ...] = ()  # beyond the derived ones
    scopes: tuple[str, ...] = ("admin",)  # any one of them suffices
    schemes: tuple[str, ...] = ADMIN
    example: dict[str, Any] | None = None  # a request body that the operation accepts
    # "required": 428 when absent; "when_exists": 428 when absent and the resource exists (a PUT
    # that creates needs none); "optional": honoured when sent (412 when stale); "": not read.
    if_match: str = ""
    empty_body: bool = False  # no success body (204)
    anonymous: bool = False  # also callable without a credential (a route may need none)
    also: tuple[int, ...] = ()  # other success statuses, with the same answer
    passthrough: bool = False  # answers are the upstream's, whatever they are (the data plane)


_M = "functions.routes.api"
_READ = ("admin", "gateway:read")
_WH_READ = ("admin", "webhooks:read")
_WH_WRITE = ("admin", "webhooks:write")
_RATE = {"per_minute": 120, "per_hour": 5000, "per_day": 50000}
_ROUTE = {
    "gateway_id": "gw_0123456789abcdef",
    "name": "account",
    "method": "GET",
    "path": "/accounts/{account_id}",
    "targets": [{"url": "https://api.example.com/v1"}],
}

CONTRACTS: dict[str, Contract] = {
    # -- identity ---------------------------------------------------------------------------
    "GET /api/v1/whoami": Contract(scopes=(), schemes=("apiKey",)),
    "GET /api/v1/whoami/token": Contract(scopes=(), schemes=TOKEN_ONLY),
    "GET /api/v1/whoami/certificate": Contract(scopes=(), schemes=CERTIFICATE),
    # -- clients ----------------------------------------------------------------------------
    "POST /api/v1/clients/register": Contract(
        201,
        headers=("Location", "Cache-Control", "ETag"),
        errors=(409,),
        example={
            "name": "Acme Treasury",
            "client_type": "integration",
            "contact_email": "treasury@acme.example",
            "allowed_scopes": ["gateway:read"],
            "tier": "basic",
        },
    ),
    "GET /api/v1/clients": Contract(errors=(400,)),
    "GET /api/v1/clients/{client_id}": Contract(headers=("ETag",)),
    "PUT /api/v1/clients/{client_id}": Contract(
        headers=("ETag",),
        errors=(409,),
        if_match="required",
        example={"description": "Treasury team's integration", "tier": "professional"},
    ),
    "DELETE /api/v1/clients/{client_id}": Contract(204, empty_body=True, errors=(409,), if_match="optional"),
    "POST /api/v1/clients/{client_id}/suspend": Contract(errors=(409,)),
    "POST /api/v1/clients/{client_id}/reactivate": Contract(errors=(409,)),
    "POST /api/v1/clients/{client_id}/secret": Contract(
        headers=("Cache-Control",), errors=(409,), example={"grace_seconds": 3600}
    ),
    "GET /api/v1/clients/{client_id}/certificates": Contract(),
    "POST /api/v1/clients/{client_id}/certificates": Contract(
        201,
        headers=("Location",),
        errors=(409,),
        example={"pem": "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"},
    ),
    "DELETE /api/v1/clients/{client_id}/certificates/{fingerprint}": Contract(errors=(409,)),
    # -- audit ------------------------------------------------------------------------------
    "GET /api/v1/audit/events": Contract(errors=(400,)),
    # -- keys -------------------------------------------------------------------------------
    "POST /api/v1/gateway/keys": Contract(
        201,
        headers=("Location", "Cache-Control", "ETag"),
        errors=(404, 409),
        example={"client_id": "cl_0123456789abcdef", "name": "reconciliation job", "scopes": ["gateway:read"]},
    ),
    "GET /api/v1/gateway/keys": Contract(errors=(400,)),
    "GET /api/v1/gateway/keys/{key_id}": Contract(headers=("ETag",)),
    "PUT /api/v1/gateway/keys/{key_id}": Contract(
        headers=("ETag",),
        errors=(409,),
        if_match="required",
        example={"name": "reconciliation job (nightly)", "rate_limits": _RATE},
    ),
    "DELETE /api/v1/gateway/keys/{key_id}": Contract(headers=("ETag",), errors=(409,), if_match="optional"),
    "POST /api/v1/gateway/keys/{key_id}/rotate": Contract(
        201, headers=("Location", "Cache-Control"), errors=(409,), example={"grace_seconds": 86400}
    ),
    # -- denylist ---------------------------------------------------------------------------
    "GET /api/v1/gateway/ip-denylist": Contract(headers=("ETag",)),
    "PUT /api/v1/gateway/ip-denylist": Contract(
        headers=("ETag",),
        errors=(409,),
        if_match="required",
        example={"cidrs": ["203.0.113.0/24", "2001:db8::/32"]},
    ),
    # -- issuers ----------------------------------------------------------------------------
    "POST /api/v1/gateway/issuers": Contract(
        201,
        headers=("Location", "ETag"),
        errors=(409,),
        example={
            "issuer": "https://login.partner.example",
            "jwks_url": "https://login.partner.example/.well-known/jwks.json",
            "audiences": ["finance-gateway"],
            "allowed_scopes": ["gateway:read"],
        },
    ),
    "GET /api/v1/gateway/issuers": Contract(errors=(400,)),
    "GET /api/v1/gateway/issuers/{issuer_id}": Contract(headers=("ETag",)),
    "PATCH /api/v1/gateway/issuers/{issuer_id}": Contract(
        headers=("ETag",), errors=(409,), if_match="required", example={"status": "disabled"}
    ),
    "DELETE /api/v1/gateway/issuers/{issuer_id}": Contract(204, empty_body=True, errors=(409,), if_match="optional"),
    # -- gateways, deployments --------------------------------------------------------------
    "POST /api/v1/gateways": Contract(
        201,
        f"{_M}.gateways:Gateway",
        headers=("Location", "ETag"),
        errors=(409,),
        example={"name": "payments", "base_path": "/payments", "description": "Payment partners"},
    ),
    "GET /api/v1/gateways": Contract(scopes=_READ, errors=(400,)),
    "GET /api/v1/gateways/{gateway_id}": Contract(model=f"{_M}.gateways:Gateway", headers=("ETag",), scopes=_READ),
    "PUT /api/v1/gateways/{gateway_id}": Contract(
        model=f"{_M}.gateways:Gateway",
        headers=("ETag",),
        errors=(409,),
        if_match="required",
        example={"name": "payments", "base_path": "/payments", "description": "Payment partners (EU)"},
    ),
    "DELETE /api/v1/gateways/{gateway_id}": Contract(204, empty_body=True, errors=(409,), if_match="optional"),
    "POST /api/v1/gateways/{gateway_id}/deploy": Contract(
        201,
        f"{_M}.gateways:Gateway",
        headers=("Location",),
        errors=(409,),
        example={"description": "Adds the statements route", "strategy": "canary", "canary_percent": 10},
    ),
    "POST /api/v1/gateways/{gateway_id}/activate": Contract(
        model=f"{_M}.gateways:Gateway", errors=(409,), example={"version": 2}
    ),
    "POST /api/v1/gateways/{gateway_id}/rollback": Contract(
        model=f"{_M}.gateways:Gateway", errors=(409,), example={"version": 1}
    ),
    "PUT /api/v1/gateways/{gateway_id}/canary": Contract(
        model=f"{_M}.gateways:Gateway", headers=("ETag",), errors=(409,), if_match="required", example={"percent": 25}
    ),
    "POST /api/v1/gateways/{gateway_id}/promote": Contract(model=f"{_M}.gateways:Gateway", errors=(409,)),
    "GET /api/v1/gateways/{gateway_id}/versions": Contract(scopes=_READ),
    "GET /api/v1/gateways/{gateway_id}/versions/{version}": Contract(scopes=_READ, errors=(503,)),
    # -- routes -----------------------------------------------------------------------------
    "POST /api/v1/gateway/routes": Contract(
        201,
        f"{_M}.gateways:Route",
        headers=("Location", "ETag"),
        errors=(404, 409),
        example={**_ROUTE, "required_scopes": ["gateway:read"]},
    ),
    "GET /api/v1/gateway/routes": Contract(scopes=_READ, errors=(400, 404)),
    "GET /api/v1/gateway/routes/{route_id}": Contract(model=f"{_M}.gateways:Route", headers=("ETag",), scopes=_READ),
    "PUT /api/v1/gateway/routes/{route_id}": Contract(
        model=f"{_M}.gateways:Route",
        headers=("ETag",),
        errors=(409,),
        if_match="required",
        example={**_ROUTE, "timeout_seconds": 5},
    ),
    "DELETE /api/v1/gateway/routes/{route_id}": Contract(204, empty_body=True, errors=(409,), if_match="optional"),
    # -- upstream secrets -------------------------------------------------------------------
    "GET /api/v1/gateways/{gateway_id}/secrets": Contract(),
    "GET /api/v1/gateways/{gateway_id}/secrets/{name}": Contract(
        model=f"{_M}.secrets:Secret", headers=("ETag", "Location"), errors=(400,)
    ),
    "PUT /api/v1/gateways/{gateway_id}/secrets/{name}": Contract(
        model=f"{_M}.secrets:Secret",
        also=(201,),  # 201 created, 200 replaced
        headers=("ETag", "Location"),
        errors=(409, 503),
        if_match="when_exists",
        example={"value": "s3cr3t-upstream-token"},
    ),
    "DELETE /api/v1/gateways/{gateway_id}/secrets/{name}": Contract(
        204, empty_body=True, errors=(400, 409), if_match="optional"
    ),
    # -- webhooks and events: the webhooks function (openapi_webhooks.json) ----------------
    # `model` stays unset: the fragment holds each handler's answer model already, and the
    # webhooks models cannot be imported where this document is built. Any client may call
    # these (the admin authorizer); the handlers check the scope and the endpoint's owner.
    "POST /api/v1/webhooks": Contract(
        201,
        headers=("Location", "Cache-Control", "ETag"),
        scopes=_WH_WRITE,
        example={
            "name": "Key changes",
            "url": "https://hooks.example.com/gateway",
            "event_types": ["key.*", "client.updated"],
            "filters": [{"field": "data.key.client_id", "op": "eq", "value": "cl_0123456789abcdef"}],
            "signing": "v1",
        },
    ),
    "GET /api/v1/webhooks": Contract(scopes=_WH_READ, errors=(400,)),
    "GET /api/v1/webhooks/{endpoint_id}": Contract(headers=("ETag",), scopes=_WH_READ),
    "PATCH /api/v1/webhooks/{endpoint_id}": Contract(
        headers=("ETag",),
        errors=(409,),
        scopes=_WH_WRITE,
        if_match="required",
        example={"url": "https://hooks.example.com/gateway/v2", "max_retries": 5},
    ),
    "DELETE /api/v1/webhooks/{endpoint_id}": Contract(
        204, empty_body=True, errors=(409,), scopes=_WH_WRITE, if_match="optional"
    ),
    "POST /api/v1/webhooks/{endpoint_id}/rotate-secret": Contract(
        headers=("Cache-Control", "ETag"), errors=(409,), scopes=_WH_WRITE, example={"grace_seconds": 3600}
    ),
    # 404 also for a v1 endpoint (`no_public_key`): derived from the path parameter.
    "GET /api/v1/webhooks/{endpoint_id}/public-key": Contract(scopes=_WH_READ),
    "POST /api/v1/webhooks/{endpoint_id}/enable": Contract(headers=("ETag",), errors=(409,), scopes=_WH_WRITE),
    "POST /api/v1/webhooks/{endpoint_id}/test": Contract(
        scopes=_WH_WRITE,
        example={
            "eventType": "endpoint.enabled",
            "testData": {"endpoint_id": "ep_0123456789abcdef01234567", "url": "https://hooks.example.com/gateway"},
        },
    ),
    "GET /api/v1/webhooks/{endpoint_id}/deliveries": Contract(scopes=_WH_READ, errors=(400,)),
    "GET /api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/attempts": Contract(scopes=_WH_READ, errors=(400,)),
    # 409: an attempt is in progress (`in_progress`), or the delivery changed meanwhile.
    "POST /api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay": Contract(
        202, errors=(409,), scopes=_WH_WRITE
    ),
    "POST /api/v1/webhooks/{endpoint_id}/recover": Contract(
        202, scopes=_WH_WRITE, example={"since": "2026-11-30T00:00:00Z"}
    ),
    "POST /api/v1/webhooks/dlq/redrive": Contract(),
    "GET /api/v1/events/types": Contract(scopes=()),
    "GET /api/v1/docs/events": Contract(scopes=()),
    "POST /api/v1/events/trigger": Contract(
        202,
        scopes=("admin", "events:write"),
        example={
            "event_type": "endpoint.enabled",
            "data": {"endpoint_id": "ep_0123456789abcdef01234567", "url": "https://hooks.example.com/gateway"},
        },
    ),
    # -- served by the data plane, OAuth2 and health functions (operations.py) --------------
    "POST /api/v1/batch": Contract(
        scopes=(),
        schemes=("apiKey", "oauth2"),
        anonymous=True,  # each sub-request is authorized as its route requires
        headers=("X-Request-Id",),
        example={"requests": [{"method": "GET", "path": "/gw/payments/accounts/42"}]},
    ),
    "POST /oauth2/token": Contract(scopes=(), schemes=PUBLIC, headers=("Cache-Control", "Pragma")),
    "GET /.well-known/jwks.json": Contract(scopes=(), schemes=PUBLIC, headers=("Cache-Control",)),
    "GET /.well-known/openid-configuration": Contract(scopes=(), schemes=PUBLIC, headers=("Cache-Control",)),
    "GET /api/v1/gateway/health": Contract(scopes=(), schemes=PUBLIC, headers=("Cache-Control",), errors=(503,)),
}
# The data plane: every method on /gw/{path} is a route lookup; whatever the route allows.
for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    CONTRACTS[f"{_method} /gw/{{path}}"] = Contract(
        scopes=(),
        schemes=ANY_CREDENTIAL,
        anonymous=True,
        headers=("X-Request-Id", "RateLimit", "RateLimit-Policy", "Deprecation", "Sunset"),
        # 400: a route with a JSON body template called without the JSON it needs; 405: the path
        # is routed for other methods.
        errors=(400, 404, 405, 406, 413, 415, 429, 502, 503, 504, 508),
        passthrough=True,
    )

# Response headers (all strings), as the document describes them.
HEADERS: dict[str, str] = {
    "Location": "Where the created (or named) resource is read",
    "ETag": 'The resource\'s version ("<n>"); send it back as If-Match to change it',
    "Cache-Control": "Caching directives (no-store on answers holding secrets)",
    "Pragma": "no-cache, for HTTP/1.0 caches (RFC 6749 §5.1)",
    "X-Request-Id": "The correlation id (the caller's own, when it sent one)",
    "RateLimit": "Remaining quota of the policy closest to its limit (draft-ietf-httpapi-ratelimit-headers)",
    "RateLimit-Policy": "The rate limit policies that apply",
    "Retry-After": "Seconds to wait before retrying",
    "Deprecation": "The route is deprecated since this date (RFC 9745)",
    "Sunset": "The route stops being served at this HTTP date (RFC 8594)",
    "WWW-Authenticate": "The authentication schemes accepted",
    "Accept": "The media types the operation takes",
    "Allow": "The methods the path is served for",
    "Accept-Encoding": "identity: bodies are taken without a content coding",
}

# Error statuses: what each means here, and the headers it carries. Bodies are problem details
# but for the statuses in GATEWAY_MESSAGES.
ERRORS: dict[int | str, tuple[str, tuple[str, ...]]] = {
    400: (
        "The request cannot be read: a body that is not UTF-8 JSON, a bad cursor or If-Match (`invalid_body`, ...)",
        (),
    ),
    401: ("No valid credential", ("WWW-Authenticate",)),
    403: ("The credential may not do this (`access_denied`, `insufficient_scope`)", ()),
    404: ("No such resource", ()),
    405: ("The path is served, for other methods", ("Allow",)),
    406: ("None of the media types in Accept can be served", ()),
    409: ("Conflicts with the resource's current state (`errors`/`code` say which)", ()),
    412: (
        "If-Match names a version that is no longer current (read it again), or If-None-Match: * "
        "finds the resource there already",
        (),
    ),
    413: ("The body is too large", ()),
    # Refused while reading the request, before any API answer applies: API Gateway's own
    # {"message": ...} body (application/json), as the local runtime's HTTP layer answers it too.
    414: ('The request line (path and query) is longer than 10,240 bytes: {"message": ...}', ()),
    415: ("The body's media type or coding is not taken: send application/json", ("Accept", "Accept-Encoding")),
    422: ("Well-formed, but values are not acceptable: `errors` lists each (loc, msg, type)", ()),
    428: ("This change needs If-Match with the ETag read by GET (or `*`)", ()),
    429: ("Too many requests: throttled by the stage, or the credential's rate limit", ("Retry-After",)),
    502: ("The upstream failed or answered something unusable", ()),
    503: ("A dependency is unavailable (the circuit breaker is open, or storage could not be read)", ("Retry-After",)),
    504: ("The upstream did not answer in time", ()),
    508: ("The request looped back into the gateway", ()),
    "5XX": ("The gateway or one of its dependencies failed (not the request's doing): quote request_id", ()),
}
GATEWAY_MESSAGES = frozenset({414})
# Path parameters the operations check beyond their type: (path prefix, pattern).
PATH_PATTERNS: dict[str, tuple[str, str]] = {
    "name": ("/api/v1/gateways/{gateway_id}/secrets/", SECRET_NAME.pattern),
    # The ids the webhooks function issues (functions/webhooks/logic: endpoints.ENDPOINT_ID,
    # operations.DELIVERY_ID); any other is a 404 without a read.
    "endpoint_id": ("/api/v1/webhooks/", "^ep_[0-9a-f]{24}$"),
    "delivery_id": ("/api/v1/webhooks/", "^dlv_[0-9a-f]{26}$"),
}
