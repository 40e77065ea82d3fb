"""The event types the product publishes to webhooks, the JSON Schema of each one's `data`, and the
audit actions that publish them.

An audited change publishes an event in the same transaction as the change (gateway_core.audit):
its `data` is the resource's public state after the change (before it, for a delete), the state
the audit event hashes, under the resource's name, with who made the change:
`{"key": {...}, "actor": {"client_id": ..., "request_id": ...}}`.

Subscriptions name types exactly, by family (`key.*`, any depth below: `message.*` takes
`message.attempt.exhausted`), or all (`*`). The families of later issues (payments, integration
syncs, prices) are reserved: subscribing to their types is accepted before they are published.

Stdlib only: this module is imported by every function that writes audited changes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# The dialect every schema below is written in (it is not repeated inside them: `$schema` may only
# appear at a schema resource's root, and these schemas are embedded in the API's documents).
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    schema: dict[str, Any] = field(hash=False)  # JSON Schema (2020-12) of the event's `data`


# -- schema building blocks ----------------------------------------------------------------------
# Public states always carry every member (dataclasses.asdict, pydantic model_dump), so every
# member is required; more members may be added later (additionalProperties stays open).


def _object(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": list(properties)}
    if description:
        schema["description"] = description
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _string(description: str | None = None, **constraints: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", **constraints}
    if description:
        schema["description"] = description
    return schema


def _strings(description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    if description:
        schema["description"] = description
    return schema


def _integer(minimum: int | None = None, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _enum(values: Sequence[str]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


_TIME = _string("ISO 8601 UTC time", format="date-time")
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_DATE_OR_NULL = {"type": ["string", "null"], "format": "date"}
_STRING_OR_NULL = {"type": ["string", "null"]}
_VERSION = {"type": "integer", "minimum": 1, "description": "Optimistic-locking version of the record"}
_ANY: dict[str, Any] = {}

# The tiers of functions/routes/logic/catalog.py (TIERS); the tests keep the two in step.
TIERS = ("free", "basic", "professional", "enterprise")

_RATE_LIMITS = _object(
    {"per_minute": _integer(1), "per_hour": _integer(1), "per_day": _integer(1)}, "Requests allowed per period"
)

CLIENT_SCHEMA = _object(
    {
        "client_id": _string(minLength=1),
        "name": _string(),
        "description": _string(),
        "client_type": _string(),
        "organization": _string(),
        "contact_email": _string(format="email"),
        "allowed_scopes": _strings(),
        "allowed_endpoints": _strings("Path patterns the client may call; empty: every endpoint"),
        "ip_allowlist": _strings("CIDRs the client may call from; empty: any address"),
        "tier": _enum(TIERS),
        "rate_limits": {**_RATE_LIMITS, "description": "The effective limits (the tier's unless overridden)"},
        "rate_limits_overridden": {"type": "boolean"},
        "monthly_quota": {"type": ["integer", "null"], "minimum": 1, "description": "null: no monthly cap"},
        "expires_at": _TIME_OR_NULL,
        "status": _enum(("active", "suspended")),
        "created_at": _TIME,
        "updated_at": _TIME,
        "version": _VERSION,
        "grace_until": {**_TIME_OR_NULL, "description": "Until when the secret a rotation replaced still works"},
    },
    "The API client (no secret or secret hash)",
)

KEY_SCHEMA = _object(
    {
        "key_id": _string(minLength=1),
        "client_id": _string(minLength=1),
        "name": _string(),
        "scopes": _strings(),
        "tier": _enum(TIERS),
        "status": _enum(("active", "revoked")),
        "prefix": _string("The key's first characters, to recognise it"),
        "last_four": _string("The key's last four characters", minLength=4, maxLength=4),
        "created_at": _TIME,
        "updated_at": _TIME,
        "expires_at": _TIME_OR_NULL,
        "grace_until": {**_TIME_OR_NULL, "description": "A rotated key works until then"},
        "rotated_to": {**_STRING_OR_NULL, "description": "The key id that replaced this key"},
        "revoked_at": _TIME_OR_NULL,
        "rate_limits": _nullable(_RATE_LIMITS),
        "version": _VERSION,
        "client_status": _enum(("active", "suspended", "deleted")),
        "client_expires_at": _TIME_OR_NULL,
        "ip_allowlist": _strings(),
        "client_allowed_scopes": {"type": ["array", "null"], "items": {"type": "string"}},
        "lineage_id": {**_STRING_OR_NULL, "description": "The first key id of this key's rotations"},
        "last_used_at": _TIME_OR_NULL,
    },
    "The API key (no secret or hash: its prefix and last four characters only)",
)

CERTIFICATE_SCHEMA = _object(
    {
        "fingerprint": _string("SHA-256 of the DER encoding, lowercase hex", pattern="^[0-9a-f]{64}$"),
        "client_id": _string(minLength=1),
        "subject": _string("RFC 4514"),
        "issuer": _string("RFC 4514"),
        "serial_number": _string("Lowercase hex", pattern="^[0-9a-f]+$"),
        "not_before": _TIME,
        "not_after": _TIME,
        "status": _enum(("active", "revoked")),
        "created_at": _TIME,
        "revoked_at": _TIME_OR_NULL,
    },
    "The client certificate (mTLS)",
)

_RETRY = _object(
    {
        "max_attempts": _integer(1, 5),
        "initial_delay": {"type": "number"},
        "max_delay": {"type": "number"},
        "multiplier": {"type": "number"},
    }
)

_CIRCUIT_BREAKER = _object({"failure_threshold": _integer(1, 100), "reset_timeout_seconds": {"type": "number"}})

GATEWAY_SCHEMA = _object(
    {
        "gateway_id": _string(minLength=1),
        "name": _string(minLength=1, maxLength=255),
        "description": _string(maxLength=2000),
        "base_path": _string("Served under /gw<base_path>; '' for the root"),
        "default_timeout_seconds": {"type": "number"},
        "retry": _RETRY,
        "circuit_breaker": _CIRCUIT_BREAKER,
        "cors": _nullable(
            _object(
                {
                    "allow_origins": _strings(),
                    "allow_headers": _strings(),
                    "expose_headers": _strings(),
                    "max_age_seconds": _integer(0, 86_400),
                }
            )
        ),
        "status": _enum(("active", "inactive")),
        "created_at": _TIME,
        "updated_at": _TIME,
        "version": _VERSION,
        "deployment": _object(
            {
                "latest_version": _integer(0),
                "active_version": {"type": ["integer", "null"], "minimum": 1},
                "canary_version": {"type": ["integer", "null"], "minimum": 1},
                "canary_percent": _integer(0, 100),
            },
            "Which published versions serve traffic",
        ),
    },
    "The gateway's settings and deployment state",
)

_LIMITS = _object(
    {
        "per_minute": {"type": ["integer", "null"], "minimum": 1},
        "per_hour": {"type": ["integer", "null"], "minimum": 1},
        "per_day": {"type": ["integer", "null"], "minimum": 1},
        "burst": {"type": ["integer", "null"], "minimum": 1},
    }
)
_RULES = {"type": ["object", "null"], "description": "Header or query rules (literal credentials masked)"}

ROUTE_SCHEMA = _object(
    {
        "route_id": _string(minLength=1),
        "gateway_id": _string(minLength=1),
        "name": _string(minLength=1),
        "description": _string(),
        "method": _enum(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")),
        "path": _string(minLength=1),
        "upstream_path": _STRING_OR_NULL,
        "targets": {
            "type": "array",
            "minItems": 1,
            "items": _object(
                {"url": _string("Credentials in the URL are masked"), "weight": _integer(1, 1000)},
            ),
        },
        "load_balancing": _enum(("round_robin", "weighted", "least_outstanding", "consistent_hash")),
        "auth_required": {"type": "boolean"},
        "required_scopes": _strings(),
        "rate_limits": _nullable({**_LIMITS, "description": "Per client on this route"}),
        "total_rate_limits": _nullable({**_LIMITS, "description": "All clients together on this route"}),
        "request_transform": _nullable(_object({"headers": _RULES, "query": _RULES, "body": _ANY})),
        "response_transform": _nullable(_object({"headers": _RULES, "body": _ANY})),
        "protocol": _enum(("rest", "soap", "graphql")),
        "soap": _nullable(
            _object(
                {
                    "version": _enum(("1.1", "1.2")),
                    "namespace": _string(),
                    "operation": _string(),
                    "action": _STRING_OR_NULL,
                }
            )
        ),
        "graphql": _nullable(_object({"query": _string(), "operation_name": _STRING_OR_NULL, "variables": _ANY})),
        "timeout_seconds": {"type": ["number", "null"]},
        "retry": _nullable(_RETRY),
        "cache_ttl_seconds": _integer(0, 86_400),
        "cache_key_template": _STRING_OR_NULL,
        "health_check": _nullable(_object({"path": _string(), "expect_status": _integer(200, 399)})),
        "active": {"type": "boolean"},
        "deprecated": {"type": "boolean"},
        "deprecation_date": _DATE_OR_NULL,
        "sunset_date": _DATE_OR_NULL,
        "version": _VERSION,
        "created_at": _TIME,
        "updated_at": _TIME,
        "created_by": _string("The client id that created the route"),
    },
    "The route as readers see it (credentials masked)",
)

_ACTOR = _object(
    {
        "client_id": _string("Who made the change (a client id, or `cli:<user>` from a terminal)"),
        "request_id": _string("The request (or operator command) that made it"),
    }
)


def _audited(resource: str, state: dict[str, Any]) -> dict[str, Any]:
    # A copy per type: the types of one resource must not share (mutable) schema objects.
    return _object({resource: copy.deepcopy(state), "actor": copy.deepcopy(_ACTOR)})


# Why an endpoint was disabled by the delivery service.
ENDPOINT_DISABLED_REASONS = ("gone", "failing", "manual")

_ENDPOINT_ID = _string("The webhook endpoint", minLength=1)

_CATALOG: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("client.created", "An API client was registered.", _audited("client", CLIENT_SCHEMA)),
    ("client.updated", "An API client's settings changed.", _audited("client", CLIENT_SCHEMA)),
    (
        "client.suspended",
        "An API client was suspended: its credentials are refused.",
        _audited("client", CLIENT_SCHEMA),
    ),
    ("client.reactivated", "A suspended API client was reactivated.", _audited("client", CLIENT_SCHEMA)),
    ("client.deleted", "An API client was deleted (its state before the deletion).", _audited("client", CLIENT_SCHEMA)),
    (
        "key.created",
        "An API key was created (by the API, an admin terminal, or a rotation).",
        _audited("key", KEY_SCHEMA),
    ),
    (
        "key.rotated",
        "An API key was rotated: `rotated_to` names its successor, `grace_until` ends the old key.",
        _audited("key", KEY_SCHEMA),
    ),
    ("key.revoked", "An API key was revoked.", _audited("key", KEY_SCHEMA)),
    (
        "certificate.registered",
        "A client certificate was registered for mTLS.",
        _audited("certificate", CERTIFICATE_SCHEMA),
    ),
    ("certificate.revoked", "A client certificate was revoked.", _audited("certificate", CERTIFICATE_SCHEMA)),
    (
        "gateway.deployed",
        "A gateway version was published (`deployment` says what serves traffic).",
        _audited("gateway", GATEWAY_SCHEMA),
    ),
    (
        "gateway.rolled_back",
        "A gateway went back to its previous published version.",
        _audited("gateway", GATEWAY_SCHEMA),
    ),
    ("route.created", "A route was added to a gateway's draft.", _audited("route", ROUTE_SCHEMA)),
    ("route.updated", "A route of a gateway's draft changed.", _audited("route", ROUTE_SCHEMA)),
    (
        "route.deleted",
        "A route was removed from a gateway's draft (its state before the deletion).",
        _audited("route", ROUTE_SCHEMA),
    ),
    (
        "endpoint.disabled",
        "A webhook endpoint was disabled: it answered 410 Gone, or its deliveries kept failing.",
        _object(
            {
                "endpoint_id": _ENDPOINT_ID,
                "url": _string(format="uri"),
                "reason": _enum(ENDPOINT_DISABLED_REASONS),
                "disabled_at": _TIME,
            }
        ),
    ),
    (
        "endpoint.enabled",
        "A disabled webhook endpoint was enabled again.",
        _object({"endpoint_id": _ENDPOINT_ID, "url": _string(format="uri")}),
    ),
    (
        "message.attempt.exhausted",
        "A delivery failed on every attempt and will not be retried (it can be resent).",
        _object(
            {
                "endpoint_id": _ENDPOINT_ID,
                "delivery_id": _string(pattern="^dlv_[0-9a-f]{26}$"),
                "event_id": _string(pattern="^msg_[0-9A-Za-z]{26}$"),
                "event_type": _string(minLength=1),
                "attempts": _integer(1),
                "last_status": {
                    "type": ["integer", "null"],
                    "minimum": 100,
                    "maximum": 599,
                    "description": "The last attempt's HTTP status; null: no answer",
                },
                "last_error": {**_STRING_OR_NULL, "description": "Why the last attempt failed, when it got no answer"},
            }
        ),
    ),
)

EVENT_TYPES: dict[str, EventType] = {
    name: EventType(name=name, description=description, schema=schema) for name, description, schema in _CATALOG
}

# Audit action (functions/routes/dal/*_store.py, logic/*.py, infra/admin/keys.py) -> event type.
# Actions without a type publish nothing: key.update, client.secret.rotate, gateway.create/update/
# delete/activate/canary/promote, issuer.*, secret.*, ip_denylist.update.
AUDIT_EVENTS: dict[str, str] = {
    "client.register": "client.created",
    "client.update": "client.updated",
    "client.suspend": "client.suspended",
    "client.reactivate": "client.reactivated",
    "client.delete": "client.deleted",
    "key.create": "key.created",
    # The first admin key, made from a terminal: a key all the same, and the one most worth knowing of.
    "key.bootstrap_create": "key.created",
    "key.rotate": "key.rotated",
    "key.revoke": "key.revoked",
    "certificate.register": "certificate.registered",
    "certificate.revoke": "certificate.revoked",
    "gateway.deploy": "gateway.deployed",
    "gateway.rollback": "gateway.rolled_back",
    "route.create": "route.created",
    "route.update": "route.updated",
    "route.delete": "route.deleted",
}

# Families that have types, and those reserved for later issues: types under a reserved family are
# accepted in subscriptions before the catalog lists them.
RESERVED_FAMILIES = ("payment", "integration", "price")
FAMILIES = ("client", "key", "certificate", "gateway", "route", "endpoint", "message", *RESERVED_FAMILIES)

MAX_PATTERN_LENGTH = 100
_SEGMENT = r"[a-z][a-z0-9_]*"
_TYPE_NAME = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})+")
_PREFIX = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")


def event_data_for_audit(
    action: str,
    actor_client_id: str,
    request_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> tuple[str, dict[str, Any]] | None:
    """The event (type, data) an audited change publishes, or None when its action publishes none.
    `before` and `after` are the resource's public states (None before a create, after a delete)."""
    event_type = AUDIT_EVENTS.get(action)
    if event_type is None:
        return None
    state = after if after is not None else before
    if state is None:
        raise ValueError(f"The audited change {action!r} has no state to publish.")
    resource = event_type.split(".", 1)[0]
    return event_type, {resource: state, "actor": {"client_id": actor_client_id, "request_id": request_id}}


