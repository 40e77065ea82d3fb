"""Webhooks end to end through the local runtime: endpoints at loopback receivers, events from the
trigger and from the product's own changes (a key's rotation), Standard Webhooks signatures checked
with the `standardwebhooks` library (v1) and `cryptography` (v1a), retries on the accelerated
schedule (the shared runtime runs it 1000x faster: `webhookTimeScale=0.001`), replay, rotation,
disabling on 410, Retry-After, exhaustion and the DLQ's redrive, and who hears which event.

Every test makes its own client, keys, endpoints and receiver, and asserts only on those (an
admin's own endpoint hears every client's events, so those are matched by their data)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook, WebhookVerificationError

from tests.e2e.conftest import RunningGateway, eventually
from tests.e2e.test_product import ADMIN_KEY
from tests.webhook_receivers import Received, Receiver

TIME_SCALE = 0.001  # the product_gateway's webhookTimeScale
# One retry hop is an SQS delay of whole seconds plus the worker's poll: a few seconds at most.
ARRIVAL_S = 15.0

CreateEndpoint = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


@pytest.fixture
def admin(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        yield http


def _register(admin: httpx.Client, name: str) -> str:
    response = admin.post(
        "/api/v1/clients/register",
        json={
            "name": name,
            "client_type": "integration",
            "contact_email": "ops@hooks.example",
            "allowed_scopes": ["data:read", "webhooks:read", "webhooks:write"],
            "tier": "basic",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


def _new_key(admin: httpx.Client, client_id: str, name: str, scopes: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"client_id": client_id, "name": name}
    if scopes is not None:
        body["scopes"] = scopes
    response = admin.post("/api/v1/gateway/keys", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def client_id(admin: httpx.Client) -> str:
    """A client of this test's own: events about it reach only its endpoints (and admins')."""
    return _register(admin, f"Hooks {secrets.token_hex(4)}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def create_endpoint(admin: httpx.Client, receiver: Receiver) -> Iterator[CreateEndpoint]:
    """Creates endpoints (as admin unless another http client is given) and deletes them after the
    test: an admin's endpoint hears every event, and this test's receiver is about to close."""
    created: list[str] = []

    def create(path: str, event_types: list[str], http: httpx.Client | None = None, **fields: Any) -> dict[str, Any]:
        response = (http or admin).post(
            "/api/v1/webhooks",
            json={"name": f"hook {path}", "url": receiver.url_for(path), "event_types": event_types, **fields},
        )
        assert response.status_code == 201, response.text
        created.append(response.json()["endpoint_id"])
        return dict(response.json())

    yield create
    for endpoint_id in created:
        admin.delete(f"/api/v1/webhooks/{endpoint_id}")


def _trigger(admin: httpx.Client, event_type: str, data: dict[str, Any], client_id: str) -> str:
    response = admin.post(
        "/api/v1/events/trigger", json={"event_type": event_type, "data": data, "client_id": client_id}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["event_id"])


def _with_id(requests: list[Received], event_id: str) -> list[Received]:
    return [r for r in requests if r.headers.get("webhook-id") == event_id]


def _arrivals(receiver: Receiver, path: str, event_id: str, count: int) -> list[Received]:
    return list(
        eventually(
            lambda: (found := _with_id(receiver.requests_for(path), event_id)) and len(found) >= count and found,
            timeout=ARRIVAL_S,
            interval=0.05,
        )
    )


def _matching(receiver: Receiver, path: str, check: Callable[[Any], bool]) -> list[Received]:
    """Requests to `path` whose body passes `check` (an admin endpoint hears others' events too)."""
    return [r for r in receiver.requests_for(path) if check(r.json())]


def _deliveries(http: httpx.Client, endpoint_id: str) -> list[dict[str, Any]]:
    response = http.get(f"/api/v1/webhooks/{endpoint_id}/deliveries")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _delivery_of(http: httpx.Client, endpoint_id: str, event_id: str) -> dict[str, Any] | None:
    return next((d for d in _deliveries(http, endpoint_id) if d["event_id"] == event_id), None)


def _settled(http: httpx.Client, endpoint_id: str, event_id: str, status: str, attempts: int) -> dict[str, Any]:
    """Waits for the delivery of `event_id` to reach `status` after `attempts` attempts."""

    def check() -> dict[str, Any] | None:
        delivery = _delivery_of(http, endpoint_id, event_id)
        if delivery and delivery["status"] == status and delivery["attempts"] == attempts:
            return delivery
        return None

    return dict(eventually(check, timeout=ARRIVAL_S, interval=0.1))


def _attempts(http: httpx.Client, endpoint_id: str, delivery_id: str) -> list[dict[str, Any]]:
    response = http.get(f"/api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/attempts")
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda a: a["attempt"])


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _verify(secret: str, request: Received) -> Any:
    return Webhook(secret).verify(request.body, dict(request.headers))


