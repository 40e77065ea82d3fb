"""What the webhook system keeps: endpoints (with their signing keys), deliveries (one per event
and endpoint) and attempts (one per HTTP request made)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Ordering = Literal["none", "ordered"]
SigningKind = Literal["v1", "v1a"]
DeliveryStatus = Literal["pending", "retrying", "delivered", "failed", "abandoned"]
# Settled deliveries are never attempted again by the worker (only a replay reopens them).
SETTLED: frozenset[str] = frozenset({"delivered", "failed", "abandoned"})


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    # KMS ciphertext of the `whsec_` secret (v1) or the `whsk_` private key (v1a).
    ciphertext: bytes
    created_at: str
    public_key: str | None = None  # `whpk_...` for v1a
    # A rotated-out key keeps signing beside the new one until then (ISO time); None: current.
    retires_at: str | None = None


@dataclass(frozen=True)
class Endpoint:
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
    ordering: Ordering
    active: bool
    signing: SigningKind
    keys: list[SigningKey]
    created_at: str
    updated_at: str
    version: int = 1
    # "own": the owning client's events only; "all": every event (endpoints admins create).
    audience: Literal["own", "all"] = "own"
    consecutive_failures: int = 0
    failing_since: str | None = None
    disabled_reason: str | None = None
    disabled_at: str | None = None
    # Circuit breaker: no attempt before this epoch second (0: closed).
    breaker_open_until: float = 0.0
    # Ordered endpoints: deliveries get increasing sequence numbers at fan-out; the one after
    # `settled_seq` is the only one that may be attempted.
    next_seq: int = 0
    settled_seq: int = 0

    def public(self) -> dict[str, Any]:
        """The endpoint as the API shows it: no key material but the v1a public key."""
        current = next((k for k in self.keys if k.retires_at is None), None)
        previous = [k for k in self.keys if k.retires_at is not None]
        return {
            "endpoint_id": self.endpoint_id,
            "client_id": self.client_id,
            "name": self.name,
            "description": self.description,
            "url": self.url,
            "method": self.method,
            "event_types": list(self.event_types),
            "filters": list(self.filters),
            "headers": dict(self.headers),
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "rate_limit_per_s": self.rate_limit_per_s,
            "ordering": self.ordering,
            "active": self.active,
            "audience": self.audience,
            "signing": self.signing,
            "public_key": current.public_key if current else None,
            "previous_key_retires_at": max((k.retires_at or "" for k in previous), default=None),
            "consecutive_failures": self.consecutive_failures,
            "failing_since": self.failing_since,
            "disabled_reason": self.disabled_reason,
            "disabled_at": self.disabled_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    endpoint_id: str
    client_id: str
    event_id: str
    event_type: str
    # The webhook body as sent (compact JSON): the same bytes on every attempt and replay.
    payload: str
    status: DeliveryStatus
    created_at: str
    attempts: int = 0
    # How many attempts this delivery may make in all (1 + the endpoint's retries when fanned out;
    # a replay adds a fresh budget).
    max_attempts: int = 8
    next_attempt_at: str | None = None
    lease_until: float = 0.0  # epoch seconds; an attempt in progress holds the lease
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: str | None = None
    seq: int = 0  # ordered endpoints only
    trigger: str = "event"  # event | test | replay | recover | redrive
    # The attempt count when the current budget began (0; a replay's count then): the retry
    # schedule counts from it.
    retry_base: int = 0
    version: int = 1

    def public(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "delivered_at": self.delivered_at,
            "trigger": self.trigger,
        }


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    attempt: int
    started_at: str
    outcome: Literal["success", "failure"]
    latency_ms: int
    status_code: int | None = None
    error: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""  # the first 1 KB, decoded leniently
    retry_after_s: float | None = None
    next_attempt_at: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "started_at": self.started_at,
            "outcome": self.outcome,
            "status_code": self.status_code,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "response_headers": dict(self.response_headers),
            "response_body": self.response_body,
            "next_attempt_at": self.next_attempt_at,
        }
