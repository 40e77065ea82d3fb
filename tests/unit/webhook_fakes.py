"""In-memory fakes of the webhook logic's ports (functions.webhooks.logic.ports and the stores
endpoints.py / operations.py / fanout.py take), with a clock the test moves.

The stores enforce the same conditions as their DynamoDB counterparts in functions/webhooks/dal/
(deliveries_store.py, endpoint_health.py, endpoints_store.py, delivery_records.py), so a test that
passes here exercises the same fencing the deployed worker relies on."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from functions.webhooks.dal.endpoints_store import API_FIELDS
from functions.webhooks.logic.model import Attempt, Delivery, Endpoint, SigningKey
from functions.webhooks.logic.ports import SendFailed, Sent
from gateway_core.audit import Actor
from gateway_core.preconditions import ConcurrentChange

# Ids as the API issues them (endpoints.ENDPOINT_ID, operations.DELIVERY_ID): the logic does not
# read an id of another shape.
EP_ID = "ep_" + "e1" * 12
DLV_ID = "dlv_" + "d1" * 13
T0 = 1_796_212_800.0  # 2026-12-02T12:00:00Z
ACTOR = Actor(client_id="cl_admin", credential_kind="key", credential_id="key_1", request_id="req_1")


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def at(self, epoch: float) -> None:
        self.now = max(self.now, epoch)

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


class FakeEvents:
    """The data table's `EVENT#<id>` items (gateway_core.events.event_item), written only inside
    the stores' transactions, each on the condition that it does not exist yet."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def writable(self, events: list[dict[str, Any]]) -> bool:
        taken = {e["PK"]["S"] for e in self.items}
        keys = [e["PK"]["S"] for e in events]
        return not taken.intersection(keys) and len(set(keys)) == len(keys)

    def put(self, events: list[dict[str, Any]]) -> None:
        """Call only after `writable` (and every other condition of the transaction) held."""
        self.items.extend(events)

    def types(self) -> list[str]:
        return [e["event_type"]["S"] for e in self.items]

    def ids(self) -> list[str]:
        return [e["message_id"]["S"] for e in self.items]

    def published(self) -> list[tuple[str, dict[str, Any], str | None]]:
        """(type, data, client) of each event, as a Publisher call would have named them."""
        return [
            (e["event_type"]["S"], json.loads(e["event_data"]["S"]), e.get("event_client", {}).get("S"))
            for e in self.items
        ]


class WorkerKilled(BaseException):
    """A worker dying mid-way (not an Exception: nothing in the engine may catch it)."""