def test_walkthrough_sign_retry_replay_rotate_and_key_rotated(
    admin: httpx.Client,
    client_id: str,
    receiver: Receiver,
    create_endpoint: CreateEndpoint,
) -> None:
    """Issue 13's Done-when, as a new user goes: endpoint, event, verification, retries, replay,
    secret rotation, and an API key's rotation delivered as `key.rotated`."""
    key = _new_key(admin, client_id, "to rotate")  # before the endpoints: its key.created is not theirs
    receiver.behave("/hook", fail_first=2, status=500)
    endpoint = create_endpoint("/hook", ["key.*"], client_id=client_id)
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert "secret" not in admin.get(f"/api/v1/webhooks/{endpoint['endpoint_id']}").json()
    subscribed = create_endpoint("/rotated", ["key.rotated"], client_id=client_id)  # for the last step

    data = {"note": "walkthrough", "marker": secrets.token_hex(8)}
    event_id = _trigger(admin, "key.rotated", data, client_id)
    assert event_id.startswith("msg_")

    # Failed twice (500), then answered 204: three requests, one webhook-id, each signed.
    arrived = _arrivals(receiver, "/hook", event_id, 3)
    assert [r.status for r in arrived] == [500, 500, 204]
    for request in arrived:
        body = _verify(secret, request)
        assert (body["type"], body["data"]) == ("key.rotated", data)
        assert abs(int(request.headers["webhook-timestamp"]) - request.wall) < 5
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(arrived[0].body.replace(b"walkthrough", b"walkthrougH"), dict(arrived[0].headers))
    with pytest.raises(WebhookVerificationError):
        _verify("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(), arrived[0])

    delivery = _settled(admin, endpoint["endpoint_id"], event_id, "delivered", 3)
    assert (delivery["event_type"], delivery["last_status"], delivery["trigger"]) == ("key.rotated", 204, "event")
    attempts = _attempts(admin, endpoint["endpoint_id"], delivery["delivery_id"])
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in attempts] == [
        (1, "failure", 500),
        (2, "failure", 500),
        (3, "success", 204),
    ]
    for failed in attempts[:2]:
        assert failed["error"] == "HTTP 500"
        assert failed["next_attempt_at"] is not None
        assert _epoch(failed["next_attempt_at"]) >= _epoch(failed["started_at"])
    assert attempts[2]["next_attempt_at"] is None
    assert attempts[1]["started_at"] >= attempts[0]["next_attempt_at"]
    assert attempts[2]["started_at"] >= attempts[1]["next_attempt_at"]

    # Replay: a fourth request, the same webhook-id, signed again.
    replayed = admin.post(f"/api/v1/webhooks/{endpoint['endpoint_id']}/deliveries/{delivery['delivery_id']}/replay")
    assert replayed.status_code == 202, replayed.text
    fourth = _arrivals(receiver, "/hook", event_id, 4)[3]
    assert fourth.status == 204
    assert _verify(secret, fourth)["data"] == data
    replayed_delivery = _settled(admin, endpoint["endpoint_id"], event_id, "delivered", 4)
    assert replayed_delivery["trigger"] == "replay"

    # Rotation: the next delivery is signed by the new secret and, for the grace, the old one.
    rotated = admin.post(f"/api/v1/webhooks/{endpoint['endpoint_id']}/rotate-secret", json={})
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != secret
    assert rotated.json()["endpoint"]["previous_key_retires_at"] is not None
    after = _arrivals(receiver, "/hook", _trigger(admin, "key.rotated", data, client_id), 1)[0]
    signatures = after.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    verified_by = []
    for signature in signatures:
        alone = {**after.headers, "webhook-signature": signature}
        verifying = []
        for candidate in (secret, new_secret):
            try:
                Webhook(candidate).verify(after.body, alone)
                verifying.append(candidate)
            except WebhookVerificationError:
                pass
        assert len(verifying) == 1, "each signature verifies with exactly one of the secrets"
        verified_by.extend(verifying)
    assert sorted(verified_by) == sorted([secret, new_secret])

    # The product's own change: rotating an API key delivers key.rotated with that key's id.
    rotation = admin.post(f"/api/v1/gateway/keys/{key['key_id']}/rotate", json={})
    assert rotation.status_code == 201, rotation.text
    # The endpoint heard the walkthrough's triggered key.rotated events too; this one is the key's.
    [request] = eventually(
        lambda: _matching(receiver, "/rotated", lambda b: "key" in b["data"]), timeout=ARRIVAL_S, interval=0.05
    )
    body = _verify(subscribed["secret"], request)
    assert body["type"] == "key.rotated"
    assert body["data"]["key"]["key_id"] == key["key_id"]
    assert body["data"]["key"]["rotated_to"] == rotation.json()["new_key"]["key_id"]
    assert key["api_key"] not in request.body.decode()
    assert rotation.json()["new_key"]["api_key"] not in request.body.decode()


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    admin: httpx.Client,
    client_id: str,
    receiver: Receiver,
    create_endpoint: CreateEndpoint,
) -> None:
    receiver.behave("/slow", delay=3)
    endpoint = create_endpoint("/slow", ["key.*"], client_id=client_id, timeout_s=1, max_retries=1)
    event_id = _trigger(admin, "key.created", {"marker": secrets.token_hex(8)}, client_id)
    assert len(_arrivals(receiver, "/slow", event_id, 2)) == 2  # the first timed out and was retried
    delivery = _settled(admin, endpoint["endpoint_id"], event_id, "abandoned", 2)
    attempts = _attempts(admin, endpoint["endpoint_id"], delivery["delivery_id"])
    assert [(a["outcome"], a["status_code"]) for a in attempts] == [("failure", None), ("failure", None)]
    for attempt in attempts:
        assert attempt["error"] == "no answer within 1 s"
        assert 900 <= attempt["latency_ms"] < 3000  # gave up before the receiver answered (3 s)
    assert attempts[0]["next_attempt_at"] is not None
    assert delivery["last_error"] == "no answer within 1 s"


