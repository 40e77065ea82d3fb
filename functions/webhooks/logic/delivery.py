"""One delivery attempt, from a queue message to a recorded outcome.

At least once in, effects once out. Every message names the delivery and how many attempts it
had when the message was sent (`attempts`, a fencing token): a message whose count is stale was
superseded (a redelivered SQS message, a duplicate from a retried fan-out) and sends nothing. An
attempt first takes the delivery's lease with a conditional write (so two workers never send
the same attempt at once; a killed worker's lease expires and its SQS message comes back), sends,
then records the attempt and the delivery's new state in one transaction conditioned on the
lease. A delivery recorded as delivered is never sent again by the worker; a crash between the
receiver's 2xx and the record is the one case that sends twice, as with any at-least-once
sender (receivers deduplicate on `webhook-id`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from functions.webhooks.logic import schedule, signing
from functions.webhooks.logic.model import SETTLED, Attempt, Delivery, Endpoint
from functions.webhooks.logic.ports import (
    DeliveryQueue,
    DeliveryStore,
    Effects,
    EndpointStore,
    KeyDecrypter,
    Sender,
    SendFailed,
    Sent,
    Throttle,
)
from gateway_core.clock import iso
from gateway_core.events import event_item

# Headers we set on every attempt; an endpoint's custom headers never replace them.
USER_AGENT = "finance-gateway-webhooks/1"
# Beyond the endpoint's timeout, how long a lease outlives the attempt it guards (signing and
# recording take milliseconds; a worker killed mid-attempt frees the delivery this much later).
LEASE_MARGIN_S = 5.0
# An ordered endpoint's later delivery asks again after this many seconds (growing to the cap)
# while an earlier one is unsettled.
ORDER_WAIT_S = 1.0
ORDER_WAIT_MAX_S = 60.0


def _iso_at(epoch: float) -> str:
    return iso(datetime.fromtimestamp(epoch, UTC))


class DeliveryEngine:
    def __init__(
        self,
        *,
        deliveries: DeliveryStore,
        endpoints: EndpointStore,
        queue: DeliveryQueue,
        vault: KeyDecrypter,
        sender: Sender,
        throttle: Throttle | None = None,
        clock: Any = time.time,
    ) -> None:
        self.deliveries = deliveries
        self.endpoints = endpoints
        self.queue = queue
        self.vault = vault
        self.sender = sender
        self.throttle = throttle
        self.clock = clock

    # -- the queue message ------------------------------------------------------------------
    def process(self, message: dict[str, Any]) -> Effects:
        """Handles one queue message; raises only for failures of our own dependencies (the
        message is then retried by SQS)."""
        delivery_id = str(message["delivery_id"])
        attempts = int(message.get("attempts", 0))
        not_before = float(message.get("not_before") or 0)
        waits = int(message.get("waits", 0))
        now = self.clock()
        if not_before > now + 0.5:
            # SQS delays at most 15 minutes: longer waits hop from message to message.
            self.queue.schedule(delivery_id, attempts, not_before, waits)
            return Effects(outcome="not_due")
        delivery = self.deliveries.get(delivery_id)
        if delivery is None:
            return Effects(outcome="settled")
        if delivery.status in SETTLED:
            # A worker may have died between settling it and letting the next one go.
            self._advance(delivery)
            return Effects(outcome="settled")
        if attempts != delivery.attempts:
            return self._stale(delivery, now)
        due = _epoch(delivery.next_attempt_at)
        if due > now + 0.5:
            self._schedule(delivery, due)
            return Effects(outcome="not_due")
        endpoint = self.endpoints.get(delivery.endpoint_id)
        if endpoint is None:
            return self._settle(delivery, None, "failed", "the endpoint was deleted")
        if not endpoint.active:
            return self._settle(delivery, endpoint, "failed", f"the endpoint is disabled ({endpoint.disabled_reason})")
        if endpoint.breaker_open_until > now:
            # The breaker is open: no attempt is spent; the delivery waits for it to half-open.
            self.queue.schedule(delivery_id, attempts, endpoint.breaker_open_until, waits)
            return Effects(outcome="breaker_open")
        if endpoint.consecutive_failures >= schedule.BREAKER_THRESHOLD:
            # Half-open: one delivery probes the receiver; the others wait for its outcome (a
            # success closes the breaker, a failure opens it again for longer).
            probe_until = now + endpoint.timeout_s + LEASE_MARGIN_S
            if not self.endpoints.take_probe(endpoint.endpoint_id, now, probe_until):
                self.queue.schedule(delivery_id, attempts, probe_until, waits)
                return Effects(outcome="breaker_half_open")
        if endpoint.ordering == "ordered" and delivery.seq > endpoint.settled_seq + 1:
            wait = min(ORDER_WAIT_S * (waits + 1), ORDER_WAIT_MAX_S)
            self.queue.schedule(delivery_id, attempts, now + wait, waits + 1)
            return Effects(outcome="waiting_for_order")
        if endpoint.rate_limit_per_s and self.throttle is not None:
            throttled = self.throttle.admit(endpoint.endpoint_id, endpoint.rate_limit_per_s)
            if throttled is not None:
                # Over the endpoint's own rate: the attempt waits (none is spent).
                self.queue.schedule(delivery_id, attempts, now + throttled, waits)
                return Effects(outcome="rate_limited")
        return self.attempt(delivery, endpoint)

    def _stale(self, delivery: Delivery, now: float) -> Effects:
        """A message for an earlier attempt. If the message for the current one was never sent
        (a worker died between recording an attempt and queueing the next), this one sends it."""
        if delivery.lease_until <= now and self.deliveries.queued_for(delivery.delivery_id) != delivery.attempts:
            self._schedule(delivery, _epoch(delivery.next_attempt_at))
            return Effects(outcome="requeued")
        return Effects(outcome="stale")

    def _claim_refused(self, delivery: Delivery, now: float) -> Effects:
        """Another worker holds this attempt's lease (or it moved on). While the lease holds, the
        message comes back when it ends: if its holder was killed, nothing else would bring the
        delivery back (its own message may be gone, e.g. consumed by a duplicate)."""
        current = self.deliveries.get(delivery.delivery_id)
        if (
            current is not None
            and current.status not in SETTLED
            and current.attempts == delivery.attempts
            and current.lease_until > now
        ):
            self.queue.schedule(delivery.delivery_id, delivery.attempts, current.lease_until + 1.0)
            return Effects(outcome="leased")
        return Effects(outcome="stale")

    def _schedule(self, delivery: Delivery, at: float) -> None:
        self.queue.schedule(delivery.delivery_id, delivery.attempts, at)
        self.deliveries.mark_queued(delivery.delivery_id, delivery.attempts)

    # -- one attempt ------------------------------------------------------------------------
    def attempt(self, delivery: Delivery, endpoint: Endpoint) -> Effects:
        """Makes the delivery's next attempt now and records it (also the API's test send)."""
        now = self.clock()
        if not self.deliveries.claim(delivery, now, now + endpoint.timeout_s + LEASE_MARGIN_S):
            return self._claim_refused(delivery, now)
        number = delivery.attempts + 1
        body = delivery.payload.encode()
        headers = self.headers(endpoint, delivery, body, int(now))
        sent: Sent | None = None
        error: str | None = None
        try:
            sent = self.sender.send(endpoint.method, endpoint.url, headers, body, endpoint.timeout_s)
            latency = sent.latency_ms
        except SendFailed as failure:
            error, latency = str(failure)[:500], failure.latency_ms
        success = sent is not None and 200 <= sent.status < 300
        attempt = Attempt(
            delivery_id=delivery.delivery_id,
            attempt=number,
            started_at=_iso_at(now),
            outcome="success" if success else "failure",
            latency_ms=latency,
            status_code=sent.status if sent else None,
            error=error or (None if success or sent is None else f"HTTP {sent.status}"),
            response_headers=sent.headers if sent else {},
            response_body=sent.body_sample if sent else "",
        )
        if success:
            return self._delivered(delivery, endpoint, attempt, now)
        return self._failed(delivery, endpoint, attempt, now)

    def headers(self, endpoint: Endpoint, delivery: Delivery, body: bytes, timestamp: int) -> dict[str, str]:
        keys = [
            self.vault.decrypt(endpoint.endpoint_id, key.ciphertext)
            for key in sorted(endpoint.keys, key=lambda k: k.created_at, reverse=True)
            if key.retires_at is None or _epoch(key.retires_at) > timestamp
        ]
        ours = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signing.sign(delivery.event_id, timestamp, body, keys),
        }
        # Header names are case-insensitive: a custom `Webhook-Id` would be sent beside ours.
        return {**{k: v for k, v in endpoint.headers.items() if k.lower() not in ours}, **ours}

    def _delivered(self, delivery: Delivery, endpoint: Endpoint, attempt: Attempt, now: float) -> Effects:
        after = replace(
            delivery,
            status="delivered",
            attempts=attempt.attempt,
            last_status=attempt.status_code,
            last_error=None,
            delivered_at=_iso_at(now),
            next_attempt_at=None,
        )
        if not self.deliveries.record(delivery, attempt, after):
            return Effects(outcome="lost_lease", attempt=attempt)
        healthy = not (endpoint.consecutive_failures or endpoint.failing_since or endpoint.breaker_open_until)
        if delivery.trigger != "test" and not healthy:  # a test send never counts toward health
            self.endpoints.record_success(endpoint)
        self._advance(delivery)
        return Effects(outcome="delivered", attempt=attempt)

    def _failed(self, delivery: Delivery, endpoint: Endpoint, attempt: Attempt, now: float) -> Effects:
        at = _iso_at(now)
        effects = Effects(attempt=attempt)
        if delivery.trigger == "test":
            # A test send is one attempt, answered to its caller: never retried, never the
            # endpoint's health (a 410 to a test does not disable it), never the DLQ.
            after = replace(
                delivery,
                status="failed",
                attempts=attempt.attempt,
                last_status=attempt.status_code,
                last_error=attempt.error,
                next_attempt_at=None,
            )
            effects.outcome = "failed" if self.deliveries.record(delivery, attempt, after) else "lost_lease"
            return effects
        disable_reason = None
        failing_since = endpoint.failing_since or at
        if attempt.status_code == 410:
            disable_reason = "gone"  # the receiver said the endpoint no longer exists
        elif now - _epoch(failing_since) >= schedule.disable_after_s():
            disable_reason = "failing"
        events: list[dict[str, Any]] = []
        if disable_reason is not None:
            status, next_at = "failed", None
        elif attempt.attempt >= delivery.max_attempts:
            status, next_at = "abandoned", None
            events.append(
                event_item(
                    "message.attempt.exhausted",
                    {
                        "endpoint_id": endpoint.endpoint_id,
                        "delivery_id": delivery.delivery_id,
                        "event_id": delivery.event_id,
                        "event_type": delivery.event_type,
                        "attempts": attempt.attempt,
                        "last_status": attempt.status_code,
                        "last_error": attempt.error,
                    },
                    client_id=endpoint.client_id,
                )
            )
        else:
            status = "retrying"
            retry_after = (
                schedule.parse_retry_after(_header(attempt.response_headers, "retry-after"), now)
                if attempt.status_code in (429, 503)
                else None
            )
            # The schedule counts from the delivery's current budget: a replay starts it again.
            next_at = now + schedule.retry_delay(attempt.attempt - delivery.retry_base, retry_after)
            attempt = replace(attempt, retry_after_s=retry_after, next_attempt_at=_iso_at(next_at))
        after = replace(
            delivery,
            status=status,  # type: ignore[arg-type]
            attempts=attempt.attempt,
            last_status=attempt.status_code,
            last_error=attempt.error,
            next_attempt_at=_iso_at(next_at) if next_at else None,
        )
        effects.attempt = attempt
        if status == "abandoned":
            # Before the record: a DLQ message for a delivery that then lost its lease is
            # harmless (the redrive reads the delivery's state), one missing would not be.
            self.queue.dead_letter(after)
        # The exhausted event is written with the attempt, so it exists exactly when it happened.
        if not self.deliveries.record(delivery, attempt, after, events):
            effects.outcome = "lost_lease"
            return effects
        effects.outcome = status
        effects.published.extend(e["message_id"]["S"] for e in events)
        failures = endpoint.consecutive_failures + 1
        cooldown = schedule.breaker_cooldown(failures)
        self.endpoints.record_failure(endpoint, at, now + cooldown if cooldown else 0.0)
        if next_at is not None:
            self._schedule(after, next_at)
        if disable_reason is not None:
            disabled = event_item(
                "endpoint.disabled",
                {"endpoint_id": endpoint.endpoint_id, "url": endpoint.url, "reason": disable_reason, "disabled_at": at},
                client_id=endpoint.client_id,
            )
            # Disabled and announced in one transaction, once (only while it is active).
            if self.endpoints.disable(endpoint, disable_reason, at, disabled):
                effects.published.append(disabled["message_id"]["S"])
        if status != "retrying":
            self._advance(delivery)
        return effects

    def _settle(self, delivery: Delivery, endpoint: Endpoint | None, status: str, reason: str) -> Effects:
        after = replace(delivery, status=status, last_error=reason, next_attempt_at=None)  # type: ignore[arg-type]
        if self.deliveries.settle(delivery, after) and endpoint is not None:
            self._advance(delivery)
        return Effects(outcome=status)

    def _advance(self, delivery: Delivery) -> None:
        """A settled delivery that had a sequence number lets the next one go, whatever the
        endpoint's ordering is now (it may have been switched meanwhile); idempotent."""
        if delivery.seq > 0:
            self.endpoints.advance_order(delivery.endpoint_id, delivery.seq)


def _epoch(value: str | None) -> float:
    if not value:
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)
