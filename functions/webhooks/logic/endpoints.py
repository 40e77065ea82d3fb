"""Webhook endpoints as clients and admins manage them: who may see and change which, the
checks on what they ask for, and keys that are shown once.

A client manages its own endpoints (`webhooks:read`/`webhooks:write`); an admin sees and changes
every endpoint and may create one for any client. An admin's endpoint hears every event
(audience `all`); a client's hears only events about its own resources. The URL passes the SSRF
guard's policy here and again at every connection (http_sender.py).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from functions.webhooks.logic import signing
from functions.webhooks.logic.model import Endpoint, SigningKey
from functions.webhooks.logic.ports import KeyVault
from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.errors import Forbidden, NotFound, ValidationFailed
from gateway_core.event_catalog import validate_subscription
from gateway_core.events import event_item
from gateway_core.preconditions import Expected, check, no_lost_update
from gateway_core.ssrf import SsrfPolicy, validate_upstream_url

ADMIN = "admin"
# Our headers; an endpoint's own headers may not set them (nor anything else `webhook-*`).
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "keep-alive",
        "expect",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
DEFAULT_ROTATION_GRACE_S = 24 * 3600
ENDPOINT_ID = re.compile(r"ep_[0-9a-f]{24}")


@dataclass(frozen=True)
class Owner:
    """Who is asking: the client and whether it is an admin."""

    client_id: str
    admin: bool


class EndpointStore(Protocol):
    def create(self, endpoint: Endpoint, actor: Actor) -> None: ...
    def get(self, endpoint_id: str) -> Endpoint | None: ...
    def replace(
        self,
        before: Endpoint,
        after: Endpoint,
        actor: Actor,
        action: str = ...,
        events: list[dict[str, Any]] | None = ...,
    ) -> None: ...
    def delete(self, endpoint: Endpoint, actor: Actor) -> None: ...


def new_endpoint_id() -> str:
    return "ep_" + secrets.token_hex(12)


def check_url(url: str, policy: SsrfPolicy) -> str:
    """The URL as stored, or a 422: http(s), no credentials or fragment, a host the SSRF policy
    permits (a query string is allowed: receivers often carry a token there)."""
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ValidationFailed(f"not a URL: {error}", code="invalid_url") from error
    if parts.fragment:
        raise ValidationFailed("A webhook URL has no fragment.", code="invalid_url")
    try:
        validate_upstream_url(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), policy)
    except ValueError as error:
        raise ValidationFailed(f"The webhook URL is refused: {error}.", code="invalid_url") from error
    return url


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValidationFailed(f"{name!r} is not a header name.", code="invalid_header")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("webhook-"):
            raise ValidationFailed(f"The header {name} is set by the gateway; choose another.", code="reserved_header")
        # Visible ASCII, spaces and tabs (RFC 9110 field values, without obs-text): what every
        # HTTP stack sends as it is.
        if not all(c == "\t" or " " <= c <= "~" for c in value):
            raise ValidationFailed(
                f"The value of {name} holds a character a header cannot carry (visible ASCII only).",
                code="invalid_header",
            )
    lowered_names = [n.lower() for n in headers]
    if len(set(lowered_names)) != len(lowered_names):
        raise ValidationFailed("A header is named twice.", code="invalid_header")
    return dict(headers)


def check_event_types(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        problem = validate_subscription(pattern)
        if problem:
            raise ValidationFailed(problem, code="unknown_event_type")
    return list(dict.fromkeys(patterns))


def new_key(vault: KeyVault, endpoint_id: str, kind: str, now: datetime) -> tuple[SigningKey, str]:
    """A key and what the caller is shown once: the `whsec_` secret (v1) or the `whpk_` public
    key (v1a, whose private key no one is shown)."""
    if kind == "v1":
        secret = signing.new_symmetric_secret()
        key = SigningKey(
            key_id="key_" + secrets.token_hex(6), ciphertext=vault.encrypt(endpoint_id, secret), created_at=iso(now)
        )
        return key, secret
    private, public = signing.new_asymmetric_keypair()
    key = SigningKey(
        key_id="key_" + secrets.token_hex(6),
        ciphertext=vault.encrypt(endpoint_id, private),
        created_at=iso(now),
        public_key=public,
    )
    return key, public


def create(
    store: EndpointStore,
    vault: KeyVault,
    spec: dict[str, Any],
    owner: Owner,
    actor: Actor,
    now: datetime,
    policy: SsrfPolicy,
) -> tuple[Endpoint, str]:
    client_id = spec.pop("client_id", None) or owner.client_id
    if client_id != owner.client_id and not owner.admin:
        raise Forbidden("Only an admin creates endpoints for another client.", code="not_your_client")
    endpoint_id = new_endpoint_id()
    key, shown = new_key(vault, endpoint_id, spec.get("signing", "v1"), now)
    endpoint = Endpoint(
        endpoint_id=endpoint_id,
        client_id=client_id,
        name=spec["name"],
        description=spec.get("description", ""),
        url=check_url(spec["url"], policy),
        method=spec.get("method", "POST"),
        event_types=check_event_types(spec["event_types"]),
        filters=list(spec.get("filters", [])),
        headers=check_headers(spec.get("headers", {})),
        timeout_s=spec.get("timeout_s", 15),
        max_retries=spec.get("max_retries", 7),
        rate_limit_per_s=spec.get("rate_limit_per_s"),
        ordering=spec.get("ordering", "none"),
        active=spec.get("active", True),
        audience="all" if owner.admin and client_id == owner.client_id else "own",
        signing=spec.get("signing", "v1"),
        keys=[key],
        created_at=iso(now),
        updated_at=iso(now),
    )
    store.create(endpoint, actor)
    return endpoint, shown


def get(store: EndpointStore, endpoint_id: str, owner: Owner) -> Endpoint:
    """The endpoint if the caller may see it; 404 otherwise (another client's endpoint is not
    confirmed to exist)."""
    # An id we never issue is not read at all (DynamoDB refuses keys over 2 KB with an error).
    endpoint = store.get(endpoint_id) if ENDPOINT_ID.fullmatch(endpoint_id) else None
    if endpoint is None or (not owner.admin and endpoint.client_id != owner.client_id):
        raise NotFound(f"No webhook endpoint {endpoint_id}.", code="webhook_not_found")
    return endpoint


def update(
    store: EndpointStore,
    endpoint_id: str,
    changes: dict[str, Any],
    owner: Owner,
    actor: Actor,
    now: datetime,
    expected: Expected,
    policy: SsrfPolicy,
) -> Endpoint:
    before = get(store, endpoint_id, owner)
    check(f"Webhook endpoint {endpoint_id}", before.version, expected)
    if "url" in changes:
        changes["url"] = check_url(changes["url"], policy)
    if "headers" in changes:
        changes["headers"] = check_headers(changes["headers"])
    if "event_types" in changes:
        changes["event_types"] = check_event_types(changes["event_types"])
    action, events = "webhook.update", []
    if changes.get("active") is True and not before.active:
        action = "webhook.enable"
        changes.update(_healthy())
    elif changes.get("active") is False and before.active:
        action = "webhook.disable"
        changes.update(disabled_reason="manual", disabled_at=iso(now))
    after = replace(before, **changes, updated_at=iso(now), version=before.version + 1)
    if action != "webhook.update":
        events.append(_announcement(after))
    with no_lost_update(f"Webhook endpoint {endpoint_id}", expected):
        store.replace(before, after, actor, action, events)
    return after


def _announcement(endpoint: Endpoint) -> dict[str, Any]:
    """`endpoint.enabled` or `endpoint.disabled` (by its owner: reason `manual`), written with the
    change."""
    if endpoint.active:
        return event_item(
            "endpoint.enabled", {"endpoint_id": endpoint.endpoint_id, "url": endpoint.url}, client_id=endpoint.client_id
        )
    data = {
        "endpoint_id": endpoint.endpoint_id,
        "url": endpoint.url,
        "reason": endpoint.disabled_reason,
        "disabled_at": endpoint.disabled_at,
    }
    return event_item("endpoint.disabled", data, client_id=endpoint.client_id)


def _healthy() -> dict[str, Any]:
    return {
        "active": True,
        "disabled_reason": None,
        "disabled_at": None,
        "consecutive_failures": 0,
        "failing_since": None,
        "breaker_open_until": 0.0,
    }


def enable(store: EndpointStore, endpoint_id: str, owner: Owner, actor: Actor, now: datetime) -> tuple[Endpoint, bool]:
    """Re-enables a disabled endpoint (failure count and breaker reset); (endpoint, changed)."""
    before = get(store, endpoint_id, owner)
    if before.active:
        return before, False
    after = replace(before, **_healthy(), updated_at=iso(now), version=before.version + 1)
    with no_lost_update(f"Webhook endpoint {endpoint_id}", None):
        store.replace(before, after, actor, "webhook.enable", [_announcement(after)])
    return after, True


def delete(store: EndpointStore, endpoint_id: str, owner: Owner, actor: Actor, expected: int | None) -> None:
    endpoint = get(store, endpoint_id, owner)
    if expected is not None:
        check(f"Webhook endpoint {endpoint_id}", endpoint.version, expected)
    with no_lost_update(f"Webhook endpoint {endpoint_id}", expected):
        store.delete(endpoint, actor)


def rotate(
    store: EndpointStore,
    vault: KeyVault,
    endpoint_id: str,
    owner: Owner,
    actor: Actor,
    now: datetime,
    grace_s: int,
) -> tuple[Endpoint, str]:
    """A new current key; the previous one keeps signing beside it for `grace_s` seconds (both
    signatures in one header), keys already past their grace are dropped."""
    before = get(store, endpoint_id, owner)
    key, shown = new_key(vault, endpoint_id, before.signing, now)
    retires = iso(now + timedelta(seconds=grace_s))
    moment = now.timestamp()
    kept = [
        replace(k, retires_at=k.retires_at or retires)
        for k in before.keys
        if grace_s > 0 and (k.retires_at is None or _epoch(k.retires_at) > moment)
    ]
    after = replace(before, keys=[key, *kept], updated_at=iso(now), version=before.version + 1)
    with no_lost_update(f"Webhook endpoint {endpoint_id}", None):
        store.replace(before, after, actor, "webhook.rotate_secret")
    return after, shown


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