def _disabled(admin: httpx.Client, endpoint_id: str) -> dict[str, Any] | None:
    """The endpoint, once it is disabled (None before)."""
    found: dict[str, Any] = admin.get(f"/api/v1/webhooks/{endpoint_id}").json()
    return None if found.get("active") else found


def test_410_disables_the_endpoint_and_publishes_endpoint_disabled(
    admin: httpx.Client,
    client_id: str,
    receiver: Receiver,
    create_endpoint: CreateEndpoint,
) -> None:
    watcher = create_endpoint("/disabled", ["endpoint.disabled"])  # the admin's: hears every client's
    receiver.behave("/gone", status=410)
    endpoint = create_endpoint("/gone", ["key.*"], client_id=client_id)
    create_endpoint("/sibling", ["key.*"], client_id=client_id)  # hears the same events, answers 204
    event_id = _trigger(admin, "key.created", {"marker": secrets.token_hex(8)}, client_id)

    delivery = _settled(admin, endpoint["endpoint_id"], event_id, "failed", 1)  # no retry after a 410
    assert delivery["last_status"] == 410
    # the worker disables the endpoint right after recording the attempt (milliseconds later)
    fetched = eventually(lambda: _disabled(admin, endpoint["endpoint_id"]))
    assert (fetched["active"], fetched["disabled_reason"]) == (False, "gone")
    assert fetched["disabled_at"] is not None
    [notice] = eventually(
        lambda: _matching(receiver, "/disabled", lambda b: b["data"].get("endpoint_id") == endpoint["endpoint_id"]),
        timeout=ARRIVAL_S,
        interval=0.05,
    )
    body = _verify(watcher["secret"], notice)
    assert body["type"] == "endpoint.disabled"
    assert (body["data"]["reason"], body["data"]["url"]) == ("gone", endpoint["url"])
    assert len(_with_id(receiver.requests_for("/gone"), event_id)) == 1

    # A disabled endpoint is sent nothing more.
    later = _trigger(admin, "key.created", {"marker": secrets.token_hex(8)}, client_id)
    # Once the sibling has it, the fan-out is done: the disabled endpoint got no delivery, or (had
    # the listing lagged) one the worker settles as failed without sending.
    _arrivals(receiver, "/sibling", later, 1)
    eventually(lambda: (d := _delivery_of(admin, endpoint["endpoint_id"], later)) is None or d["status"] == "failed")
    assert _with_id(receiver.requests_for("/gone"), later) == []