class FakeDeliveryStore:
    """DeliveryStore (and operations.Deliveries, fanout.DeliveryRecords) over a dict."""

    def __init__(self, endpoints: FakeEndpointStore | None = None) -> None:
        self.items: dict[str, Delivery] = {}
        # One data table: events the deliveries' transactions write land beside the endpoints'.
        self.events = endpoints.events if endpoints is not None else FakeEvents()
        self.lease_attempt: dict[str, int] = {}
        self.queued: dict[str, int] = {}
        self.attempts: dict[tuple[str, int], Attempt] = {}
        self.endpoints = endpoints
        # Kill the worker right after its claim succeeded (the lease is then held by no one alive).
        self.kill_after_claim = False

    # -- DeliveryStore -------------------------------------------------------------------------
    def get(self, delivery_id: str) -> Delivery | None:
        return self.items.get(delivery_id)

    def claim(self, delivery: Delivery, now: float, lease_until: float) -> bool:
        current = self.items.get(delivery.delivery_id)
        if (
            current is None
            or current.attempts != delivery.attempts
            or current.status not in ("pending", "retrying")
            or current.lease_until > now
        ):
            return False
        self.items[delivery.delivery_id] = replace(current, lease_until=lease_until)
        self.lease_attempt[delivery.delivery_id] = delivery.attempts + 1
        if self.kill_after_claim:
            self.kill_after_claim = False
            raise WorkerKilled
        return True

    def record(
        self, claimed: Delivery, attempt: Attempt, after: Delivery, events: list[dict[str, Any]] | None = None
    ) -> bool:
        # One transaction: the attempt, the delivery (while the lease is ours) and the events.
        current = self.items.get(claimed.delivery_id)
        if (
            current is None
            or (claimed.delivery_id, attempt.attempt) in self.attempts
            or current.attempts != claimed.attempts
            or self.lease_attempt.get(claimed.delivery_id) != claimed.attempts + 1
            or not self.events.writable(events or [])
        ):
            return False
        self.events.put(events or [])
        self.attempts[(claimed.delivery_id, attempt.attempt)] = attempt
        self.items[claimed.delivery_id] = replace(
            current,
            status=after.status,
            attempts=after.attempts,
            lease_until=0.0,
            last_status=after.last_status,
            last_error=after.last_error,
            next_attempt_at=after.next_attempt_at,
            delivered_at=after.delivered_at,
        )
        return True

    def settle(self, delivery: Delivery, after: Delivery) -> bool:
        current = self.items.get(delivery.delivery_id)
        if current is None or current.attempts != delivery.attempts or current.status != delivery.status:
            return False
        self.items[delivery.delivery_id] = replace(
            current, status=after.status, last_error=after.last_error or "", next_attempt_at=None
        )
        return True

    def mark_queued(self, delivery_id: str, attempts: int) -> None:
        if delivery_id in self.items:
            self.queued[delivery_id] = attempts

    def queued_for(self, delivery_id: str) -> int | None:
        return self.queued.get(delivery_id)

    # -- operations.Deliveries / fanout.DeliveryRecords --------------------------------------------
    def create(self, delivery: Delivery, endpoint: Endpoint) -> Literal["created", "exists_unsent", "exists"]:
        found = self.items.get(delivery.delivery_id)
        if found is not None:
            return "exists_unsent" if found.status == "pending" and found.attempts == 0 else "exists"
        if endpoint.ordering == "ordered" and self.endpoints is not None:
            seq = self.endpoints.take_seq(endpoint.endpoint_id)
            if seq is None:
                return "exists"
            delivery = replace(delivery, seq=seq)
        self.items[delivery.delivery_id] = delivery
        return "created"

    def reopen(self, delivery: Delivery, max_attempts: int, trigger: str, now_iso: str) -> bool:
        current = self.items.get(delivery.delivery_id)
        now = datetime.fromisoformat(now_iso.replace("Z", "+00:00")).timestamp()
        if (
            current is None
            or current.attempts != delivery.attempts
            or current.status != delivery.status
            or current.lease_until > now  # an attempt in progress holds it
        ):
            return False
        self.items[delivery.delivery_id] = replace(
            current,
            status="pending",
            max_attempts=max_attempts,
            trigger=trigger,
            next_attempt_at=now_iso,
            retry_base=current.attempts,
        )
        return True

    def unsettled_failures_since(self, endpoint_id: str, since: str) -> list[Delivery]:
        return [
            d
            for d in sorted(self.items.values(), key=lambda d: d.created_at)
            if d.endpoint_id == endpoint_id and d.created_at >= since and d.status in ("failed", "abandoned")
        ]

    # -- for assertions ----------------------------------------------------------------------------
    def attempts_of(self, delivery_id: str) -> list[Attempt]:
        return [a for (d, _), a in sorted(self.attempts.items()) if d == delivery_id]