def matches_type(patterns: Sequence[str], event_type: str) -> bool:
    """Whether a subscription to `patterns` receives `event_type`: `*` takes every type,
    `<prefix>.*` every type below the prefix (at any depth), anything else the type it names."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def _family_list() -> str:
    return ", ".join(f"{family}.*" for family in FAMILIES)


def validate_subscription(pattern: str) -> str | None:
    """Why `pattern` cannot be subscribed to, or None when it can."""
    if pattern == "*":
        return None
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"An event type pattern has at most {MAX_PATTERN_LENGTH} characters."
    wildcard = pattern.endswith(".*")
    name = pattern[:-2] if wildcard else pattern
    if not (_PREFIX if wildcard else _TYPE_NAME).fullmatch(name):
        return (
            f"{pattern!r} is not an event type pattern: use '*', a type such as 'key.rotated', "
            "or a family such as 'key.*' (lowercase names separated by dots)."
        )
    family = name.split(".", 1)[0]
    if family not in FAMILIES:
        return f"Unknown event family {family!r}; use '*' or one of {_family_list()}."
    if family in RESERVED_FAMILIES:
        return None
    if wildcard:
        if any(known.startswith(name + ".") for known in EVENT_TYPES):
            return None
        return f"No event type starts with {name + '.'!r}; use '*' or one of {_family_list()}."
    if name in EVENT_TYPES:
        return None
    of_family = ", ".join(known for known in EVENT_TYPES if known.startswith(family + "."))
    return f"Unknown event type {name!r}; the {family} types are {of_family} ({family}.* takes them all)."