def test_retry_after_is_honoured_within_one_to_two_times_the_schedule(
    admin: httpx.Client,
    client_id: str,
    receiver: Receiver,
    create_endpoint: CreateEndpoint,
) -> None:
    """A 429's Retry-After moves the next attempt to between the scheduled delay and twice it:
    asking for less than the schedule gets the schedule (exactly, without jitter), asking for
    more gets it, up to twice. Scheduled after attempt 1: 5 s, after attempt 2: 300 s (scaled)."""
    cases = {"/soon": ("0", 5.0, 300.0), "/later": ("450", 10.0, 450.0), "/much-later": ("86400", 10.0, 600.0)}
    made = {}
    for path, (retry_after, *_) in cases.items():
        receiver.behave(path, status=429, fail_first=2, retry_after=retry_after)
        made[path] = create_endpoint(path, ["key.*"], client_id=client_id)
    event_id = _trigger(admin, "key.created", {"marker": secrets.token_hex(8)}, client_id)

    for path, (retry_after, first_delay, second_delay) in cases.items():
        arrived = _arrivals(receiver, path, event_id, 3)
        assert [r.status for r in arrived] == [429, 429, 204]
        delivery = _settled(admin, made[path]["endpoint_id"], event_id, "delivered", 3)
        attempts = _attempts(admin, made[path]["endpoint_id"], delivery["delivery_id"])
        assert [a["outcome"] for a in attempts] == ["failure", "failure", "success"]
        for attempt, expected in zip(attempts[:2], (first_delay, second_delay), strict=True):
            assert attempt["response_headers"]["retry-after"] == retry_after
            waited = _epoch(attempt["next_attempt_at"]) - _epoch(attempt["started_at"])
            assert waited == pytest.approx(expected * TIME_SCALE, abs=0.0015), (path, attempt)
        # Never sooner than scheduled: the third request came after attempt 2's due time.
        assert arrived[2].monotonic - arrived[1].monotonic >= second_delay * TIME_SCALE


def test_exhausted_delivery_is_announced_and_redriven_from_the_dlq(
    gateway: RunningGateway,
    admin: httpx.Client,
    client_id: str,
    receiver: Receiver,
    create_endpoint: CreateEndpoint,
) -> None:
    watcher = create_endpoint("/exhausted", ["message.attempt.exhausted"])
    receiver.behave("/down", status=500)
    endpoint = create_endpoint("/down", ["key.*"], client_id=client_id, max_retries=1)
    event_id = _trigger(admin, "key.revoked", {"marker": secrets.token_hex(8)}, client_id)

    assert [r.status for r in _arrivals(receiver, "/down", event_id, 2)] == [500, 500]
    delivery = _settled(admin, endpoint["endpoint_id"], event_id, "abandoned", 2)
    assert (delivery["max_attempts"], delivery["last_status"]) == (2, 500)
    [notice] = eventually(
        lambda: _matching(receiver, "/exhausted", lambda b: b["data"].get("delivery_id") == delivery["delivery_id"]),
        timeout=ARRIVAL_S,
        interval=0.05,
    )
    body = _verify(watcher["secret"], notice)
    assert body["type"] == "message.attempt.exhausted"
    assert body["data"]["endpoint_id"] == endpoint["endpoint_id"]
    assert (body["data"]["event_id"], body["data"]["attempts"], body["data"]["last_status"]) == (event_id, 2, 500)

    receiver.behave("/down", status=204)  # the receiver is back
    redriven = admin.post("/api/v1/webhooks/dlq/redrive")
    assert redriven.status_code == 200, redriven.text
    assert redriven.json()["moved"] >= 1
    assert redriven.json()["reopened"] >= 1
    third = _arrivals(receiver, "/down", event_id, 3)[2]
    assert third.status == 204
    assert _verify(endpoint["secret"], third)["type"] == "key.revoked"
    after = _settled(admin, endpoint["endpoint_id"], event_id, "delivered", 3)
    assert after["trigger"] == "redrive"
    assert len(_with_id(receiver.requests_for("/down"), event_id)) == 3

    # Only admins redrive the DLQ.
    writer = _new_key(admin, client_id, "not admin", ["webhooks:write"])
    with gateway.client(headers={"x-api-key": writer["api_key"]}) as http:
        refused = http.post("/api/v1/webhooks/dlq/redrive")
    assert refused.status_code == 403