class FakeEndpointStore:
    """The worker's EndpointStore (health updates leave the version alone, as endpoint_health.py)
    and endpoints.EndpointStore (replace/delete conditioned on the version, as endpoints_store.py)."""

    def __init__(self, *endpoints: Endpoint) -> None:
        self.items: dict[str, Endpoint] = {e.endpoint_id: e for e in endpoints}
        self.actions: list[str] = []
        self.events = FakeEvents()
        self.probes: dict[str, float] = {}  # the half-open breaker's probe, per endpoint
        # Make the next replace/delete lose a race (someone else wrote in between).
        self.race_next_write = False
        # Called at the start of the next replace: a write (e.g. the worker's) between the API's
        # read and its write.
        self.before_next_replace: Callable[[], object] | None = None

    def get(self, endpoint_id: str) -> Endpoint | None:
        return self.items.get(endpoint_id)

    # -- health --------------------------------------------------------------------------------
    def record_success(self, endpoint: Endpoint) -> None:
        current = self.items.get(endpoint.endpoint_id)
        if current is not None:
            self.items[endpoint.endpoint_id] = replace(
                current, consecutive_failures=0, breaker_open_until=0.0, failing_since=None
            )

    def record_failure(self, endpoint: Endpoint, at: str, breaker_open_until: float) -> Endpoint:
        current = self.items.get(endpoint.endpoint_id)
        if current is None:
            return endpoint
        updated = replace(
            current,
            consecutive_failures=current.consecutive_failures + 1,
            failing_since=current.failing_since or at,
            breaker_open_until=breaker_open_until,
        )
        self.items[endpoint.endpoint_id] = updated
        return updated

    def disable(self, endpoint: Endpoint, reason: str, at: str, event: dict[str, Any]) -> bool:
        # One transaction, only while active: the change and its `endpoint.disabled` or neither.
        current = self.items.get(endpoint.endpoint_id)
        if current is None or not current.active or not self.events.writable([event]):
            return False
        # A new version, as the dal's: an admin change based on an earlier read must not reactivate it.
        self.items[endpoint.endpoint_id] = replace(
            current, active=False, disabled_reason=reason, disabled_at=at, version=current.version + 1
        )
        self.events.put([event])
        return True

    def take_probe(self, endpoint_id: str, now: float, until: float) -> bool:
        # As the dal: only when no probe is held (or the last one's time is up).
        if endpoint_id not in self.items or self.probes.get(endpoint_id, 0.0) > now:
            return False
        self.probes[endpoint_id] = until
        return True

    def advance_order(self, endpoint_id: str, seq: int) -> None:
        current = self.items.get(endpoint_id)
        if current is not None and current.settled_seq < seq:
            self.items[endpoint_id] = replace(current, settled_seq=seq)

    def take_seq(self, endpoint_id: str) -> int | None:
        current = self.items.get(endpoint_id)
        if current is None:
            return None
        self.items[endpoint_id] = replace(current, next_seq=current.next_seq + 1)
        return current.next_seq + 1

    # -- management ----------------------------------------------------------------------------
    def create(self, endpoint: Endpoint, actor: Actor) -> None:
        assert endpoint.endpoint_id not in self.items
        self.items[endpoint.endpoint_id] = endpoint
        self.actions.append("webhook.create")

    def replace(
        self,
        before: Endpoint,
        after: Endpoint,
        actor: Actor,
        action: str = "webhook.update",
        events: list[dict[str, Any]] | None = None,
    ) -> None:
        """As endpoints_store.py: conditioned on the version read, writes only the API's fields
        (the worker's health and order fields stay as stored) except that `webhook.enable` resets
        the health; the events are written in the same transaction."""
        if self.before_next_replace is not None:
            race, self.before_next_replace = self.before_next_replace, None
            race()
        current = self.items.get(before.endpoint_id)
        if (
            self.race_next_write
            or current is None
            or current.version != before.version
            or not self.events.writable(events or [])
        ):
            self.race_next_write = False
            raise ConcurrentChange(before.endpoint_id)
        owned: dict[str, Any] = {name: getattr(after, name) for name in API_FIELDS}
        if action == "webhook.enable":
            owned.update(
                consecutive_failures=after.consecutive_failures,
                breaker_open_until=after.breaker_open_until,
                failing_since=None,
            )
        self.items[after.endpoint_id] = replace(current, **owned)
        self.events.put(events or [])
        self.actions.append(action)

    def delete(self, endpoint: Endpoint, actor: Actor) -> None:
        current = self.items.get(endpoint.endpoint_id)
        if self.race_next_write or current is None or current.version != endpoint.version:
            self.race_next_write = False
            raise ConcurrentChange(endpoint.endpoint_id)
        del self.items[endpoint.endpoint_id]
        self.actions.append("webhook.delete")


@dataclass(frozen=True)
class Scheduled:
    delivery_id: str
    attempts: int
    not_before: float
    waits: int = 0

    def message(self) -> dict[str, Any]:
        # As queue_messages.message() writes it: not_before and waits only when set.
        body: dict[str, Any] = {"delivery_id": self.delivery_id, "attempts": self.attempts}
        if self.not_before:
            body["not_before"] = self.not_before
        if self.waits:
            body["waits"] = self.waits
        return body


class FakeQueue:
    def __init__(self) -> None:
        self.scheduled: list[Scheduled] = []
        self.dead: list[Delivery] = []
        self.fail_next_schedule = 0
        self.fail_next_dead_letter = False

    def schedule(self, delivery_id: str, attempts: int, not_before: float, waits: int = 0) -> None:
        if self.fail_next_schedule:
            self.fail_next_schedule -= 1
            raise ConnectionError("SQS unavailable")
        self.scheduled.append(Scheduled(delivery_id, attempts, not_before, waits))

    def dead_letter(self, delivery: Delivery) -> None:
        if self.fail_next_dead_letter:
            self.fail_next_dead_letter = False
            raise ConnectionError("SQS unavailable")
        self.dead.append(delivery)

    def pop(self) -> Scheduled:
        """The message due first, taken off the queue."""
        first = min(self.scheduled, key=lambda s: s.not_before)
        self.scheduled.remove(first)
        return first


