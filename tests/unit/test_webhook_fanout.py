"""Fan-out (functions.webhooks.logic.fanout): which endpoints hear an event, the deliveries and
messages one event becomes, idempotence on a repeated stream record, and the endpoint cache."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from functions.webhooks.logic.body import webhook_body
from functions.webhooks.logic.fanout import CachedEndpoints, PublishedEvent, delivery_id, fan_out, matching, visible
from functions.webhooks.logic.model import Endpoint
from tests.unit.webhook_fakes import EP_ID, FakeDeliveryStore, FakeEndpointStore, make_endpoint

NOW = "2026-12-02T12:00:01.000Z"


def event(event_type: str = "key.rotated", client_id: str | None = "cl_1", **data: Any) -> PublishedEvent:
    return PublishedEvent(
        event_id="msg_01KBG4000000000000000000AB",
        event_type=event_type,
        occurred_at="2026-12-02T12:00:00.000Z",
        data=data or {"key_id": "key_9", "amount": "12.50"},
        client_id=client_id,
    )


class Source:
    def __init__(self, *endpoints: Endpoint) -> None:
        self.endpoints = list(endpoints)

    def active(self) -> list[Endpoint]:
        return self.endpoints


class Enqueued:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def enqueue(self, delivery_ids: list[str]) -> None:
        self.batches.append(list(delivery_ids))


def ids(endpoints: list[Endpoint]) -> list[str]:
    return [e.endpoint_id for e in endpoints]


def matched(endpoints: list[Endpoint], published: PublishedEvent) -> list[str]:
    body = json.loads(webhook_body(published.event_type, published.occurred_at, published.data))
    return ids(matching(endpoints, published, body))


# -- which endpoints hear an event ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "event_type", "hears"),
    [
        (["*"], "key.rotated", True),
        (["key.*"], "key.rotated", True),
        (["key.*"], "client.created", False),
        (["key.rotated"], "key.rotated", True),
        (["key.rotated"], "key.revoked", False),
        (["key.revoked", "client.*"], "client.deleted", True),
        (["message.*"], "message.attempt.exhausted", True),  # any depth below the prefix
        (["message.attempt.*"], "message.attempt.exhausted", True),
        (["key.*"], "keys.rotated", False),  # the prefix ends at its dot
        (["key"], "key.rotated", False),
        ([], "key.rotated", False),
    ],
)
def test_matching_by_type_and_wildcards(patterns: list[str], event_type: str, hears: bool) -> None:
    endpoint = make_endpoint(event_types=patterns)
    assert matched([endpoint], event(event_type)) == ([EP_ID] if hears else [])


@pytest.mark.parametrize(
    ("filters", "hears"),
    [
        ([], True),
        ([{"field": "data.amount", "op": "gt", "value": "10"}], True),
        ([{"field": "data.amount", "op": "gt", "value": 20}], False),
        ([{"field": "data.amount", "op": "eq", "value": 12.5}], True),  # numbers compare as numbers
        ([{"field": "type", "op": "prefix", "value": "key."}], True),
        ([{"field": "data.key_id", "op": "in", "value": ["key_1", "key_9"]}], True),
        ([{"field": "data.key_id", "op": "in", "value": ["key_1"]}], False),
        ([{"field": "data.missing", "op": "exists", "value": False}], True),
        ([{"field": "data.missing", "op": "eq", "value": None}], False),
        # every filter must hold
        (
            [
                {"field": "data.amount", "op": "gt", "value": "10"},
                {"field": "data.key_id", "op": "ne", "value": "key_9"},
            ],
            False,
        ),
    ],
)
def test_matching_by_filters(filters: list[dict[str, Any]], hears: bool) -> None:
    endpoint = make_endpoint(filters=filters)
    assert matched([endpoint], event()) == ([EP_ID] if hears else [])


def test_audience_own_hears_only_its_client_s_events() -> None:
    own = make_endpoint(endpoint_id="ep_own", client_id="cl_1")
    other = make_endpoint(endpoint_id="ep_other", client_id="cl_2")
    everything = make_endpoint(endpoint_id="ep_admin", client_id="cl_admin", audience="all")
    endpoints = [own, other, everything]

    assert matched(endpoints, event(client_id="cl_1")) == ["ep_own", "ep_admin"]
    assert matched(endpoints, event(client_id="cl_2")) == ["ep_other", "ep_admin"]
    # The platform's own events (no client) reach only endpoints that hear everything
    assert matched(endpoints, event("gateway.deployed", client_id=None)) == ["ep_admin"]


def test_visible_needs_the_same_client() -> None:
    endpoint = make_endpoint(client_id="cl_1")
    assert visible(endpoint, event(client_id="cl_1"))
    assert not visible(endpoint, event(client_id="cl_10"))
    assert not visible(endpoint, event(client_id=None))
    # An admin's endpoint for a client (audience own) is that client's
    assert not visible(make_endpoint(client_id="cl_admin"), event(client_id=None))


def test_inactive_endpoints_are_skipped() -> None:
    endpoints = [make_endpoint(endpoint_id="ep_on"), make_endpoint(endpoint_id="ep_off", active=False)]
    assert matched(endpoints, event()) == ["ep_on"]


# -- what fan-out writes -----------------------------------------------------------------------


def test_delivery_ids_are_derived_and_distinct() -> None:
    first = delivery_id("msg_A", "ep_1")
    assert first == delivery_id("msg_A", "ep_1")
    assert first.startswith("dlv_")
    assert len(first) == 4 + 26
    assert len({first, delivery_id("msg_A", "ep_2"), delivery_id("msg_B", "ep_1")}) == 3
    # The design's derivation, so that every writer of a delivery (fan-out, test send) agrees
    assert first == "dlv_" + hashlib.sha256(b"msg_A|ep_1").hexdigest()[:26]


def test_fan_out_creates_and_queues_one_delivery_per_match() -> None:
    # Given three endpoints, two of which hear the event
    endpoints = [
        make_endpoint(endpoint_id="ep_1", max_retries=7),
        make_endpoint(endpoint_id="ep_2", max_retries=0, event_types=["key.*"]),
        make_endpoint(endpoint_id="ep_3", event_types=["client.*"]),
    ]
    records = FakeDeliveryStore()
    queue = Enqueued()
    published = event()

    # When fanned out
    queued = fan_out(published, endpoints=Source(*endpoints), records=records, queue=queue, now=NOW)

    # Then one pending delivery each, with the body's exact bytes, queued in one batch
    expected = [delivery_id(published.event_id, "ep_1"), delivery_id(published.event_id, "ep_2")]
    assert queued == expected
    assert queue.batches == [expected]
    one, two = (records.items[i] for i in expected)
    assert one.payload == two.payload == webhook_body("key.rotated", published.occurred_at, published.data)
    assert json.loads(one.payload) == {
        "type": "key.rotated",
        "timestamp": "2026-12-02T12:00:00.000Z",
        "data": {"key_id": "key_9", "amount": "12.50"},
    }
    assert " " not in one.payload  # compact
    assert (one.status, one.attempts, one.created_at, one.event_id, one.client_id) == (
        "pending",
        0,
        NOW,
        published.event_id,
        "cl_1",
    )
    # Each delivery may make one attempt plus the endpoint's retries
    assert (one.max_attempts, two.max_attempts) == (8, 1)


def test_a_second_fan_out_creates_nothing_and_queues_only_the_unsent() -> None:
    # Given an event already fanned out to two endpoints, one of which has since been attempted
    endpoints = Source(make_endpoint(endpoint_id="ep_1"), make_endpoint(endpoint_id="ep_2"))
    records = FakeDeliveryStore()
    queue = Enqueued()
    published = event()
    first = fan_out(published, endpoints=endpoints, records=records, queue=queue, now=NOW)
    before = dict(records.items)
    attempted = delivery_id(published.event_id, "ep_1")
    records.items[attempted] = before[attempted].__class__(
        **{**before[attempted].__dict__, "attempts": 1, "status": "retrying"}
    )

    # When the stream hands the same event over again
    again = fan_out(published, endpoints=endpoints, records=records, queue=queue, now="2026-12-02T12:05:00.000Z")

    # Then no delivery is created or changed; only the never-attempted one is queued again
    assert len(first) == 2
    assert again == [delivery_id(published.event_id, "ep_2")]
    assert set(records.items) == set(before)
    assert records.items[again[0]] == before[again[0]]
    assert queue.batches[-1] == again


def test_nothing_to_queue_sends_no_batch() -> None:
    queue = Enqueued()
    queued = fan_out(
        event("client.created"),
        endpoints=Source(make_endpoint(event_types=["key.*"])),
        records=FakeDeliveryStore(),
        queue=queue,
        now=NOW,
    )
    assert queued == []
    assert queue.batches == []


def test_ordered_endpoint_deliveries_take_increasing_sequence_numbers() -> None:
    store = FakeEndpointStore(make_endpoint(ordering="ordered"))
    records = FakeDeliveryStore(store)
    endpoint = store.items[EP_ID]
    seqs = []
    for n in range(3):
        published = PublishedEvent(f"msg_{n}", "key.rotated", "2026-12-02T12:00:00.000Z", {}, "cl_1")
        [queued] = fan_out(published, endpoints=Source(endpoint), records=records, queue=Enqueued(), now=NOW)
        seqs.append(records.items[queued].seq)
    # A repeated record takes no number
    fan_out(
        PublishedEvent("msg_0", "key.rotated", "2026-12-02T12:00:00.000Z", {}, "cl_1"),
        endpoints=Source(endpoint),
        records=records,
        queue=Enqueued(),
        now=NOW,
    )
    assert seqs == [1, 2, 3]
    assert store.items[EP_ID].next_seq == 3


# -- the endpoint cache ------------------------------------------------------------------------


class Loader:
    def __init__(self, *endpoints: Endpoint) -> None:
        self.endpoints = list(endpoints)
        self.calls = 0

    def __call__(self) -> list[Endpoint]:
        self.calls += 1
        return list(self.endpoints)


def test_cached_endpoints_load_once_per_batch() -> None:
    load = Loader(make_endpoint(endpoint_id="ep_1"), make_endpoint(endpoint_id="ep_off", active=False))
    cache = CachedEndpoints(load)

    # The first read of a batch loads, keeping only active endpoints; the rest of the batch reuses it
    assert ids(cache.active()) == ["ep_1"]
    load.endpoints.append(make_endpoint(endpoint_id="ep_2"))
    assert ids(cache.active()) == ["ep_1"]
    assert load.calls == 1

    # The next batch (invalidate at each invocation) sees the endpoint created meanwhile
    cache.invalidate()
    assert ids(cache.active()) == ["ep_1", "ep_2"]
    assert load.calls == 2


def test_cached_endpoints_cache_an_empty_listing_too() -> None:
    load = Loader()
    cache = CachedEndpoints(load)
    assert cache.active() == []
    assert cache.active() == []
    assert load.calls == 1


def test_cached_endpoints_have_no_expiry_within_a_batch_and_reload_after_invalidate() -> None:
    # An endpoint disabled mid-batch is still listed for that batch (the worker reads the endpoint
    # itself before each attempt), and gone from the next one's listing
    load = Loader(make_endpoint(endpoint_id="ep_1"), make_endpoint(endpoint_id="ep_2"))
    cache = CachedEndpoints(load)
    assert ids(cache.active()) == ["ep_1", "ep_2"]
    load.endpoints[1] = make_endpoint(endpoint_id="ep_2", active=False)
    assert ids(cache.active()) == ["ep_1", "ep_2"]
    cache.invalidate()
    cache.invalidate()  # invalidating twice costs no listing
    assert load.calls == 1
    assert ids(cache.active()) == ["ep_1"]
    assert load.calls == 2


def test_a_client_s_private_test_event_reaches_its_own_endpoints_only() -> None:
    own = make_endpoint(endpoint_id="ep_own", client_id="cl_1", event_types=["*"])
    admin = make_endpoint(endpoint_id="ep_admin", client_id="cl_admin", audience="all", event_types=["*"])
    private = PublishedEvent(**{**event().__dict__, "private": True})

    assert ids(matching([own, admin], private, {"type": "key.rotated", "data": {}})) == ["ep_own"]
    # a real event about the same client reaches both
    assert ids(matching([own, admin], event(), {"type": "key.rotated", "data": {}})) == ["ep_own", "ep_admin"]


@pytest.mark.parametrize("event_type", ["message.attempt.exhausted", "endpoint.disabled", "endpoint.enabled"])
def test_an_endpoint_never_hears_about_itself(event_type: str) -> None:
    dead = make_endpoint(endpoint_id="ep_dead", client_id="cl_1", event_types=["*"])
    other = make_endpoint(endpoint_id="ep_other", client_id="cl_1", event_types=["*"])
    about_dead = event(event_type, endpoint_id="ep_dead")

    assert ids(matching([dead, other], about_dead, {"type": event_type, "data": about_dead.data})) == ["ep_other"]