def test_v1a_signatures_verify_with_the_published_public_key(
    admin: httpx.Client,
    client_id: str,
    receiver: Receiver,
    create_endpoint: CreateEndpoint,
) -> None:
    endpoint = create_endpoint("/v1a", ["key.*"], client_id=client_id, signing="v1a")
    assert endpoint["secret"] is None
    published = admin.get(f"/api/v1/webhooks/{endpoint['endpoint_id']}/public-key")
    assert published.status_code == 200, published.text
    public_key = published.json()["public_key"]
    assert public_key == endpoint["public_key"]
    raw = base64.b64decode(public_key.removeprefix("whpk_"))
    assert public_key.startswith("whpk_")
    assert len(raw) == 32
    verifier = Ed25519PublicKey.from_public_bytes(raw)

    event_id = _trigger(admin, "key.created", {"marker": secrets.token_hex(8)}, client_id)
    [request] = _arrivals(receiver, "/v1a", event_id, 1)
    scheme, signature = request.headers["webhook-signature"].split(",", 1)
    assert scheme == "v1a"
    signed = f"{event_id}.{request.headers['webhook-timestamp']}.{request.body.decode()}".encode()
    verifier.verify(base64.b64decode(signature), signed)  # raises InvalidSignature if it does not verify
    with pytest.raises(InvalidSignature):
        verifier.verify(base64.b64decode(signature), signed.replace(b"key.created", b"key.revoked"))
    # No shared secret anywhere: a v1 endpoint's HMAC check finds no v1 signature.
    assert "v1," not in request.headers["webhook-signature"]
    assert published.json()["previous_public_keys"] == []


def test_a_client_endpoint_hears_only_its_own_events(
    gateway: RunningGateway,
    admin: httpx.Client,
    receiver: Receiver,
    create_endpoint: CreateEndpoint,
) -> None:
    mine, other = (
        _register(admin, f"Hooks own {secrets.token_hex(4)}"),
        _register(admin, f"Hooks other {secrets.token_hex(4)}"),
    )
    access = _new_key(admin, mine, "webhooks", ["webhooks:read", "webhooks:write"])
    my_key, other_key = _new_key(admin, mine, "mine"), _new_key(admin, other, "other")
    with gateway.client(headers={"x-api-key": access["api_key"]}) as http:
        own = create_endpoint("/own", ["key.rotated"], http=http)
        assert (own["client_id"], own["audience"]) == (mine, "own")
        everything = create_endpoint("/admin", ["key.rotated"])
        assert everything["audience"] == "all"
        # A client does not see, nor create for, another client.
        assert http.get(f"/api/v1/webhooks/{everything['endpoint_id']}").status_code == 404
        refused = http.post(
            "/api/v1/webhooks",
            json={"name": "x", "url": receiver.url_for("/x"), "event_types": ["*"], "client_id": other},
        )
        assert refused.status_code == 403, refused.text

        for key in (other_key, my_key):
            assert admin.post(f"/api/v1/gateway/keys/{key['key_id']}/rotate", json={}).status_code == 201

        def rotated(path: str) -> set[str]:
            return {
                b["data"]["key"]["key_id"]
                for b in (r.json() for r in receiver.requests_for(path))
                if b["type"] == "key.rotated"
            }

        eventually(lambda: {my_key["key_id"], other_key["key_id"]} <= rotated("/admin"), timeout=ARRIVAL_S)
        eventually(lambda: my_key["key_id"] in rotated("/own"), timeout=ARRIVAL_S)
        # Fan-out writes every endpoint's delivery of an event at once: the admin's delivery of the
        # other client's rotation is there, so the client's endpoint would have one by now.
        deliveries = _deliveries(http, own["endpoint_id"])
    assert len(deliveries) == 1
    assert rotated("/own") == {my_key["key_id"]}
    assert all(_verify(own["secret"], r)["data"]["key"]["client_id"] == mine for r in receiver.requests_for("/own"))