class FakePublisher:
    """The Publisher port; the engine's events now travel in its stores' transactions, so tests
    assert this stays empty."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], str | None]] = []

    def publish(self, event_type: str, data: dict[str, Any], client_id: str | None = None) -> str:
        self.events.append((event_type, data, client_id))
        return f"msg_{len(self.events):026d}"

    def types(self) -> list[str]:
        return [t for t, _, _ in self.events]


class FakeVault:
    """Seals a key to its endpoint (a key decrypted for another endpoint is refused, as KMS's
    encryption context refuses it)."""

    def encrypt(self, endpoint_id: str, secret: str) -> bytes:
        return f"{endpoint_id}|{secret}".encode()

    def decrypt(self, endpoint_id: str, ciphertext: bytes) -> str:
        owner, _, secret = ciphertext.decode().partition("|")
        if owner != endpoint_id:
            raise PermissionError("the key belongs to another endpoint")
        return secret


@dataclass
class SentRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout_s: float
    at: float


Reply = Sent | SendFailed | Callable[[], Sent]


class FakeSender:
    """Answers each call with the next scripted reply: a Sent, a SendFailed (raised), or a
    callable (called: it may process another message meanwhile, as a concurrent worker would)."""

    def __init__(self, clock: Clock, *replies: Reply) -> None:
        self.clock = clock
        self.replies: list[Reply] = list(replies)
        self.calls: list[SentRequest] = []

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Sent:
        self.calls.append(SentRequest(method, url, dict(headers), body, timeout_s, self.clock()))
        if not self.replies:
            raise AssertionError("the sender was called more often than scripted")
        reply = self.replies.pop(0)
        if isinstance(reply, SendFailed):
            raise reply
        if isinstance(reply, Sent):
            return reply
        return reply()


def answer(status: int, headers: dict[str, str] | None = None, body: str = "", latency_ms: int = 12) -> Sent:
    return Sent(status=status, headers=headers or {}, body_sample=body, latency_ms=latency_ms)


def make_endpoint(**overrides: Any) -> Endpoint:
    values: dict[str, Any] = {
        "endpoint_id": EP_ID,
        "client_id": "cl_1",
        "name": "receiver",
        "description": "",
        "url": "https://hooks.example.com/in",
        "method": "POST",
        "event_types": ["*"],
        "filters": [],
        "headers": {},
        "timeout_s": 15,
        "max_retries": 7,
        "rate_limit_per_s": None,
        "ordering": "none",
        "active": True,
        "signing": "v1",
        "keys": [],
        "created_at": "2026-12-01T00:00:00.000Z",
        "updated_at": "2026-12-01T00:00:00.000Z",
    }
    values.update(overrides)
    return Endpoint(**values)


def make_delivery(**overrides: Any) -> Delivery:
    values: dict[str, Any] = {
        "delivery_id": DLV_ID,
        "endpoint_id": EP_ID,
        "client_id": "cl_1",
        "event_id": "msg_01KBG4000000000000000000AB",
        "event_type": "key.rotated",
        "payload": '{"type":"key.rotated","timestamp":"2026-12-02T12:00:00.000Z","data":{"key_id":"key_9"}}',
        "status": "pending",
        "created_at": "2026-12-02T12:00:00.000Z",
        "max_attempts": 8,
    }
    values.update(overrides)
    return Delivery(**values)


def signing_key(
    vault: FakeVault, endpoint_id: str, secret: str, created_at: str, retires_at: str | None = None
) -> SigningKey:
    return SigningKey(
        key_id="key_" + created_at[-6:-1],
        ciphertext=vault.encrypt(endpoint_id, secret),
        created_at=created_at,
        retires_at=retires_at,
    )


@dataclass
class World:
    """One engine with all its fakes."""

    clock: Clock
    deliveries: FakeDeliveryStore
    endpoints: FakeEndpointStore
    queue: FakeQueue
    publisher: FakePublisher
    vault: FakeVault
    sender: FakeSender
    processed: list[str] = field(default_factory=list)
