"""What operators do with deliveries: test an endpoint, replay one delivery, recover every
failure since a time, move the DLQ back, re-enable an endpoint (publishing `endpoint.enabled`)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from functions.webhooks.logic import endpoints as endpoint_logic
from functions.webhooks.logic.body import webhook_body
from functions.webhooks.logic.delivery import DeliveryEngine
from functions.webhooks.logic.endpoints import Owner
from functions.webhooks.logic.fanout import delivery_id as derived_delivery_id
from functions.webhooks.logic.model import Attempt, Delivery, Endpoint
from functions.webhooks.logic.ports import DeliveryQueue
from gateway_core.audit import Actor
from gateway_core.clock import iso, parse_iso
from gateway_core.errors import Conflict, NotFound, ValidationFailed
from gateway_core.event_catalog import EVENT_TYPES
from gateway_core.events import new_event_id

TEST_TIMEOUT_S = 20
DELIVERY_ID = re.compile(r"dlv_[0-9a-f]{26}")
# A test event's data is at most this large (it is one webhook body).
MAX_TEST_DATA_BYTES = 64 * 1024
# Deliveries one recover call reopens at most (call again with a later `since` for more).
MAX_RECOVER = 1000
# Messages one redrive call moves at most (within the API's 29 s; call again for more).
MAX_REDRIVE = 200


class Deliveries(Protocol):
    def get(self, delivery_id: str) -> Delivery | None: ...
    def create(self, delivery: Delivery, endpoint: Endpoint) -> str: ...
    def reopen(self, delivery: Delivery, max_attempts: int, trigger: str, now_iso: str) -> bool: ...
    def unsettled_failures_since(self, endpoint_id: str, since: str) -> list[Delivery]: ...


def iso_bound(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return iso(parse_iso(value))
    except ValueError as error:
        raise ValidationFailed(f"{name} is an ISO 8601 time.", code="invalid_time") from error


def enable(
    store: endpoint_logic.EndpointStore,
    endpoint_id: str,
    owner: Owner,
    actor: Actor,
    now: datetime,
) -> Endpoint:
    """Re-enables; `endpoint.enabled` is written with the change (endpoints.enable)."""
    endpoint, _ = endpoint_logic.enable(store, endpoint_id, owner, actor, now)
    return endpoint


def test_send(
    engine: DeliveryEngine,
    deliveries: Deliveries,
    endpoint: Endpoint,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
) -> tuple[Delivery, Attempt | None]:
    """One attempt now, recorded like any other (trigger `test`, never retried)."""
    if event_type not in EVENT_TYPES:
        raise ValidationFailed(
            f"Unknown event type {event_type!r}: see GET /api/v1/events/types.", code="unknown_event_type"
        )
    if len(json.dumps(data)) > MAX_TEST_DATA_BYTES:
        raise ValidationFailed("testData is at most 64 KB.", code="test_data_too_large")
    event_id = new_event_id(now)
    delivery = Delivery(
        delivery_id=derived_delivery_id(event_id, endpoint.endpoint_id),
        endpoint_id=endpoint.endpoint_id,
        client_id=endpoint.client_id,
        event_id=event_id,
        event_type=event_type,
        payload=webhook_body(event_type, iso(now), data),
        status="pending",
        created_at=iso(now),
        max_attempts=1,
        trigger="test",
    )
    # Out of any order: a test never waits for (nor holds up) an ordered endpoint's deliveries.
    deliveries.create(delivery, replace(endpoint, ordering="none"))
    # Within the API's own 29 s, whatever the endpoint's timeout: the caller waits for this answer.
    effects = engine.attempt(delivery, replace(endpoint, timeout_s=min(endpoint.timeout_s, TEST_TIMEOUT_S)))
    return deliveries.get(delivery.delivery_id) or delivery, effects.attempt


def delivery_of(
    store: endpoint_logic.EndpointStore, deliveries: Deliveries, endpoint_id: str, delivery_id: str, owner: Owner
) -> Delivery:
    endpoint_logic.get(store, endpoint_id, owner)
    delivery = deliveries.get(delivery_id) if DELIVERY_ID.fullmatch(delivery_id) else None
    if delivery is None or delivery.endpoint_id != endpoint_id:
        raise NotFound(f"No delivery {delivery_id} for endpoint {endpoint_id}.", code="delivery_not_found")
    return delivery


def _reopen(
    endpoint: Endpoint, deliveries: Deliveries, queue: DeliveryQueue, delivery: Delivery, trigger: str, now: datetime
) -> bool:
    budget = delivery.attempts + 1 + endpoint.max_retries
    # The message first, due a second later: a reopened delivery without its message would wait
    # forever, while a message whose reopen then fails finds the delivery as it was and does nothing.
    queue.schedule(delivery.delivery_id, delivery.attempts, now.timestamp() + 1.0)
    return deliveries.reopen(delivery, budget, trigger, iso(now))


def replay(
    store: endpoint_logic.EndpointStore,
    deliveries: Deliveries,
    queue: DeliveryQueue,
    endpoint_id: str,
    delivery_id: str,
    owner: Owner,
    now: datetime,
) -> Delivery:
    endpoint = endpoint_logic.get(store, endpoint_id, owner)
    delivery = delivery_of(store, deliveries, endpoint_id, delivery_id, owner)
    if delivery.lease_until > now.timestamp():
        raise Conflict("An attempt of this delivery is in progress; replay it when it has settled.", code="in_progress")
    if not _reopen(endpoint, deliveries, queue, delivery, "replay", now):
        raise Conflict("The delivery changed meanwhile; read it again and retry.", code="concurrent_change")
    return deliveries.get(delivery_id) or delivery


def recover(
    store: endpoint_logic.EndpointStore,
    deliveries: Deliveries,
    queue: DeliveryQueue,
    endpoint_id: str,
    since: datetime,
    owner: Owner,
    now: datetime,
) -> list[str]:
    endpoint = endpoint_logic.get(store, endpoint_id, owner)
    reopened = []
    for delivery in deliveries.unsettled_failures_since(endpoint_id, iso(since))[:MAX_RECOVER]:
        if _reopen(endpoint, deliveries, queue, delivery, "recover", now):
            reopened.append(delivery.delivery_id)
    return reopened


def redrive(
    sqs: Any, store: endpoint_logic.EndpointStore, deliveries: Any, queue: Any, now: datetime
) -> tuple[int, int]:
    """Moves the DLQ's messages back (SQS's StartMessageMoveTask is not used: moto lacks it, and
    an abandoned delivery needs its record reopened too, not only its message moved). A message
    the worker gave up on after the queue's receive limit is sent back as it is; an abandoned
    delivery is reopened with a fresh budget; a message of a settled or deleted delivery or
    endpoint is dropped. Each message leaves the DLQ only after that."""
    moved = reopened = 0
    while moved < MAX_REDRIVE:
        # A second of long polling: short polls sample a few servers and may answer empty early.
        page = sqs.receive_message(QueueUrl=queue.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = page.get("Messages", [])
        if not messages:
            break
        for message in messages:
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = None
            delivery = deliveries.get(str(body.get("delivery_id", ""))) if isinstance(body, dict) else None
            endpoint = store.get(delivery.endpoint_id) if delivery is not None else None
            if delivery is not None and endpoint is not None:
                if delivery.status == "abandoned":
                    if _reopen(endpoint, deliveries, queue, delivery, "redrive", now):
                        reopened += 1
                elif delivery.status in ("pending", "retrying"):
                    sqs.send_message(QueueUrl=queue.queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=queue.dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved, reopened
