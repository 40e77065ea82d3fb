"""Managing webhook endpoints (functions.webhooks.logic.endpoints) and the operators' actions on
deliveries (functions.webhooks.logic.operations): URL and header checks, ownership, If-Match,
key rotation, re-enabling, replay and recover."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.webhooks.logic import endpoints as logic
from functions.webhooks.logic import operations, signing
from functions.webhooks.logic.delivery import DeliveryEngine
from functions.webhooks.logic.endpoints import Owner
from functions.webhooks.logic.model import Delivery, Endpoint, SigningKey
from gateway_core.clock import iso
from gateway_core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
)
from gateway_core.events import event_item
from gateway_core.preconditions import ABSENT
from gateway_core.ssrf import SsrfPolicy
from tests.unit.webhook_fakes import (
    ACTOR,
    DLV_ID,
    EP_ID,
    Clock,
    FakeDeliveryStore,
    FakeEndpointStore,
    FakeQueue,
    FakeSender,
    FakeVault,
    Scheduled,
    answer,
    make_delivery,
    make_endpoint,
    signing_key,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = SsrfPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), require_https=True)
STRICT = SsrfPolicy()
CLIENT = Owner(client_id="cl_1", admin=False)
OTHER = Owner(client_id="cl_2", admin=False)
ADMIN = Owner(client_id="cl_admin", admin=True)


def spec(**overrides: Any) -> dict[str, Any]:
    return {"name": "receiver", "url": "https://hooks.example.com/in", "event_types": ["key.*"], **overrides}


def created(
    store: FakeEndpointStore, vault: FakeVault, owner: Owner = CLIENT, **overrides: Any
) -> tuple[Endpoint, str]:
    return logic.create(store, vault, spec(**overrides), owner, ACTOR, NOW, POLICY)


# -- the URL -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in",
        "https://hooks.example.com/in?token=abc&x=1",  # a query often carries the receiver's token
        "https://hooks.example.com:8443/",
        "http://127.0.0.1:9000/hook",  # plaintext to an allowlisted address
        "https://127.0.0.1/hook",
    ],
)
def test_urls_accepted(url: str) -> None:
    assert logic.check_url(url, POLICY) == url


@pytest.mark.parametrize(
    ("url", "policy"),
    [
        ("http://127.0.0.1:9000/hook", STRICT),  # loopback only when allowlisted
        ("https://10.0.0.5/hook", POLICY),
        ("https://192.168.1.1/hook", POLICY),
        ("https://169.254.169.254/latest/meta-data", POLICY),
        ("https://[::1]/hook", POLICY),
        ("https://localhost/hook", POLICY),
        ("https://metadata.google.internal/", POLICY),
        ("https://2130706433/", POLICY),  # 127.0.0.1 spelled as a number
        ("http://hooks.example.com/in", POLICY),  # plaintext to a public host
        ("https://hooks.example.com/in#frag", POLICY),
        ("https://hooks.example.com/in?x=1#frag", POLICY),
        ("https://user:pw@hooks.example.com/in", POLICY),
        ("ftp://hooks.example.com/in", POLICY),
        ("https:///nohost", POLICY),
        ("https://hooks.example.com:99999/", POLICY),
        ("not a url", POLICY),
    ],
)
def test_urls_refused(url: str, policy: SsrfPolicy) -> None:
    with pytest.raises(ValidationFailed) as refused:
        logic.check_url(url, policy)
    assert refused.value.code == "invalid_url"


def test_private_address_is_accepted_when_allowlisted() -> None:
    policy = SsrfPolicy(allow_networks=(ipaddress.ip_network("10.0.0.0/24"),))
    assert logic.check_url("http://10.0.0.5/hook", policy) == "http://10.0.0.5/hook"
    with pytest.raises(ValidationFailed):
        logic.check_url("http://10.0.1.5/hook", policy)


def test_create_and_update_check_the_url() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    with pytest.raises(ValidationFailed):
        created(store, vault, url="https://10.1.2.3/")
    assert store.items == {}
    endpoint, _ = created(store, vault)
    with pytest.raises(ValidationFailed):
        logic.update(store, endpoint.endpoint_id, {"url": "https://x.example/#f"}, CLIENT, ACTOR, NOW, 1, POLICY)
    assert store.items[endpoint.endpoint_id].version == 1


# -- headers and event types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Content-Type": "text/plain"}, "reserved_header"),
        ({"content-length": "1"}, "reserved_header"),
        ({"HOST": "evil.example"}, "reserved_header"),
        ({"User-Agent": "me"}, "reserved_header"),
        ({"webhook-id": "x"}, "reserved_header"),
        ({"Webhook-Signature": "v1,x"}, "reserved_header"),
        ({"WEBHOOK-anything": "x"}, "reserved_header"),
        ({"X-A": "1", "x-a": "2"}, "invalid_header"),  # the same header twice
        ({"bad name": "x"}, "invalid_header"),
        ({"X-Bad": "a\r\nInjected: 1"}, "invalid_header"),
        ({"X-Bad": "a\nb"}, "invalid_header"),
        ({"": "x"}, "invalid_header"),
    ],
)
def test_headers_refused(headers: dict[str, str], code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        logic.check_headers(headers)
    assert refused.value.code == code


def test_custom_headers_accepted() -> None:
    headers = {"Authorization": "Bearer t", "X-Tenant": "t1", "X-Webhook": "not reserved"}
    assert logic.check_headers(headers) == headers


@pytest.mark.parametrize(
    "pattern", ["key.exploded", "nope.*", "Key.rotated", "key", "key.", "*.rotated", "client.created.*"]
)
def test_unknown_event_types_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        logic.check_event_types(["key.rotated", pattern])
    assert refused.value.code == "unknown_event_type"


def test_event_types_accepted_and_deduplicated() -> None:
    patterns = ["key.rotated", "*", "client.*", "payment.*", "message.attempt.exhausted", "key.rotated"]
    assert logic.check_event_types(patterns) == [
        "key.rotated",
        "*",
        "client.*",
        "payment.*",
        "message.attempt.exhausted",
    ]


# -- who may see and change which --------------------------------------------------------------


def test_a_client_creates_its_own_endpoint_with_audience_own() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, secret = created(store, vault, headers={"X-Tenant": "t1"})
    assert endpoint.client_id == "cl_1"
    assert endpoint.audience == "own"
    assert store.items[endpoint.endpoint_id] == endpoint
    assert endpoint.endpoint_id.startswith("ep_")
    # The secret is shown once and stored only sealed
    assert secret.startswith("whsec_")
    [key] = endpoint.keys
    assert vault.decrypt(endpoint.endpoint_id, key.ciphertext) == secret
    assert secret.encode() not in key.ciphertext.split(b"|")[0]
    assert "whsec_" not in str(endpoint.public())
    assert (endpoint.method, endpoint.timeout_s, endpoint.max_retries, endpoint.ordering, endpoint.signing) == (
        "POST",
        15,
        7,
        "none",
        "v1",
    )


def test_v1a_endpoint_shows_its_public_key() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, shown = created(store, vault, signing="v1a")
    assert shown.startswith("whpk_")
    [key] = endpoint.keys
    assert key.public_key == shown
    assert endpoint.public()["public_key"] == shown
    assert vault.decrypt(endpoint.endpoint_id, key.ciphertext).startswith("whsk_")


def test_a_client_cannot_create_for_another_client() -> None:
    store = FakeEndpointStore()
    with pytest.raises(Forbidden):
        created(store, FakeVault(), client_id="cl_2")
    assert store.items == {}


def test_audience_all_only_for_an_admin_s_own_endpoint() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    own, _ = created(store, vault, owner=ADMIN)
    for_client, _ = created(store, vault, owner=ADMIN, client_id="cl_1")
    explicit_self, _ = created(store, vault, owner=ADMIN, client_id="cl_admin")
    assert (own.client_id, own.audience) == ("cl_admin", "all")
    assert (for_client.client_id, for_client.audience) == ("cl_1", "own")
    assert explicit_self.audience == "all"


def test_another_client_s_endpoint_is_not_found() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, _ = created(store, vault)
    eid = endpoint.endpoint_id

    with pytest.raises(NotFound):
        logic.get(store, eid, OTHER)
    with pytest.raises(NotFound):
        logic.update(store, eid, {"name": "x"}, OTHER, ACTOR, NOW, 1, POLICY)
    with pytest.raises(NotFound):
        logic.delete(store, eid, OTHER, ACTOR, 1)
    with pytest.raises(NotFound):
        logic.rotate(store, vault, eid, OTHER, ACTOR, NOW, 3600)
    with pytest.raises(NotFound):
        logic.get(store, "ep_missing", ADMIN)
    # Its owner and an admin see it
    assert logic.get(store, eid, CLIENT) == endpoint == logic.get(store, eid, ADMIN)
    assert store.items[eid] == endpoint


# -- If-Match ----------------------------------------------------------------------------------


def test_update_needs_if_match() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, _ = created(store, vault)
    eid = endpoint.endpoint_id

    with pytest.raises(PreconditionRequired):  # 428
        logic.update(store, eid, {"name": "x"}, CLIENT, ACTOR, NOW, ABSENT, POLICY)
    with pytest.raises(PreconditionFailed):  # 412
        logic.update(store, eid, {"name": "x"}, CLIENT, ACTOR, NOW, 7, POLICY)
    assert store.items[eid] == endpoint

    later = NOW + timedelta(minutes=1)
    after = logic.update(store, eid, {"name": "renamed"}, CLIENT, ACTOR, later, 1, POLICY)
    assert (after.name, after.version, after.updated_at) == ("renamed", 2, iso(later))
    # `*` (None) takes whatever version is there
    assert logic.update(store, eid, {"description": "d"}, CLIENT, ACTOR, NOW, None, POLICY).version == 3
    assert store.actions == ["webhook.create", "webhook.update", "webhook.update"]


def test_update_that_loses_a_race_is_412_or_409() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, _ = created(store, vault)
    store.race_next_write = True
    with pytest.raises(PreconditionFailed):
        logic.update(store, endpoint.endpoint_id, {"name": "x"}, CLIENT, ACTOR, NOW, 1, POLICY)
    store.race_next_write = True
    with pytest.raises(Conflict):
        logic.update(store, endpoint.endpoint_id, {"name": "x"}, CLIENT, ACTOR, NOW, None, POLICY)


def test_update_checks_headers_and_event_types() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, _ = created(store, vault)
    with pytest.raises(ValidationFailed):
        logic.update(store, endpoint.endpoint_id, {"headers": {"Webhook-Id": "x"}}, CLIENT, ACTOR, NOW, 1, POLICY)
    with pytest.raises(ValidationFailed):
        logic.update(store, endpoint.endpoint_id, {"event_types": ["key.nope"]}, CLIENT, ACTOR, NOW, 1, POLICY)
    assert store.items[endpoint.endpoint_id] == endpoint


def test_reactivating_by_update_resets_health() -> None:
    store = FakeEndpointStore(
        make_endpoint(
            active=False,
            disabled_reason="gone",
            disabled_at="2026-12-01T00:00:00.000Z",
            consecutive_failures=9,
            failing_since="2026-11-20T00:00:00.000Z",
            breaker_open_until=1e12,
        )
    )
    after = logic.update(store, EP_ID, {"active": True}, CLIENT, ACTOR, NOW, 1, POLICY)
    assert (after.active, after.disabled_reason, after.disabled_at) == (True, None, None)
    assert (after.consecutive_failures, after.failing_since, after.breaker_open_until) == (0, None, 0.0)
    assert store.items[EP_ID] == after  # the reset health is stored, not only shown
    assert store.actions == ["webhook.enable"]
    # endpoint.enabled is written in the same transaction
    assert store.events.published() == [
        ("endpoint.enabled", {"endpoint_id": EP_ID, "url": "https://hooks.example.com/in"}, "cl_1")
    ]

    # And `active: true` on an active endpoint is a plain update: nothing announced again
    logic.update(store, EP_ID, {"active": True}, CLIENT, ACTOR, NOW, 2, POLICY)
    assert store.actions == ["webhook.enable", "webhook.update"]
    assert store.events.types() == ["endpoint.enabled"]


def test_deactivating_by_update_disables_it_manually_once() -> None:
    store = FakeEndpointStore(make_endpoint(consecutive_failures=2, failing_since="2026-12-01T00:00:00.000Z"))
    later = NOW + timedelta(minutes=1)

    after = logic.update(store, EP_ID, {"active": False}, CLIENT, ACTOR, later, 1, POLICY)

    # Then it is disabled with reason manual, announced once in the same transaction
    assert (after.active, after.disabled_reason, after.disabled_at, after.version) == (False, "manual", iso(later), 2)
    assert store.items[EP_ID] == after
    assert store.actions == ["webhook.disable"]
    assert store.events.published() == [
        (
            "endpoint.disabled",
            {
                "endpoint_id": EP_ID,
                "url": "https://hooks.example.com/in",
                "reason": "manual",
                "disabled_at": iso(later),
            },
            "cl_1",
        )
    ]
    # The worker's health is left as it was (only re-enabling resets it)
    assert (store.items[EP_ID].consecutive_failures, store.items[EP_ID].failing_since) == (
        2,
        "2026-12-01T00:00:00.000Z",
    )

    # And `active: false` again changes nothing further: no second endpoint.disabled
    again = logic.update(store, EP_ID, {"active": False}, CLIENT, ACTOR, NOW + timedelta(minutes=2), 2, POLICY)
    assert (again.disabled_reason, again.disabled_at) == ("manual", iso(later))
    assert store.events.types() == ["endpoint.disabled"]
    assert store.actions == ["webhook.disable", "webhook.update"]


def test_an_update_that_loses_a_race_writes_no_event() -> None:
    store = FakeEndpointStore(make_endpoint())
    store.race_next_write = True
    with pytest.raises(PreconditionFailed):
        logic.update(store, EP_ID, {"active": False}, CLIENT, ACTOR, NOW, 1, POLICY)
    assert store.events.items == []
    assert store.items[EP_ID].active is True
    assert store.actions == []


def test_the_worker_s_fields_survive_an_update_that_raced_them() -> None:
    # Given an ordered endpoint an admin read, and the worker recording failures (opening the
    # breaker), numbering a delivery and settling one before the admin's write lands
    store = FakeEndpointStore(make_endpoint(ordering="ordered", consecutive_failures=4, next_seq=3, settled_seq=2))
    read = store.items[EP_ID]

    def worker() -> None:
        store.record_failure(read, "2026-12-02T11:59:00.000Z", NOW.timestamp() + 30)
        assert store.take_seq(EP_ID) == 4
        store.advance_order(EP_ID, 3)

    store.before_next_replace = worker

    # When the admin's PATCH (at the version read: the worker's writes leave it alone) lands
    after = logic.update(store, EP_ID, {"name": "renamed", "timeout_s": 5}, ADMIN, ACTOR, NOW, 1, POLICY)

    # Then the admin's fields are written and the worker's are as the worker left them
    stored = store.items[EP_ID]
    assert (stored.name, stored.timeout_s, stored.version) == ("renamed", 5, 2)
    assert (stored.consecutive_failures, stored.failing_since, stored.breaker_open_until) == (
        5,
        "2026-12-02T11:59:00.000Z",
        NOW.timestamp() + 30,
    )
    assert (stored.next_seq, stored.settled_seq) == (4, 3)
    assert after.version == stored.version
    assert store.events.items == []


def test_an_update_that_raced_the_worker_disabling_keeps_it_disabled() -> None:
    store = FakeEndpointStore(make_endpoint())
    read = store.items[EP_ID]
    disabled = event_item("endpoint.disabled", {"endpoint_id": EP_ID, "reason": "gone"}, client_id="cl_1")
    store.before_next_replace = lambda: store.disable(read, "gone", "2026-12-02T11:59:00.000Z", disabled)

    # the worker's disable made a new version: the change based on the earlier read is refused
    with pytest.raises(PreconditionFailed):
        logic.update(store, EP_ID, {"name": "renamed"}, ADMIN, ACTOR, NOW, 1, POLICY)

    # endpoint.disabled was published; the endpoint must not be active again without endpoint.enabled
    assert store.events.types() == ["endpoint.disabled"]
    assert (store.items[EP_ID].active, store.items[EP_ID].disabled_reason) == (False, "gone")


def test_re_enabling_resets_the_health_the_worker_wrote_meanwhile() -> None:
    store = FakeEndpointStore(make_endpoint(active=False, disabled_reason="gone", consecutive_failures=3))
    read = store.items[EP_ID]
    store.before_next_replace = lambda: store.record_failure(read, "2026-12-02T11:59:00.000Z", 1e12)

    operations.enable(store, EP_ID, CLIENT, ACTOR, NOW)

    stored = store.items[EP_ID]
    assert (stored.active, stored.consecutive_failures, stored.failing_since, stored.breaker_open_until) == (
        True,
        0,
        None,
        0.0,
    )


def test_delete_with_and_without_a_version() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    one, _ = created(store, vault)
    two, _ = created(store, vault)
    with pytest.raises(PreconditionFailed):
        logic.delete(store, one.endpoint_id, CLIENT, ACTOR, 5)
    logic.delete(store, one.endpoint_id, CLIENT, ACTOR, 1)
    logic.delete(store, two.endpoint_id, CLIENT, ACTOR, None)
    assert store.items == {}


# -- rotation ----------------------------------------------------------------------------------


def test_rotate_keeps_the_previous_key_for_the_grace() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, first_secret = created(store, vault)
    eid = endpoint.endpoint_id
    at = NOW + timedelta(hours=1)

    after, second_secret = logic.rotate(store, vault, eid, CLIENT, ACTOR, at, 3600)

    # Then the new key is current and first; the previous one retires at now + grace
    new, previous = after.keys
    assert second_secret.startswith("whsec_")
    assert second_secret != first_secret
    assert new.retires_at is None
    assert vault.decrypt(eid, new.ciphertext) == second_secret
    assert previous.key_id == endpoint.keys[0].key_id
    assert previous.retires_at == iso(at + timedelta(hours=1))
    assert after.version == 2
    assert store.items[eid] == after
    assert after.public()["previous_key_retires_at"] == previous.retires_at
    assert store.actions[-1] == "webhook.rotate_secret"


def test_rotating_again_within_the_grace_keeps_each_key_s_own_retirement() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, _ = created(store, vault)
    eid = endpoint.endpoint_id
    first_rotation, _ = logic.rotate(store, vault, eid, CLIENT, ACTOR, NOW, 3600)
    later = NOW + timedelta(minutes=10)

    after, _ = logic.rotate(store, vault, eid, CLIENT, ACTOR, later, 3600)

    newest, middle, oldest = after.keys
    assert newest.retires_at is None
    assert middle.key_id == first_rotation.keys[0].key_id
    assert middle.retires_at == iso(later + timedelta(hours=1))
    assert oldest.key_id == endpoint.keys[0].key_id
    assert oldest.retires_at == iso(NOW + timedelta(hours=1))


def test_rotate_drops_keys_past_their_grace() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, _ = created(store, vault)
    eid = endpoint.endpoint_id
    first, _ = logic.rotate(store, vault, eid, CLIENT, ACTOR, NOW, 3600)

    after, _ = logic.rotate(store, vault, eid, CLIENT, ACTOR, NOW + timedelta(hours=2), 3600)

    assert [k.key_id for k in after.keys] == [after.keys[0].key_id, first.keys[0].key_id]
    assert endpoint.keys[0].key_id not in [k.key_id for k in after.keys]


def test_rotate_with_no_grace_drops_the_previous_key_at_once() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, _ = created(store, vault)
    logic.rotate(store, vault, endpoint.endpoint_id, CLIENT, ACTOR, NOW, 3600)
    after, secret = logic.rotate(store, vault, endpoint.endpoint_id, CLIENT, ACTOR, NOW, 0)
    [only] = after.keys
    assert only.retires_at is None
    assert vault.decrypt(endpoint.endpoint_id, only.ciphertext) == secret
    assert after.public()["previous_key_retires_at"] is None


def test_rotate_a_v1a_endpoint_gives_a_new_public_key() -> None:
    store, vault = FakeEndpointStore(), FakeVault()
    endpoint, first_public = created(store, vault, signing="v1a")
    after, public = logic.rotate(store, vault, endpoint.endpoint_id, CLIENT, ACTOR, NOW, 60)
    assert public.startswith("whpk_")
    assert public != first_public
    assert after.public()["public_key"] == public
    assert [k.public_key for k in after.keys] == [public, first_public]


# -- operations: enable, replay, recover, test send --------------------------------------------


def test_enable_resets_health_and_publishes_once() -> None:
    store = FakeEndpointStore(
        make_endpoint(active=False, disabled_reason="failing", consecutive_failures=40, breaker_open_until=1e12)
    )
    after = operations.enable(store, EP_ID, CLIENT, ACTOR, NOW)
    again = operations.enable(store, EP_ID, CLIENT, ACTOR, NOW)

    assert (after.active, after.disabled_reason, after.consecutive_failures, after.breaker_open_until) == (
        True,
        None,
        0,
        0.0,
    )
    assert again == after
    assert store.items[EP_ID] == after
    assert store.events.published() == [
        ("endpoint.enabled", {"endpoint_id": EP_ID, "url": "https://hooks.example.com/in"}, "cl_1")
    ]
    assert store.actions == ["webhook.enable"]


def test_enable_that_loses_a_race_neither_enables_nor_announces() -> None:
    store = FakeEndpointStore(make_endpoint(active=False, disabled_reason="gone"))
    store.race_next_write = True
    with pytest.raises(Conflict):
        operations.enable(store, EP_ID, CLIENT, ACTOR, NOW)
    assert store.items[EP_ID].active is False
    assert store.events.items == []


def test_enable_of_another_client_s_endpoint_is_not_found() -> None:
    store = FakeEndpointStore(make_endpoint(active=False))
    with pytest.raises(NotFound):
        operations.enable(store, EP_ID, OTHER, ACTOR, NOW)
    assert store.events.items == []
    assert store.items[EP_ID].active is False


def _ops(
    *deliveries: Delivery, endpoint: Endpoint | None = None
) -> tuple[FakeEndpointStore, FakeDeliveryStore, FakeQueue]:
    store = FakeEndpointStore(endpoint or make_endpoint(max_retries=3))
    records = FakeDeliveryStore(store)
    for d in deliveries:
        records.items[d.delivery_id] = d
    return store, records, FakeQueue()


def test_replay_reopens_with_a_fresh_budget_and_queues() -> None:
    abandoned = make_delivery(status="abandoned", attempts=4, max_attempts=4, last_status=500)
    store, records, queue = _ops(abandoned)

    result = operations.replay(store, records, queue, EP_ID, DLV_ID, CLIENT, NOW)

    assert (result.status, result.attempts, result.max_attempts, result.trigger) == ("pending", 4, 4 + 1 + 3, "replay")
    assert result.next_attempt_at == iso(NOW)
    # Its retry schedule counts from here
    assert result.retry_base == 4
    # The message is due a second after the reopen (sent before it)
    assert queue.scheduled == [Scheduled(DLV_ID, 4, NOW.timestamp() + 1)]


def test_a_replayed_delivery_is_attempted_by_the_worker() -> None:
    clock = Clock(NOW.timestamp())
    abandoned = make_delivery(status="abandoned", attempts=1, max_attempts=1)
    store, records, queue = _ops(abandoned)
    sender = FakeSender(clock, answer(200))
    engine = DeliveryEngine(
        deliveries=records,
        endpoints=store,
        queue=queue,
        vault=FakeVault(),
        sender=sender,
        clock=clock,
    )
    store.items[EP_ID] = replace(store.items[EP_ID], keys=[_key(FakeVault(), EP_ID, signing.new_symmetric_secret())])
    operations.replay(store, records, queue, EP_ID, DLV_ID, CLIENT, NOW)

    # Early, the message hops (its delivery is due, the message not yet); at its time it goes
    scheduled = queue.pop()
    assert engine.process(scheduled.message()).outcome == "not_due"
    clock.at(queue.pop().not_before)
    assert engine.process(scheduled.message()).outcome == "delivered"
    assert [a.attempt for a in records.attempts_of(DLV_ID)] == [2]
    assert sender.calls[0].at == NOW.timestamp() + 1


def test_replay_is_refused_while_a_lease_is_held() -> None:
    leased = make_delivery(status="retrying", attempts=2, lease_until=NOW.timestamp() + 10)
    store, records, queue = _ops(leased)
    with pytest.raises(Conflict) as refused:
        operations.replay(store, records, queue, EP_ID, DLV_ID, CLIENT, NOW)
    assert refused.value.code == "in_progress"
    assert records.items[DLV_ID] == leased
    assert queue.scheduled == []
    # An expired lease (a killed worker's) does not hold it up
    operations.replay(store, records, queue, EP_ID, DLV_ID, CLIENT, NOW + timedelta(seconds=11))
    assert records.items[DLV_ID].status == "pending"


def test_replay_of_a_changed_delivery_is_409() -> None:
    store, records, queue = _ops(make_delivery(status="failed", attempts=2))

    class Racing(FakeDeliveryStore):
        def reopen(self, delivery: Delivery, max_attempts: int, trigger: str, now_iso: str) -> bool:
            records.items[DLV_ID] = replace(records.items[DLV_ID], attempts=3)
            return records.reopen(delivery, max_attempts, trigger, now_iso)

        def get(self, delivery_id: str) -> Delivery | None:
            return records.get(delivery_id)

    with pytest.raises(Conflict) as refused:
        operations.replay(store, Racing(), queue, EP_ID, DLV_ID, CLIENT, NOW)
    assert refused.value.code == "concurrent_change"
    assert (records.items[DLV_ID].status, records.items[DLV_ID].trigger) == ("failed", "event")
    # Its message went first, for the count read: it finds the delivery moved on and sends nothing
    assert queue.scheduled == [Scheduled(DLV_ID, 2, NOW.timestamp() + 1)]
    clock = Clock(NOW.timestamp() + 1)
    sender = FakeSender(clock)
    engine = DeliveryEngine(
        deliveries=records,
        endpoints=store,
        queue=FakeQueue(),
        vault=FakeVault(),
        sender=sender,
        clock=clock,
    )
    assert engine.process(queue.pop().message()).outcome == "settled"
    assert sender.calls == []


def test_replay_that_races_a_worker_s_claim_is_refused_by_the_lease() -> None:
    # Given a retrying delivery with no lease when read, and a worker claiming it before the reopen
    retrying = make_delivery(status="retrying", attempts=2, max_attempts=8, next_attempt_at=iso(NOW))
    store, records, queue = _ops(retrying)

    class Racing(FakeDeliveryStore):
        def reopen(self, delivery: Delivery, max_attempts: int, trigger: str, now_iso: str) -> bool:
            assert records.claim(records.items[DLV_ID], NOW.timestamp(), NOW.timestamp() + 20)
            return records.reopen(delivery, max_attempts, trigger, now_iso)

        def get(self, delivery_id: str) -> Delivery | None:
            return records.get(delivery_id)

    # When it is replayed
    with pytest.raises(Conflict) as refused:
        operations.replay(store, Racing(), queue, EP_ID, DLV_ID, CLIENT, NOW)

    # Then the reopen is refused: the worker's attempt keeps its delivery as it was
    assert refused.value.code == "concurrent_change"
    current = records.items[DLV_ID]
    assert (current.status, current.max_attempts, current.trigger, current.retry_base) == ("retrying", 8, "event", 0)
    assert current.lease_until == NOW.timestamp() + 20


def test_reopen_is_refused_while_leased_and_allowed_once_the_lease_ended() -> None:
    leased = make_delivery(status="retrying", attempts=2, lease_until=NOW.timestamp() + 10)
    _, records, _ = _ops(leased)
    assert not records.reopen(leased, 6, "recover", iso(NOW))
    assert not records.reopen(leased, 6, "recover", iso(NOW + timedelta(seconds=9)))
    assert records.items[DLV_ID] == leased
    assert records.reopen(leased, 6, "recover", iso(NOW + timedelta(seconds=10)))
    assert (records.items[DLV_ID].status, records.items[DLV_ID].retry_base) == ("pending", 2)


def test_replay_of_another_endpoint_s_delivery_is_not_found() -> None:
    other = make_endpoint(endpoint_id="ep_2")
    store, records, queue = _ops(make_delivery(status="failed"))
    store.items["ep_2"] = other
    with pytest.raises(NotFound):
        operations.replay(store, records, queue, "ep_2", DLV_ID, CLIENT, NOW)
    with pytest.raises(NotFound):
        operations.replay(store, records, queue, EP_ID, DLV_ID, OTHER, NOW)
    assert queue.scheduled == []


def test_recover_reopens_failures_since_a_time() -> None:
    since = NOW - timedelta(hours=1)
    old = make_delivery(delivery_id="dlv_old", status="failed", created_at=iso(since - timedelta(seconds=1)))
    failed = make_delivery(delivery_id="dlv_f", status="failed", attempts=1, created_at=iso(since))
    abandoned = make_delivery(delivery_id="dlv_a", status="abandoned", attempts=8, created_at=iso(NOW))
    delivered = make_delivery(delivery_id="dlv_d", status="delivered", attempts=1, created_at=iso(NOW))
    retrying = make_delivery(delivery_id="dlv_r", status="retrying", attempts=1, created_at=iso(NOW))
    store, records, queue = _ops(old, failed, abandoned, delivered, retrying)

    reopened = operations.recover(store, records, queue, EP_ID, since, CLIENT, NOW)

    assert sorted(reopened) == ["dlv_a", "dlv_f"]
    assert (records.items["dlv_f"].status, records.items["dlv_f"].max_attempts, records.items["dlv_f"].trigger) == (
        "pending",
        1 + 1 + 3,
        "recover",
    )
    assert records.items["dlv_a"].max_attempts == 8 + 1 + 3
    assert (records.items["dlv_a"].retry_base, records.items["dlv_f"].retry_base) == (8, 1)
    assert sorted(queue.scheduled, key=lambda s: s.delivery_id) == [
        Scheduled("dlv_a", 8, NOW.timestamp() + 1),
        Scheduled("dlv_f", 1, NOW.timestamp() + 1),
    ]
    assert records.items["dlv_old"].status == "failed"
    assert records.items["dlv_d"].status == "delivered"
    assert records.items["dlv_r"].status == "retrying"


def test_recover_of_another_client_s_endpoint_is_not_found() -> None:
    store, records, queue = _ops(make_delivery(status="failed"))
    with pytest.raises(NotFound):
        operations.recover(store, records, queue, EP_ID, NOW - timedelta(days=1), OTHER, NOW)
    assert queue.scheduled == []


def _key(vault: FakeVault, endpoint_id: str, secret: str) -> SigningKey:
    return signing_key(vault, endpoint_id, secret, "2026-12-01T00:00:00.000Z")


def test_test_send_makes_one_recorded_attempt() -> None:
    clock = Clock(NOW.timestamp())
    vault = FakeVault()
    endpoint = make_endpoint(ordering="ordered", keys=[_key(vault, EP_ID, signing.new_symmetric_secret())])
    store = FakeEndpointStore(endpoint)
    records = FakeDeliveryStore(store)
    sender = FakeSender(clock, answer(200))
    engine = DeliveryEngine(
        deliveries=records,
        endpoints=store,
        queue=FakeQueue(),
        vault=vault,
        sender=sender,
        clock=clock,
    )

    delivery, attempt = operations.test_send(engine, records, endpoint, "key.rotated", {"key_id": "k"}, NOW)

    assert attempt is not None
    assert attempt.outcome == "success"
    assert (delivery.status, delivery.trigger, delivery.max_attempts, delivery.seq) == ("delivered", "test", 1, 0)
    # Out of the endpoint's order: its sequence is untouched
    assert (store.items[EP_ID].next_seq, store.items[EP_ID].settled_seq) == (0, 0)
    assert sender.calls[0].headers["webhook-id"] == delivery.event_id


def test_a_failed_test_send_leaves_the_endpoint_alone() -> None:
    clock = Clock(NOW.timestamp())
    vault = FakeVault()
    endpoint = make_endpoint(consecutive_failures=4, keys=[_key(vault, EP_ID, signing.new_symmetric_secret())])
    store = FakeEndpointStore(endpoint)
    records = FakeDeliveryStore(store)
    queue = FakeQueue()
    engine = DeliveryEngine(
        deliveries=records,
        endpoints=store,
        queue=queue,
        vault=vault,
        sender=FakeSender(clock, answer(410)),
        clock=clock,
    )

    delivery, attempt = operations.test_send(engine, records, endpoint, "key.rotated", {"key_id": "k"}, NOW)

    # A 410 to a test is the caller's answer: the test failed, the endpoint is neither disabled nor counted
    assert attempt is not None
    assert (attempt.outcome, attempt.status_code, attempt.next_attempt_at) == ("failure", 410, None)
    assert (delivery.status, delivery.attempts, delivery.trigger) == ("failed", 1, "test")
    assert store.items[EP_ID] == endpoint
    assert (queue.scheduled, queue.dead, store.events.items) == ([], [], [])


@pytest.mark.parametrize(
    ("event_type", "data", "code"),
    [("key.exploded", {}, "unknown_event_type"), ("key.rotated", {"x": "y" * (64 * 1024)}, "test_data_too_large")],
)
def test_test_send_checks_its_input(event_type: str, data: dict[str, Any], code: str) -> None:
    clock = Clock(NOW.timestamp())
    records = FakeDeliveryStore()
    sender = FakeSender(clock)
    engine = DeliveryEngine(
        deliveries=records,
        endpoints=FakeEndpointStore(),
        queue=FakeQueue(),
        vault=FakeVault(),
        sender=sender,
        clock=clock,
    )
    with pytest.raises(ValidationFailed) as refused:
        operations.test_send(engine, records, make_endpoint(), event_type, data, NOW)
    assert refused.value.code == code
    assert records.items == {}
    assert sender.calls == []


def test_ids_of_a_shape_never_issued_are_not_found_without_a_read() -> None:
    # An endpoint stored under an id the API never issues (and a 2 KB one DynamoDB would refuse)
    store, records, queue = _ops(make_delivery(delivery_id="dlv_1", status="failed"))
    store.items["ep_1"] = make_endpoint(endpoint_id="ep_1")
    for endpoint_id in ("ep_1", "ep_" + "a" * 2048, EP_ID.upper()):
        with pytest.raises(NotFound):
            logic.get(store, endpoint_id, ADMIN)
    with pytest.raises(NotFound) as refused:
        operations.replay(store, records, queue, EP_ID, "dlv_1", ADMIN, NOW)
    assert refused.value.code == "delivery_not_found"
    assert records.items["dlv_1"].status == "failed"
    assert queue.scheduled == []


@pytest.mark.parametrize("value", ["☃", "caf\u00e9", "a\u0007b", "x\u2028y", "\u00a0"])
def test_header_values_http_cannot_carry_are_refused(value: str) -> None:
    # (a value urllib3 could not encode would fail every attempt of every delivery)
    with pytest.raises(ValidationFailed) as refused:
        logic.check_headers({"X-Tenant": value})
    assert refused.value.code == "invalid_header"


def test_visible_ascii_spaces_and_tabs_pass() -> None:
    assert logic.check_headers({"X-Tenant": "acme corp\t~!"}) == {"X-Tenant": "acme corp\t~!"}
