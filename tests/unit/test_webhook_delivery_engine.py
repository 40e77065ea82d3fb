"""The delivery engine (functions.webhooks.logic.delivery) against in-memory ports that enforce
the DynamoDB stores' conditions: fencing by attempt count, the lease, retries on Svix's schedule,
disabling, exhaustion, the circuit breaker, ordering, and the Standard Webhooks headers."""

from __future__ import annotations

import base64
import itertools
import json
import random
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook, WebhookVerificationError

from functions.webhooks.logic import operations, schedule, signing
from functions.webhooks.logic.delivery import LEASE_MARGIN_S, USER_AGENT, DeliveryEngine
from functions.webhooks.logic.endpoints import Owner
from functions.webhooks.logic.model import Delivery, Endpoint
from functions.webhooks.logic.ports import Effects, SendFailed
from gateway_core.clock import iso
from tests.unit.webhook_fakes import (
    DLV_ID,
    EP_ID,
    T0,
    Clock,
    FakeDeliveryStore,
    FakeEndpointStore,
    FakePublisher,
    FakeQueue,
    FakeSender,
    FakeVault,
    Reply,
    Scheduled,
    WorkerKilled,
    answer,
    make_delivery,
    make_endpoint,
    signing_key,
)


class Midpoint:
    """Jitter pinned to its middle: the schedule's delay exactly."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_TIME_SCALE", raising=False)
    monkeypatch.delenv("WEBHOOK_DISABLE_AFTER_S", raising=False)
    monkeypatch.setattr(schedule, "random", Midpoint())


class World:
    def __init__(self, *replies: Reply, endpoint: Endpoint | None = None, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.vault = FakeVault()
        self.secret = signing.new_symmetric_secret()
        base = endpoint or make_endpoint()
        if not base.keys:
            base = Endpoint(
                **{**base.__dict__, "keys": [signing_key(self.vault, base.endpoint_id, self.secret, base.created_at)]}
            )
        self.endpoints = FakeEndpointStore(base)
        self.deliveries = FakeDeliveryStore(self.endpoints)
        self.queue = FakeQueue()
        self.publisher = FakePublisher()
        # The data table's event items (written in the stores' transactions)
        self.events = self.endpoints.events
        self.sender = FakeSender(self.clock, *replies)
        self.engine = DeliveryEngine(
            deliveries=self.deliveries,
            endpoints=self.endpoints,
            queue=self.queue,
            vault=self.vault,
            sender=self.sender,
            clock=self.clock,
        )

    @property
    def endpoint(self) -> Endpoint:
        found = self.endpoints.get(EP_ID)
        assert found is not None
        return found

    def add(self, **overrides: Any) -> Delivery:
        """A fanned-out delivery (as fan_out creates it) and its first message."""
        delivery = make_delivery(**overrides)
        assert self.deliveries.create(delivery, self.endpoints.items[delivery.endpoint_id]) == "created"
        self.queue.schedule(delivery.delivery_id, 0, 0.0)
        stored = self.deliveries.get(delivery.delivery_id)
        assert stored is not None
        return stored

    def delivery(self, delivery_id: str = DLV_ID) -> Delivery:
        found = self.deliveries.get(delivery_id)
        assert found is not None
        return found

    def process(self, message: dict[str, Any]) -> Effects:
        return self.engine.process(message)

    def next(self) -> tuple[Scheduled, Effects]:
        """Receives the message due first, at its time (as SQS would hand it over)."""
        scheduled = self.queue.pop()
        self.clock.at(scheduled.not_before)
        return scheduled, self.engine.process(scheduled.message())

    def drain(self, limit: int = 100) -> list[str]:
        outcomes: list[str] = []
        for _ in range(limit):
            if not self.queue.scheduled:
                return outcomes
            outcomes.append(self.next()[1].outcome)
        raise AssertionError("the queue never drained")


def message(attempts: int = 0, delivery_id: str = DLV_ID, **extra: Any) -> dict[str, Any]:
    return {"delivery_id": delivery_id, "attempts": attempts, **extra}


def epoch(value: str | None) -> float:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# -- the happy path and retries ----------------------------------------------------------------


def test_success_first_time() -> None:
    # Given a fresh delivery and a receiver that answers 200
    w = World(answer(200, {"x-request-id": "r1"}, "ok", latency_ms=40))
    w.add()

    # When its message is processed
    outcomes = w.drain()

    # Then one request, one recorded success, nothing left queued
    assert outcomes == ["delivered"]
    assert len(w.sender.calls) == 1
    d = w.delivery()
    assert (d.status, d.attempts, d.last_status, d.last_error, d.next_attempt_at) == ("delivered", 1, 200, None, None)
    assert d.delivered_at == iso(datetime.fromtimestamp(T0, UTC))
    assert d.lease_until == 0
    [attempt] = w.deliveries.attempts_of(DLV_ID)
    assert (attempt.attempt, attempt.outcome, attempt.status_code, attempt.latency_ms) == (1, "success", 200, 40)
    assert attempt.response_headers == {"x-request-id": "r1"}
    assert attempt.response_body == "ok"
    assert w.queue.scheduled == []
    assert w.publisher.events == []
    assert w.events.items == []
    call = w.sender.calls[0]
    assert (call.method, call.url, call.timeout_s) == ("POST", "https://hooks.example.com/in", 15)
    assert call.body == make_delivery().payload.encode()


def test_fail_n_times_then_succeed_on_the_schedule() -> None:
    # Given a receiver that fails three times (500, 502, a reset) and then answers 204
    w = World(answer(500), answer(502), SendFailed("connection reset", 3), answer(204))
    w.add()

    # When the queue is worked through in time
    outcomes = w.drain()

    # Then it was retried at 5 s, 5 min and 30 min after each failure, and delivered on the fourth
    assert outcomes == ["retrying", "retrying", "retrying", "delivered"]
    times = [c.at for c in w.sender.calls]
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [5, 300, 1800]
    attempts = w.deliveries.attempts_of(DLV_ID)
    assert [a.outcome for a in attempts] == ["failure", "failure", "failure", "success"]
    assert [a.status_code for a in attempts] == [500, 502, None, 204]
    assert [a.error for a in attempts] == ["HTTP 500", "HTTP 502", "connection reset", None]
    assert [epoch(a.next_attempt_at) - a_time for a, a_time in zip(attempts[:3], times, strict=False)] == [
        5,
        300,
        1800,
    ]
    d = w.delivery()
    assert (d.status, d.attempts, d.last_status) == ("delivered", 4, 204)
    # The endpoint's failure streak ended with the success
    assert w.endpoint.consecutive_failures == 0
    assert w.endpoint.failing_since is None


def test_each_retry_is_queued_with_its_attempt_count_and_time() -> None:
    w = World(answer(500))
    w.add()
    w.queue.pop()

    effects = w.process(message(0))

    assert effects.outcome == "retrying"
    assert w.queue.scheduled == [Scheduled(DLV_ID, 1, T0 + 5)]
    assert w.deliveries.queued_for(DLV_ID) == 1
    d = w.delivery()
    assert (d.status, d.attempts, epoch(d.next_attempt_at)) == ("retrying", 1, T0 + 5)


def test_retry_delays_carry_real_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedule, "random", random.Random(99))
    seen = []
    for _ in range(40):
        w = World(answer(500))
        w.add()
        w.queue.pop()
        w.process(message(0))
        seen.append(w.queue.scheduled[0].not_before - T0)
    assert all(4.0 <= s <= 6.0 for s in seen)
    assert len({round(s, 6) for s in seen}) > 30


# -- fencing: stale and duplicate messages -------------------------------------------------------


def test_stale_message_sends_nothing() -> None:
    # Given a delivery at its second attempt, whose message for that attempt was queued
    w = World(answer(500), answer(500))
    w.add()
    w.next()  # attempt 1 fails; attempt 2 is queued
    assert w.delivery().attempts == 1
    calls = len(w.sender.calls)

    # When the message of attempt 1 comes back (SQS redelivers it)
    effects = w.process(message(0))

    # Then it is stale: nothing sent, nothing queued again
    assert effects.outcome == "stale"
    assert len(w.sender.calls) == calls
    assert len(w.queue.scheduled) == 1


def test_message_ahead_of_the_record_sends_nothing() -> None:
    w = World()
    w.add()
    w.queue.pop()
    effects = w.process(message(3))
    assert effects.outcome in ("stale", "requeued")
    assert w.sender.calls == []


def test_duplicate_message_after_success_sends_nothing() -> None:
    # Given a delivered delivery
    w = World(answer(200))
    w.add()
    assert w.drain() == ["delivered"]

    # When the same message arrives twice more (redelivery, a retried fan-out)
    again = [w.process(message(0)).outcome for _ in range(2)]

    # Then nothing is sent and one success stays recorded
    assert again == ["settled", "settled"]
    assert len(w.sender.calls) == 1
    assert [a.outcome for a in w.deliveries.attempts_of(DLV_ID)] == ["success"]


def test_a_worker_with_a_stale_read_never_records_a_second_success() -> None:
    # Given a worker that read the delivery before another delivered it
    w = World(answer(200))
    stale = w.add()
    w.drain()

    # When it tries its attempt anyway
    effects = w.engine.attempt(stale, w.endpoint)

    # Then its claim is refused: nothing sent, nothing queued, one success
    assert effects.outcome == "stale"
    assert len(w.sender.calls) == 1
    assert w.queue.scheduled == []
    assert len(w.deliveries.attempts_of(DLV_ID)) == 1


def test_a_duplicate_during_the_attempt_is_refused_by_the_lease() -> None:
    # Given a receiver that is slow: while it answers, the duplicate message is processed
    w = World()
    w.add()
    w.queue.pop()
    during: list[str] = []

    def slow() -> Any:
        during.append(w.process(message(0)).outcome)
        return answer(200)

    w.sender.replies = [slow]

    # When the first worker's attempt runs
    effects = w.process(message(0))

    # Then the duplicate found the lease held and sent nothing; one success recorded
    assert during == ["leased"]
    assert effects.outcome == "delivered"
    assert len(w.sender.calls) == 1
    assert len(w.deliveries.attempts_of(DLV_ID)) == 1
    # The duplicate came back after the lease (in case its holder died): it finds the success
    assert w.drain() == ["settled"]
    assert len(w.sender.calls) == 1


def test_a_killed_worker_holds_the_lease_until_it_expires() -> None:
    # Given a worker killed right after it claimed the attempt
    w = World(answer(200))
    w.add()
    w.queue.pop()
    w.deliveries.kill_after_claim = True
    with pytest.raises(WorkerKilled):
        w.process(message(0))
    lease = w.delivery().lease_until
    assert lease == T0 + w.endpoint.timeout_s + LEASE_MARGIN_S

    # When its message comes back before the lease expired
    w.clock.advance(10)
    early = w.process(message(0))

    # Then it is refused and comes back once the lease has ended (nothing else would bring it back)
    assert early.outcome == "leased"
    assert w.sender.calls == []
    assert w.queue.scheduled == [Scheduled(DLV_ID, 0, lease + 1.0)]

    # When it comes back: the attempt happens, once
    assert w.drain() == ["delivered"]
    assert w.sender.calls[0].at >= lease
    assert len(w.sender.calls) == 1
    assert [a.attempt for a in w.deliveries.attempts_of(DLV_ID)] == [1]
    assert w.process(message(0)).outcome == "settled"
    assert len(w.sender.calls) == 1


def test_crash_between_record_and_schedule_is_recovered_by_the_stale_message() -> None:
    # Given a failed attempt whose next message could not be queued (SQS failed once)
    w = World(answer(500), answer(200))
    w.add()
    w.queue.pop()
    w.queue.fail_next_schedule = 1
    with pytest.raises(ConnectionError):
        w.process(message(0))
    assert w.delivery().attempts == 1
    assert w.delivery().status == "retrying"
    assert w.queue.scheduled == []
    assert w.deliveries.queued_for(DLV_ID) is None

    # When SQS hands the old message over again
    effects = w.process(message(0))

    # Then it queues the missing message for attempt 2 (at its time) and sends nothing itself
    assert effects.outcome == "requeued"
    assert w.queue.scheduled == [Scheduled(DLV_ID, 1, T0 + 5)]
    assert w.deliveries.queued_for(DLV_ID) == 1
    assert len(w.sender.calls) == 1

    # And a further copy of the old message is now merely stale
    assert w.process(message(0)).outcome == "stale"
    assert len(w.queue.scheduled) == 1

    # And the requeued message makes attempt 2
    assert w.drain() == ["delivered"]
    assert [a.attempt for a in w.deliveries.attempts_of(DLV_ID)] == [1, 2]


def test_stale_message_does_not_requeue_while_a_lease_is_held() -> None:
    w = World(answer(500))
    w.add()
    w.queue.pop()
    w.queue.fail_next_schedule = 1
    with pytest.raises(ConnectionError):
        w.process(message(0))
    # Someone holds the lease on attempt 2 already
    assert w.deliveries.claim(w.delivery(), w.clock(), w.clock() + 60)
    assert w.process(message(0)).outcome == "stale"
    assert w.queue.scheduled == []


# -- disabling, exhaustion -----------------------------------------------------------------------


def test_410_disables_the_endpoint_once() -> None:
    # Given two deliveries to an endpoint that answers 410 Gone
    w = World(answer(410), answer(410))
    stale_endpoint = w.endpoint
    w.add()
    w.add(delivery_id="dlv_2", event_id="msg_01KBG4000000000000000000CD")
    w.queue.scheduled.remove(Scheduled(DLV_ID, 0, 0.0))

    # When the first is attempted
    first = w.process(message(0))

    # Then it failed (no retry), the endpoint is disabled and endpoint.disabled written with it
    assert first.outcome == "failed"
    assert (w.delivery().status, w.delivery().next_attempt_at) == ("failed", None)
    assert w.endpoint.active is False
    assert w.endpoint.disabled_reason == "gone"
    assert w.publisher.events == []
    assert w.events.published() == [
        (
            "endpoint.disabled",
            {
                "endpoint_id": EP_ID,
                "url": "https://hooks.example.com/in",
                "reason": "gone",
                "disabled_at": iso(datetime.fromtimestamp(T0, UTC)),
            },
            "cl_1",
        )
    ]
    assert first.published == w.events.ids()
    assert w.endpoint.consecutive_failures == 1  # recorded, after the attempt's own record
    assert [s.delivery_id for s in w.queue.scheduled] == ["dlv_2"]  # no retry of dlv_1

    # And a second worker that read the endpoint before it was disabled gets 410 too: no second event
    second = w.engine.attempt(w.delivery("dlv_2"), stale_endpoint)
    assert second.outcome == "failed"
    assert second.published == []
    assert w.events.types() == ["endpoint.disabled"]


def test_deliveries_to_a_disabled_endpoint_settle_without_sending() -> None:
    w = World(endpoint=make_endpoint(active=False, disabled_reason="gone"))
    w.add()
    assert w.drain() == ["failed"]
    assert w.sender.calls == []
    d = w.delivery()
    assert (d.status, d.attempts, d.last_error) == ("failed", 0, "the endpoint is disabled (gone)")
    assert w.deliveries.attempts_of(DLV_ID) == []


def test_deliveries_to_a_deleted_endpoint_settle_without_sending() -> None:
    w = World()
    w.add()
    del w.endpoints.items[EP_ID]
    assert w.drain() == ["failed"]
    assert w.sender.calls == []
    assert w.delivery().last_error == "the endpoint was deleted"


def test_failing_for_longer_than_disable_after_disables() -> None:
    # Given an endpoint failing since just over five days
    since = iso(datetime.fromtimestamp(T0 - schedule.DISABLE_AFTER_S - 1, UTC))
    w = World(answer(503), endpoint=make_endpoint(failing_since=since, consecutive_failures=2))
    w.add()

    # When another attempt fails
    assert w.drain() == ["failed"]

    # Then the endpoint is disabled as failing, the delivery settled without a retry
    assert w.endpoint.active is False
    assert w.endpoint.disabled_reason == "failing"
    assert w.delivery().status == "failed"
    assert w.events.types() == ["endpoint.disabled"]
    assert w.events.published()[0][1]["reason"] == "failing"
    assert w.publisher.events == []


def test_failing_for_less_than_disable_after_retries() -> None:
    since = iso(datetime.fromtimestamp(T0 - schedule.DISABLE_AFTER_S + 60, UTC))
    w = World(answer(500), endpoint=make_endpoint(failing_since=since))
    w.add()
    w.next()
    assert w.endpoint.active is True
    assert w.delivery().status == "retrying"
    assert w.endpoint.failing_since == since  # the streak keeps its start
    assert w.events.items == []


def test_disable_after_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_DISABLE_AFTER_S", "60")
    since = iso(datetime.fromtimestamp(T0 - 61, UTC))
    w = World(answer(500), endpoint=make_endpoint(failing_since=since))
    w.add()
    assert w.drain() == ["failed"]
    assert w.endpoint.disabled_reason == "failing"


def test_exhaustion_abandons_dead_letters_and_publishes() -> None:
    # Given a delivery with three attempts in all and a receiver that always fails
    w = World(
        answer(500), answer(500), SendFailed("timed out after 15 s", 15000), endpoint=make_endpoint(max_retries=2)
    )
    w.add(max_attempts=3)

    # When worked through
    outcomes = w.drain()

    # Then the third failure abandons it: DLQ once, message.attempt.exhausted written once with it
    assert outcomes == ["retrying", "retrying", "abandoned"]
    d = w.delivery()
    assert (d.status, d.attempts, d.next_attempt_at, d.last_error) == ("abandoned", 3, None, "timed out after 15 s")
    assert [x.delivery_id for x in w.queue.dead] == [DLV_ID]
    assert w.queue.dead[0].status == "abandoned"
    assert w.queue.dead[0].attempts == 3
    assert w.publisher.events == []
    assert w.events.published() == [
        (
            "message.attempt.exhausted",
            {
                "endpoint_id": EP_ID,
                "delivery_id": DLV_ID,
                "event_id": "msg_01KBG4000000000000000000AB",
                "event_type": "key.rotated",
                "attempts": 3,
                "last_status": None,
                "last_error": "timed out after 15 s",
            },
            "cl_1",
        )
    ]
    assert w.queue.scheduled == []
    # A late copy of a message changes nothing
    assert w.process(message(2)).outcome == "settled"
    assert len(w.sender.calls) == 3
    assert len(w.queue.dead) == 1
    assert w.events.types() == ["message.attempt.exhausted"]


def test_a_delivery_with_one_attempt_is_abandoned_at_once() -> None:
    w = World(answer(500))
    w.add(max_attempts=1)
    assert w.drain() == ["abandoned"]
    [(event_type, data, _)] = w.events.published()
    assert (event_type, data["last_status"], data["attempts"]) == ("message.attempt.exhausted", 500, 1)


# -- Retry-After, timeouts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "header", "expected_delay"),
    [
        (429, "8", 8),  # within 1-2x of 5 s
        (429, "1", 5),  # never sooner than the schedule
        (429, "3600", 10),  # never later than twice it
        (503, "7", 7),
        (500, "8", 5),  # only 429 and 503 are asked to wait
        (429, "later", 5),  # unreadable: the schedule
    ],
)
def test_retry_after_is_honoured_within_one_to_two_times(status: int, header: str, expected_delay: float) -> None:
    w = World(answer(status, {"Retry-After": header}), answer(200))
    w.add()
    _, effects = w.next()
    assert effects.attempt is not None
    assert w.queue.scheduled[0].not_before == T0 + expected_delay
    assert epoch(effects.attempt.next_attempt_at) == T0 + expected_delay
    recorded = w.deliveries.attempts_of(DLV_ID)[0]
    assert recorded.next_attempt_at == effects.attempt.next_attempt_at
    w.drain()
    assert w.sender.calls[1].at == T0 + expected_delay


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.fromtimestamp(T0 + 9, UTC), usegmt=True)
    w = World(answer(429, {"retry-after": when}))
    w.add()
    _, effects = w.next()
    assert effects.attempt is not None
    assert effects.attempt.retry_after_s == pytest.approx(9)
    assert w.queue.scheduled[0].not_before == pytest.approx(T0 + 9)


def test_a_timeout_is_a_failure_with_its_error_recorded() -> None:
    w = World(SendFailed("timed out after 15 s" + "x" * 600, 15003))
    w.add()
    _, effects = w.next()
    assert effects.outcome == "retrying"
    [attempt] = w.deliveries.attempts_of(DLV_ID)
    assert attempt.outcome == "failure"
    assert attempt.status_code is None
    assert attempt.latency_ms == 15003
    assert attempt.error is not None
    assert attempt.error.startswith("timed out after 15 s")
    assert len(attempt.error) == 500  # capped
    assert w.delivery().last_error == attempt.error
    assert w.delivery().last_status is None
    assert w.endpoint.consecutive_failures == 1


# -- the circuit breaker ---------------------------------------------------------------------------


def test_breaker_opens_after_five_failures_and_defers_without_an_attempt() -> None:
    # Given five deliveries that each fail their first attempt
    w = World(*[answer(500)] * 5, answer(200))
    for n in range(1, 7):
        w.add(delivery_id=f"dlv_{n}", event_id=f"msg_01KBG40000000000000000000{n}")
    first_five = [w.queue.pop() for _ in range(5)]
    sixth = w.queue.pop()
    for i, scheduled in enumerate(first_five, start=1):
        w.process(scheduled.message())
        # Then the breaker stays closed for four, and opens (30 s) at the fifth
        assert w.endpoint.consecutive_failures == i
        assert w.endpoint.breaker_open_until == (T0 + 30 if i == 5 else 0.0)

    # When a due delivery comes while it is open
    w.clock.advance(1)
    deferred = w.process(sixth.message())

    # Then it is deferred to the breaker's end without spending an attempt
    assert deferred.outcome == "breaker_open"
    assert len(w.sender.calls) == 5
    assert w.delivery("dlv_6").attempts == 0
    assert w.delivery("dlv_6").status == "pending"
    assert Scheduled("dlv_6", 0, T0 + 30) in w.queue.scheduled

    # And once it closes, the delivery goes and the success closes the breaker
    w.queue.scheduled = [s for s in w.queue.scheduled if s.delivery_id == "dlv_6"]
    assert w.drain() == ["delivered"]
    assert w.sender.calls[-1].at == T0 + 30
    assert (w.endpoint.consecutive_failures, w.endpoint.breaker_open_until) == (0, 0.0)


def test_breaker_cooldown_doubles_with_further_failures() -> None:
    w = World(answer(500), endpoint=make_endpoint(consecutive_failures=6))
    w.add()
    w.next()
    assert w.endpoint.consecutive_failures == 7
    assert w.endpoint.breaker_open_until == T0 + 120


# -- ordering ----------------------------------------------------------------------------------


def test_ordered_endpoint_waits_for_the_previous_delivery() -> None:
    # Given an ordered endpoint with two deliveries (seq 1 and 2) and a receiver that fails seq 1 once
    w = World(answer(500), answer(200), answer(200), endpoint=make_endpoint(ordering="ordered"))
    w.add()
    w.add(delivery_id="dlv_2", event_id="msg_01KBG4000000000000000000CD")
    assert (w.delivery().seq, w.delivery("dlv_2").seq) == (1, 2)
    w.queue.scheduled.clear()

    # When seq 2 comes first
    waiting = w.process(message(0, "dlv_2"))

    # Then it waits (1 s, growing) and nothing is sent
    assert waiting.outcome == "waiting_for_order"
    assert w.queue.scheduled == [Scheduled("dlv_2", 0, T0 + 1, 1)]
    assert w.sender.calls == []

    # When seq 1 fails (retrying): seq 2 keeps waiting, longer each time
    assert w.process(message(0)).outcome == "retrying"
    assert w.endpoint.settled_seq == 0
    w.queue.scheduled.remove(Scheduled("dlv_2", 0, T0 + 1, 1))
    w.clock.advance(1)
    assert w.process(Scheduled("dlv_2", 0, T0 + 1, 1).message()).outcome == "waiting_for_order"
    assert Scheduled("dlv_2", 0, T0 + 1 + 2, 2) in w.queue.scheduled

    # When everything is worked through: seq 1 is delivered before seq 2
    w.drain()
    sent_order = [json.loads(c.body)["data"] for c in w.sender.calls]
    assert len(sent_order) == 3
    assert [c.headers["webhook-id"] for c in w.sender.calls] == [
        "msg_01KBG4000000000000000000AB",
        "msg_01KBG4000000000000000000AB",
        "msg_01KBG4000000000000000000CD",
    ]
    assert w.delivery("dlv_2").status == "delivered"
    assert w.endpoint.settled_seq == 2


def test_order_wait_is_capped() -> None:
    w = World(endpoint=make_endpoint(ordering="ordered"))
    w.add()
    w.add(delivery_id="dlv_2", event_id="msg_01KBG4000000000000000000CD")
    w.queue.scheduled.clear()
    w.process(message(0, "dlv_2", waits=500))
    assert w.queue.scheduled == [Scheduled("dlv_2", 0, T0 + 60, 501)]


def test_ordered_endpoint_moves_on_after_abandonment_and_settlement() -> None:
    w = World(answer(500), answer(200), endpoint=make_endpoint(ordering="ordered"))
    w.add(max_attempts=1)
    w.add(delivery_id="dlv_2", event_id="msg_01KBG4000000000000000000CD")
    w.queue.scheduled.clear()
    assert w.process(message(0)).outcome == "abandoned"
    assert w.endpoint.settled_seq == 1
    assert w.process(message(0, "dlv_2")).outcome == "delivered"
    assert w.endpoint.settled_seq == 2


def test_unordered_endpoint_never_waits() -> None:
    w = World(answer(200))
    w.add(delivery_id="dlv_2", seq=7)
    assert w.drain() == ["delivered"]


# -- timing of messages ------------------------------------------------------------------------------


def test_a_message_due_later_hops_without_an_attempt() -> None:
    # Given a message whose not_before is beyond SQS's delay
    w = World()
    w.add()
    w.queue.scheduled.clear()

    effects = w.process(message(0, not_before=T0 + 3600, waits=2))

    # Then it is sent on as it is, the delivery untouched
    assert effects.outcome == "not_due"
    assert w.queue.scheduled == [Scheduled(DLV_ID, 0, T0 + 3600, 2)]
    assert w.sender.calls == []
    assert w.delivery().lease_until == 0


def test_a_message_due_within_half_a_second_goes() -> None:
    w = World(answer(200))
    w.add()
    w.queue.scheduled.clear()
    assert w.process(message(0, not_before=T0 + 0.4)).outcome == "delivered"


def test_a_message_earlier_than_the_delivery_s_next_attempt_is_requeued() -> None:
    # Given a retrying delivery due in 5 minutes and an early message for it (no not_before)
    w = World(answer(500), answer(500))
    w.add()
    w.next()
    w.next()
    due = epoch(w.delivery().next_attempt_at)
    assert due == T0 + 5 + 300
    w.queue.scheduled.clear()

    effects = w.process(message(2))

    assert effects.outcome == "not_due"
    assert w.queue.scheduled == [Scheduled(DLV_ID, 2, due)]
    assert len(w.sender.calls) == 2


# -- headers and signatures ------------------------------------------------------------------------


def _verify(secret: str, call: Any) -> Any:
    return Webhook(secret).verify(call.body, call.headers)


def test_headers_follow_standard_webhooks_and_verify() -> None:
    # Given a clock at the real time (verifiers check the timestamp's freshness)
    clock = Clock(float(int(time.time())) + 0.25)
    w = World(
        answer(500),
        answer(200),
        clock=clock,
        endpoint=make_endpoint(headers={"X-Tenant": "t1", "Webhook-Id": "forged", "Content-Type": "text/plain"}),
    )
    w.add()
    w.drain()
    first, second = w.sender.calls

    # Then webhook-id is the event id on every attempt, webhook-timestamp each attempt's time
    for call in (first, second):
        assert call.headers["webhook-id"] == "msg_01KBG4000000000000000000AB"
        assert call.headers["content-type"] == "application/json"
        assert call.headers["user-agent"] == USER_AGENT
        assert call.headers["X-Tenant"] == "t1"
        # Custom headers never override ours, in any spelling
        lowered = [k.lower() for k in call.headers]
        assert len(lowered) == len(set(lowered)), call.headers
        assert "forged" not in call.headers.values()
        assert "text/plain" not in call.headers.values()
    assert first.headers["webhook-timestamp"] == str(int(clock.now - 5))
    assert second.headers["webhook-timestamp"] == str(int(clock.now))
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]

    # And the standardwebhooks package verifies both attempts with the endpoint's secret
    for call in (first, second):
        assert _verify(w.secret, call) == json.loads(make_delivery().payload)


def test_during_a_rotation_grace_both_keys_sign() -> None:
    now = float(int(time.time()))
    clock = Clock(now)
    vault = FakeVault()
    old, new = signing.new_symmetric_secret(), signing.new_symmetric_secret()
    grace_end = iso(datetime.fromtimestamp(now + 60, UTC))
    endpoint = make_endpoint(
        keys=[
            signing_key(vault, EP_ID, old, "2026-11-01T00:00:00.000Z", retires_at=grace_end),
            signing_key(vault, EP_ID, new, "2026-12-01T00:00:00.000Z"),
        ]
    )
    w = World(answer(500), answer(200), clock=clock, endpoint=endpoint)
    w.vault = vault
    w.engine.vault = vault
    w.add()

    # When one attempt is made within the grace and the next after it
    w.next()
    w.clock.advance(90)
    w.queue.scheduled = [Scheduled(DLV_ID, 1, w.clock.now)]
    w.drain()
    within, after = w.sender.calls

    # Then within the grace two signatures (newest first) each verify with its own secret
    signatures = within.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    assert signatures[0] == signing.sign(
        within.headers["webhook-id"], int(within.headers["webhook-timestamp"]), within.body, [new]
    )
    assert _verify(new, within)
    assert _verify(old, within)

    # And after retires_at only the new key signs: the old secret no longer verifies
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert _verify(new, after)
    with pytest.raises(WebhookVerificationError):
        _verify(old, after)


def test_a_signature_for_another_body_fails_verification() -> None:
    clock = Clock(float(int(time.time())))
    w = World(answer(200), clock=clock)
    w.add()
    w.drain()
    call = w.sender.calls[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(w.secret).verify(call.body + b" ", call.headers)


# -- the endpoint's own rate limit -----------------------------------------------------------------


class FakeThrottle:
    def __init__(self, *answers: float | None) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    def admit(self, endpoint_id: str, per_second: int) -> float | None:
        self.asked.append((endpoint_id, per_second))
        return self.answers.pop(0)


def test_over_the_endpoint_rate_the_attempt_waits_without_spending_one() -> None:
    w = World(answer(200), endpoint=make_endpoint(rate_limit_per_s=2))
    throttle = FakeThrottle(0.5, None)
    w.engine.throttle = throttle
    w.add()

    assert w.drain() == ["rate_limited", "delivered"]
    assert throttle.asked == [(EP_ID, 2), (EP_ID, 2)]
    assert w.sender.calls[0].at == T0 + 0.5
    assert w.delivery().attempts == 1


def test_no_rate_limit_never_asks_the_throttle() -> None:
    w = World(answer(200))
    throttle = FakeThrottle()
    w.engine.throttle = throttle
    w.add()
    assert w.drain() == ["delivered"]
    assert throttle.asked == []


def test_a_worker_that_outlived_its_lease_never_records_a_second_success() -> None:
    # Given a receiver so slow that the first worker's lease expires mid-request, and a second
    # worker that takes the attempt over and delivers it meanwhile
    w = World()
    w.add()
    w.queue.pop()
    takeover: list[str] = []

    def slow() -> Any:
        w.clock.advance(w.endpoint.timeout_s + LEASE_MARGIN_S + 1)
        takeover.append(w.process(message(0)).outcome)
        return answer(200)

    w.sender.replies = [slow, answer(200)]

    # When the first worker's answer finally comes
    effects = w.process(message(0))

    # Then its record is refused: two requests went out (at least once), one success is recorded
    assert takeover == ["delivered"]
    assert effects.outcome == "lost_lease"
    assert len(w.sender.calls) == 2
    assert [(a.attempt, a.outcome) for a in w.deliveries.attempts_of(DLV_ID)] == [(1, "success")]
    assert w.delivery().status == "delivered"
    assert w.queue.scheduled == []
    assert w.publisher.events == []


def test_a_failure_that_lost_its_lease_neither_retries_nor_disables() -> None:
    w = World()
    w.add()
    w.queue.pop()

    def slow() -> Any:
        w.clock.advance(w.endpoint.timeout_s + LEASE_MARGIN_S + 1)
        w.process(message(0))
        return answer(410)

    w.sender.replies = [slow, answer(200)]
    effects = w.process(message(0))

    assert effects.outcome == "lost_lease"
    assert w.delivery().status == "delivered"
    assert w.endpoint.active is True
    assert (w.endpoint.consecutive_failures, w.endpoint.failing_since) == (0, None)
    assert w.publisher.events == []
    assert w.events.items == []
    assert w.queue.scheduled == []
    assert w.queue.dead == []


def test_a_failure_that_lost_its_lease_counts_nothing_against_the_endpoint() -> None:
    # Given an endpoint one failure short of opening its breaker after this one, and a receiver so
    # slow that a second worker takes the attempt over (and fails it) meanwhile
    w = World(endpoint=make_endpoint(consecutive_failures=3))
    w.add()
    w.queue.pop()
    takeover: list[str] = []

    def slow() -> Any:
        w.clock.advance(w.endpoint.timeout_s + LEASE_MARGIN_S + 1)
        takeover.append(w.process(message(0)).outcome)
        return answer(500)

    w.sender.replies = [slow, answer(500)]

    # When the first worker's failure comes back after its lease
    effects = w.process(message(0))

    # Then only the takeover's failure counts: four, the breaker still closed (a fifth would open it)
    assert takeover == ["retrying"]
    assert effects.outcome == "lost_lease"
    assert w.endpoint.consecutive_failures == 4
    assert w.endpoint.breaker_open_until == 0.0
    assert [(a.attempt, a.status_code) for a in w.deliveries.attempts_of(DLV_ID)] == [(1, 500)]
    assert len(w.queue.scheduled) == 1  # the takeover's retry only


def test_an_exhausting_failure_that_lost_its_lease_writes_no_exhausted_event() -> None:
    # Given a one-attempt delivery whose first worker outlives its lease while a second delivers it
    w = World(endpoint=make_endpoint(max_retries=0))
    w.add(max_attempts=1)
    w.queue.pop()

    def slow() -> Any:
        w.clock.advance(w.endpoint.timeout_s + LEASE_MARGIN_S + 1)
        assert w.process(message(0)).outcome == "delivered"
        return answer(500)

    w.sender.replies = [slow, answer(200)]

    # When the first worker's failure (its last attempt) comes back
    effects = w.process(message(0))

    # Then its record is refused and so is the event written with it: nothing was exhausted
    assert effects.outcome == "lost_lease"
    assert effects.published == []
    assert w.events.items == []
    assert w.delivery().status == "delivered"
    # The DLQ message went before the record; it names a delivered delivery, which redrive drops
    assert [(d.delivery_id, d.status) for d in w.queue.dead] == [(DLV_ID, "abandoned")]
    assert w.deliveries.get(w.queue.dead[0].delivery_id) == w.delivery()


def test_the_dead_letter_is_sent_before_the_abandonment_is_recorded() -> None:
    # Given a last attempt whose DLQ message cannot be sent (SQS fails once)
    w = World(answer(500), answer(500), endpoint=make_endpoint(max_retries=0))
    w.add(max_attempts=1)
    w.queue.pop()
    w.queue.fail_next_dead_letter = True

    # When it fails
    with pytest.raises(ConnectionError):
        w.process(message(0))

    # Then nothing is recorded (no abandoned delivery without its DLQ message, no event)
    d = w.delivery()
    assert (d.status, d.attempts) == ("pending", 0)
    assert w.deliveries.attempts_of(DLV_ID) == []
    assert w.events.items == []
    assert w.endpoint.consecutive_failures == 0

    # And once the lease has ended, SQS's redelivery makes the attempt again and abandons it properly
    w.clock.advance(w.endpoint.timeout_s + LEASE_MARGIN_S)
    effects = w.process(message(0))
    assert effects.outcome == "abandoned"
    assert [d.delivery_id for d in w.queue.dead] == [DLV_ID]
    assert w.events.types() == ["message.attempt.exhausted"]
    assert effects.published == w.events.ids()
    assert w.endpoint.consecutive_failures == 1


def test_the_exhausted_event_exists_exactly_when_the_abandonment_was_recorded() -> None:
    w = World(answer(503), endpoint=make_endpoint(max_retries=0))
    w.add(max_attempts=1)
    _, effects = w.next()
    assert effects.outcome == "abandoned"
    [item] = w.events.items
    assert item["PK"]["S"] == f"EVENT#{item['message_id']['S']}"
    assert effects.published == [item["message_id"]["S"]]
    assert w.delivery().status == "abandoned"
    assert [a.attempt for a in w.deliveries.attempts_of(DLV_ID)] == [1]


def test_a_worker_does_not_announce_disabling_an_endpoint_someone_disabled_meanwhile() -> None:
    # Given a worker that read the endpoint active, and its owner disabling it meanwhile
    w = World(answer(410))
    read = w.endpoint
    w.add()
    w.endpoints.items[EP_ID] = replace(read, active=False, disabled_reason="manual", disabled_at="2026-12-02T11:00:00Z")

    # When the worker's attempt gets 410
    effects = w.engine.attempt(w.delivery(), read)

    # Then the delivery failed, but the endpoint keeps its reason and no endpoint.disabled is written
    assert effects.outcome == "failed"
    assert effects.published == []
    assert w.endpoint.disabled_reason == "manual"
    assert w.events.items == []


# -- test sends --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [answer(500), answer(410), answer(429, {"retry-after": "3"}), SendFailed("connection refused", 2)],
    ids=["500", "410", "429", "refused"],
)
def test_a_failed_test_send_is_failed_and_touches_nothing_else(reply: Reply) -> None:
    # Given an endpoint one failure short of its breaker, failing for longer than disable-after,
    # and a test send with a budget it must not use
    since = iso(datetime.fromtimestamp(T0 - schedule.DISABLE_AFTER_S - 1, UTC))
    w = World(reply, endpoint=make_endpoint(consecutive_failures=4, failing_since=since))
    before = w.endpoint
    w.add(trigger="test", max_attempts=8)
    w.queue.scheduled.clear()  # a test send is attempted by the API, not queued

    # When its one attempt fails
    effects = w.engine.attempt(w.delivery(), w.endpoint)

    # Then it is failed: no retry, no DLQ, no event, and the endpoint's health is as it was
    assert effects.outcome == "failed"
    d = w.delivery()
    assert (d.status, d.attempts, d.next_attempt_at, d.lease_until) == ("failed", 1, None, 0)
    assert effects.attempt is not None
    assert effects.attempt.next_attempt_at is None
    assert w.queue.scheduled == []
    assert w.queue.dead == []
    assert w.events.items == []
    assert effects.published == []
    assert w.endpoint == before
    assert [a.outcome for a in w.deliveries.attempts_of(DLV_ID)] == ["failure"]


def test_a_failed_test_send_that_lost_its_lease_is_lost_lease() -> None:
    w = World()
    w.add(trigger="test", max_attempts=1)
    w.queue.scheduled.clear()

    def slow() -> Any:
        # Meanwhile its lease ended and a second attempt of the same number was made and recorded
        w.clock.advance(w.endpoint.timeout_s + LEASE_MARGIN_S + 1)
        assert w.engine.attempt(w.delivery(), w.endpoint).outcome == "delivered"
        return answer(500)

    w.sender.replies = [slow, answer(200)]
    assert w.engine.attempt(w.delivery(), w.endpoint).outcome == "lost_lease"
    assert [a.outcome for a in w.deliveries.attempts_of(DLV_ID)] == ["success"]
    assert w.delivery().status == "delivered"
    assert w.events.items == []


# -- a reopened delivery's schedule ------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 0.001])
@pytest.mark.parametrize("trigger", ["replay", "recover"])
def test_a_reopened_delivery_retries_on_a_fresh_schedule(
    monkeypatch: pytest.MonkeyPatch, scale: float, trigger: str
) -> None:
    # Given a delivery abandoned after eight attempts (its next retry would be 10 h away)
    monkeypatch.setenv("WEBHOOK_TIME_SCALE", str(scale))
    w = World(answer(500), answer(500), answer(200), endpoint=make_endpoint(max_retries=7))
    w.add(status="abandoned", attempts=8, max_attempts=8, created_at=iso(datetime.fromtimestamp(T0, UTC)))
    w.queue.scheduled.clear()
    assert schedule.retry_delay(9) == 36000 * scale

    # When it is replayed (or recovered) and worked through
    owner = Owner(client_id="cl_1", admin=False)
    if trigger == "replay":
        operations.replay(w.endpoints, w.deliveries, w.queue, EP_ID, DLV_ID, owner, w.clock.datetime())
    else:
        assert operations.recover(
            w.endpoints, w.deliveries, w.queue, EP_ID, w.clock.datetime(), owner, w.clock.datetime()
        ) == [DLV_ID]
    assert (w.delivery().retry_base, w.delivery().max_attempts, w.delivery().trigger) == (8, 8 + 1 + 7, trigger)
    outcomes = w.drain()

    # Then its retries wait as a new delivery's do: 5 s, then 5 min (scaled)
    assert outcomes == ["retrying", "retrying", "delivered"]
    times = [c.at for c in w.sender.calls]
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [5 * scale, 300 * scale]
    assert [a.attempt for a in w.deliveries.attempts_of(DLV_ID)] == [9, 10, 11]
    assert w.delivery().retry_base == 8


def test_v1a_signatures_verify_with_the_public_key() -> None:
    vault = FakeVault()
    private, public = signing.new_asymmetric_keypair()
    key = signing_key(vault, EP_ID, private, "2026-12-01T00:00:00.000Z")
    w = World(answer(200), endpoint=make_endpoint(signing="v1a", keys=[key]))
    w.add()
    w.drain()
    call = w.sender.calls[0]

    version, signature = call.headers["webhook-signature"].split(",", 1)
    assert version == "v1a"
    content = f"{call.headers['webhook-id']}.{call.headers['webhook-timestamp']}.".encode() + call.body
    verifier = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    verifier.verify(base64.b64decode(signature), content)  # raises InvalidSignature if wrong


def test_a_successful_test_send_leaves_the_endpoint_s_health_as_it_was() -> None:
    # Given an endpoint with failures on record (its breaker about to open)
    w = World(endpoint=make_endpoint(consecutive_failures=4, failing_since="2026-12-02T11:00:00.000Z"))
    before = w.endpoint
    w.add(trigger="test", max_attempts=1)
    w.sender.replies = [answer(200)]

    # When a test send succeeds
    assert w.engine.attempt(w.delivery(), w.endpoint).outcome == "delivered"

    # Then the failures stay: a test is not the receiver recovering for real traffic
    assert w.endpoint == before


def test_a_half_open_breaker_lets_one_probe_through_and_the_others_wait() -> None:
    # Given an endpoint whose breaker has just half-opened, and two due deliveries
    w = World(answer(500), answer(200), endpoint=make_endpoint(consecutive_failures=5, breaker_open_until=T0 - 1))
    w.add(delivery_id="dlv_a", event_id="msg_01KBG400000000000000000001")
    w.add(delivery_id="dlv_b", event_id="msg_01KBG400000000000000000002")
    a, b = w.queue.pop(), w.queue.pop()

    # When the probe is in flight, a second delivery does not go
    w.endpoints.take_probe(EP_ID, T0, T0 + 20)  # the probe holds it (another worker)
    waiting = w.process(b.message())
    assert waiting.outcome == "breaker_half_open"
    assert w.sender.calls == []
    assert w.delivery("dlv_b").attempts == 0

    # Then, the probe's time up, the next one probes: a failure opens the breaker for longer
    w.clock.advance(21)
    assert w.process(a.message()).outcome == "retrying"
    assert w.endpoint.consecutive_failures == 6
    assert w.endpoint.breaker_open_until == pytest.approx(T0 + 21 + 60)


def test_a_settled_delivery_s_message_lets_the_next_ordered_one_go() -> None:
    # Given an ordered endpoint whose worker died after settling delivery 1 (before advancing)
    w = World(endpoint=make_endpoint(ordering="ordered", next_seq=2, settled_seq=0))
    w.add(seq=1, status="delivered", attempts=1)

    # When its message comes back
    effects = w.process({"delivery_id": DLV_ID, "attempts": 0})

    # Then nothing is sent, and the next one may go
    assert effects.outcome == "settled"
    assert w.sender.calls == []
    assert w.delivery().seq > 0
    assert w.endpoint.settled_seq == w.delivery().seq
