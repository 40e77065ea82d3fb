"""Fan-out: one published event becomes one delivery per matching endpoint.

A delivery's id is derived from the event and the endpoint, and its record is created with a
condition that it does not exist: the stream may hand the same event over again (a retried batch,
a worker that timed out mid-way), and each pass creates only what is missing and queues only what
has never been attempted. An ordered endpoint's deliveries get gapless sequence numbers in the
same write that creates them (see DeliveryRecords.create).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from functions.webhooks.logic import filters
from functions.webhooks.logic.body import webhook_body
from functions.webhooks.logic.model import Delivery, Endpoint
from gateway_core.event_catalog import matches_type

Created = Literal["created", "exists_unsent", "exists"]


@dataclass(frozen=True)
class PublishedEvent:
    event_id: str
    event_type: str
    occurred_at: str
    data: dict[str, Any]
    # The client whose resource the event is about; None for the platform's own (gateways,
    # routes, endpoints of admins).
    client_id: str | None = None
    # A client's own test event: its endpoints only (gateway_core.events).
    private: bool = False


class EndpointSource(Protocol):
    def active(self) -> list[Endpoint]: ...


class DeliveryRecords(Protocol):
    def create(self, delivery: Delivery, endpoint: Endpoint) -> Created: ...


class NewDeliveries(Protocol):
    def enqueue(self, delivery_ids: list[str]) -> None: ...


def delivery_id(event_id: str, endpoint_id: str) -> str:
    digest = hashlib.sha256(f"{event_id}|{endpoint_id}".encode()).hexdigest()
    return f"dlv_{digest[:26]}"


def visible(endpoint: Endpoint, event: PublishedEvent) -> bool:
    """A client's endpoint hears only about that client's resources; an endpoint an admin
    created (audience `all`) hears every event but a client's private test events."""
    own = event.client_id is not None and event.client_id == endpoint.client_id
    return own or (endpoint.audience == "all" and not event.private)


# Events about an endpoint's own deliveries, which that endpoint never receives: a dead endpoint
# subscribed to `*` would otherwise get a new delivery for each of its own abandonments.
ABOUT_ENDPOINTS = frozenset({"message.attempt.exhausted", "endpoint.disabled", "endpoint.enabled"})


def _about_itself(endpoint: Endpoint, event: PublishedEvent) -> bool:
    return event.event_type in ABOUT_ENDPOINTS and event.data.get("endpoint_id") == endpoint.endpoint_id


def matching(endpoints: list[Endpoint], event: PublishedEvent, body: dict[str, Any]) -> list[Endpoint]:
    return [
        e
        for e in endpoints
        if e.active
        and visible(e, event)
        and not _about_itself(e, event)
        and matches_type(e.event_types, event.event_type)
        and filters.evaluate(e.filters, body)
    ]


def fan_out(
    event: PublishedEvent,
    *,
    endpoints: EndpointSource,
    records: DeliveryRecords,
    queue: NewDeliveries,
    now: str,
) -> list[str]:
    """Records and queues the event's deliveries; returns the ids queued."""
    payload = webhook_body(event.event_type, event.occurred_at, event.data)
    body = json.loads(payload)
    queued: list[str] = []
    for endpoint in matching(endpoints.active(), event, body):
        delivery = Delivery(
            delivery_id=delivery_id(event.event_id, endpoint.endpoint_id),
            endpoint_id=endpoint.endpoint_id,
            client_id=endpoint.client_id,
            event_id=event.event_id,
            event_type=event.event_type,
            payload=payload,
            status="pending",
            created_at=now,
            max_attempts=1 + endpoint.max_retries,
        )
        if records.create(delivery, endpoint) != "exists":
            queued.append(delivery.delivery_id)
    if queued:
        queue.enqueue(queued)
    return queued


class CachedEndpoints:
    """The active endpoints, read once per batch of events (`invalidate` at each invocation): a
    burst of events costs one listing, and an endpoint created before an event was published is
    in the listing made after it (GSI2 is eventually consistent: within about a second of the
    endpoint's creation it may still be missing). The worker reads the endpoint itself before
    each attempt, so a disabled or deleted one is never called."""

    def __init__(self, load: Any) -> None:
        self._load = load
        self._cached: list[Endpoint] | None = None

    def invalidate(self) -> None:
        self._cached = None

    def active(self) -> list[Endpoint]:
        if self._cached is None:
            self._cached = [e for e in self._load() if e.active]
        return self._cached
