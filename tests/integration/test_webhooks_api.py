"""/api/v1/webhooks and /api/v1/events through the webhooks function's entry point, on moto, with
test sends to a receiver on loopback; and the webhook stores' conditional writes against moto."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from functions.webhooks import delivery_wiring
from functions.webhooks.dal.deliveries_store import DynamoDeliveryStore
from functions.webhooks.dal.delivery_queue import SqsDeliveryQueue
from functions.webhooks.dal.delivery_records import DynamoDeliveryRecords
from functions.webhooks.dal.endpoint_health import DynamoEndpointHealth
from functions.webhooks.logic.body import webhook_body
from functions.webhooks.logic.fanout import delivery_id as derived_delivery_id
from functions.webhooks.logic.model import Attempt, Delivery
from gateway_core.clock import iso, parse_iso, utc_now
from gateway_core.event_catalog import EVENT_TYPES
from gateway_core.events import event_item, new_event_id
from tests.integration.helpers import ADMIN
from tests.integration.webhooks_fixtures import (
    NO_SCOPE,
    OTHER,
    OWNER,
    PROBLEM,
    PUBLISHER,
    READER,
    Reply,
    Webhooks,
    webhooks_environment,
)
from tests.webhook_receivers import Receiver

HOOKS = "/api/v1/webhooks"


@pytest.fixture
def hooks(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhooks]:
    with webhooks_environment(monkeypatch) as environment:
        yield environment


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _spec(url: str, **overrides: Any) -> dict[str, Any]:
    return {"name": "Treasury hooks", "url": url, "event_types": ["key.*", "client.created"]} | overrides


def _create(hooks: Webhooks, url: str, who: dict[str, Any] = OWNER, **overrides: Any) -> dict[str, Any]:
    reply = hooks.api.call("POST", HOOKS, _spec(url, **overrides), authorizer=who)
    assert reply.status == 201, reply.text
    created: dict[str, Any] = reply.json
    return created


def _problem(reply: Reply, status: int, code: str | None = None) -> dict[str, Any]:
    assert reply.status == status, reply.text
    assert reply.header("Content-Type") == PROBLEM
    body: dict[str, Any] = reply.json
    if code is not None:
        assert body["code"] == code, body
    return body


def _test_send(
    hooks: Webhooks, endpoint_id: str, who: dict[str, Any] = OWNER, event_type: str = "key.rotated", **data: Any
) -> dict[str, Any]:
    reply = hooks.api.call(
        "POST", f"{HOOKS}/{endpoint_id}/test", {"eventType": event_type, "testData": data}, authorizer=who
    )
    assert reply.status == 200, reply.text
    result: dict[str, Any] = reply.json
    return result


def _signatures(header: str) -> list[tuple[str, bytes]]:
    return [(version, base64.b64decode(sig)) for version, sig in (part.split(",", 1) for part in header.split(" "))]


def _fence(message: dict[str, Any]) -> tuple[str, int]:
    """What a queue message names: the delivery, and the attempt count it was sent at."""
    return message["delivery_id"], message["attempts"]


def _next_millisecond() -> None:
    """Deliveries are listed by millisecond creation stamps: make the next one later."""
    time.sleep(0.003)


# -- create, read, the secret shown once --------------------------------------------------------
def test_create_v1_answers_201_with_location_etag_and_the_secret_once(hooks: Webhooks, receiver: Receiver) -> None:
    url = receiver.url_for("/hooks")
    reply = hooks.api.call("POST", HOOKS, _spec(url, headers={"X-Tenant": "acme"}), authorizer=OWNER)

    assert reply.status == 201, reply.text
    created = reply.json
    endpoint_id = created["endpoint_id"]
    assert reply.header("Location") == f"{HOOKS}/{endpoint_id}"
    assert reply.header("ETag") == '"1"'
    assert reply.header("Cache-Control") == "no-store"
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24
    assert created["client_id"] == "acme"
    assert created["audience"] == "own"
    assert created["signing"] == "v1"
    assert created["public_key"] is None
    assert (created["method"], created["timeout_s"], created["ordering"], created["active"]) == (
        "POST",
        15,
        "none",
        True,
    )

    read = hooks.api.call("GET", f"{HOOKS}/{endpoint_id}", authorizer=OWNER)
    assert read.status == 200, read.text
    assert read.header("ETag") == '"1"'
    assert "secret" not in read.json
    assert read.json == {k: v for k, v in created.items() if k != "secret"}
    # Stored sealed by KMS: the secret appears nowhere in the table.
    assert created["secret"] not in json.dumps(hooks.items_with_prefix("WEBHOOK#"), default=str)
    assert created["secret"] not in read.text

    no_key = hooks.api.call("GET", f"{HOOKS}/{endpoint_id}/public-key", authorizer=OWNER)
    _problem(no_key, 404, "no_public_key")


def test_create_v1a_shows_no_secret_and_publishes_the_public_key(hooks: Webhooks, receiver: Receiver) -> None:
    created = _create(hooks, receiver.url_for("/hooks"), signing="v1a")

    assert created["secret"] is None
    assert created["public_key"].startswith("whpk_")
    assert len(base64.b64decode(created["public_key"].removeprefix("whpk_"))) == 32
    reply = hooks.api.call("GET", f"{HOOKS}/{created['endpoint_id']}/public-key", authorizer=OWNER)
    assert reply.status == 200, reply.text
    assert reply.json == {
        "endpoint_id": created["endpoint_id"],
        "signing": "v1a",
        "public_key": created["public_key"],
        "previous_public_keys": [],
    }


REFUSED_BODIES: list[tuple[str, dict[str, Any], str | None]] = [
    ("private address", {"url": "http://10.0.0.1/x"}, "invalid_url"),
    ("metadata endpoint", {"url": "http://169.254.169.254/latest/meta-data"}, "invalid_url"),
    ("localhost by name", {"url": "http://localhost:8080/x"}, "invalid_url"),
    ("plain http to a public host", {"url": "http://hooks.example.com/x"}, "invalid_url"),
    ("not http", {"url": "ftp://hooks.example.com/x"}, "invalid_url"),
    ("credentials in the URL", {"url": "https://user:pw@hooks.example.com/x"}, "invalid_url"),
    ("a fragment", {"url": "https://hooks.example.com/x#frag"}, "invalid_url"),
    ("not a URL", {"url": "https://[::1/x"}, "invalid_url"),
    ("webhook- header", {"headers": {"webhook-signature": "v1,forged"}}, "reserved_header"),
    ("content-type header", {"headers": {"Content-Type": "text/plain"}}, "reserved_header"),
    ("header name", {"headers": {"Bad Header": "x"}}, "invalid_header"),
    ("header value line break", {"headers": {"X-A": "a\r\nX-B: b"}}, "invalid_header"),
    ("header named twice", {"headers": {"X-A": "1", "x-a": "2"}}, "invalid_header"),
    ("unknown event type", {"event_types": ["nothing.happened"]}, "unknown_event_type"),
    ("unknown wildcard family", {"event_types": ["nothing.*"]}, "unknown_event_type"),
    ("extra member", {"colour": "red"}, None),
    ("timeout too long", {"timeout_s": 31}, None),
    ("timeout zero", {"timeout_s": 0}, None),
    ("timeout as a string", {"timeout_s": "15"}, None),
    ("name as a number", {"name": 5}, None),
    ("event types as a string", {"event_types": "key.created"}, None),
    ("no event types", {"event_types": []}, None),
    ("too many retries", {"max_retries": 11}, None),
    ("unknown method", {"method": "GET"}, None),
    ("unknown signing", {"signing": "v2"}, None),
    ("unknown ordering", {"ordering": "fifo"}, None),
    ("active as a string", {"active": "yes"}, None),
    ("header value a number", {"headers": {"X-A": 1}}, None),
    ("filter of an unknown shape", {"filters": [{"nope": 1}]}, None),
    ("filter outside the body", {"filters": [{"field": "headers.x", "op": "eq", "value": 1}]}, None),
    ("filter comparing a word", {"filters": [{"field": "data.amount", "op": "gt", "value": "lots"}]}, None),
    ("filter op unknown", {"filters": [{"field": "data.a", "op": "like", "value": "x"}]}, None),
]


@pytest.mark.parametrize(
    ("overrides", "code"), [(o, c) for _, o, c in REFUSED_BODIES], ids=[i for i, *_ in REFUSED_BODIES]
)
def test_create_refuses_bad_bodies_with_422(hooks: Webhooks, overrides: dict[str, Any], code: str | None) -> None:
    reply = hooks.api.call("POST", HOOKS, _spec("https://hooks.example.com/in") | overrides, authorizer=OWNER)

    _problem(reply, 422, code)
    assert hooks.items_with_prefix("WEBHOOK#") == []


@pytest.mark.parametrize(
    "raw",
    ["", "not json", "[]", '"a string"', "null", '{"name": "x"}'],
    ids=["empty", "text", "array", "string", "null", "missing"],
)
def test_create_refuses_unreadable_bodies_without_5xx(hooks: Webhooks, raw: str) -> None:
    reply = hooks.api.call("POST", HOOKS, raw_body=raw, authorizer=OWNER)

    assert 400 <= reply.status < 500, reply.text
    assert reply.header("Content-Type") == PROBLEM
    assert hooks.items_with_prefix("WEBHOOK#") == []


def test_filters_and_options_are_kept(hooks: Webhooks) -> None:
    filters = [
        {"field": "data.amount", "op": "gte", "value": 100},
        {"field": "data.currency", "op": "in", "value": ["EUR", "USD"]},
        {"field": "data.client_id", "op": "exists", "value": True},
    ]
    created = _create(
        hooks,
        "https://hooks.example.com/in?token=t",
        filters=filters,
        method="PUT",
        timeout_s=30,
        max_retries=0,
        rate_limit_per_s=5,
        ordering="ordered",
        active=False,
        description="payments desk",
    )

    shown = hooks.api.call("GET", f"{HOOKS}/{created['endpoint_id']}", authorizer=OWNER).json
    assert shown["filters"] == filters
    assert shown["url"] == "https://hooks.example.com/in?token=t"
    assert (shown["method"], shown["timeout_s"], shown["max_retries"], shown["rate_limit_per_s"]) == ("PUT", 30, 0, 5)
    assert (shown["ordering"], shown["active"], shown["description"]) == ("ordered", False, "payments desk")


def test_the_allowlist_is_what_lets_loopback_receivers_in(hooks: Webhooks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSTREAM_ALLOW_CIDRS")
    reply = hooks.api.call("POST", HOOKS, _spec("http://127.0.0.1:9/x"), authorizer=OWNER)

    _problem(reply, 422, "invalid_url")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "/public-key"),
        ("POST", "/rotate-secret"),
        ("POST", "/enable"),
        ("POST", "/test"),
        ("GET", "/deliveries"),
        ("GET", "/deliveries/{long}/attempts"),
        ("POST", "/deliveries/{long}/replay"),
        ("POST", "/recover"),
    ],
)
def test_unknown_ids_of_any_length_are_404(hooks: Webhooks, method: str, suffix: str) -> None:
    long = "x" * 3000  # beyond DynamoDB's key size (which moto checks on writes only)
    bodies = {"/test": {"eventType": "key.rotated"}, "/recover": {"since": "2026-01-01T00:00:00Z"}}
    body = bodies.get(suffix, {"name": "x"} if method == "PATCH" else {} if method == "POST" else None)
    reply = hooks.api.call(
        method, f"{HOOKS}/{long}{suffix.format(long=long)}", body, authorizer=OWNER, headers={"If-Match": "*"}
    )

    _problem(reply, 404)


# -- who manages which ------------------------------------------------------------------------
def test_a_client_manages_only_its_own_endpoints(hooks: Webhooks, receiver: Receiver) -> None:
    mine = _create(hooks, receiver.url_for("/acme"))
    path = f"{HOOKS}/{mine['endpoint_id']}"

    for method, suffix, body in (
        ("GET", "", None),
        ("PATCH", "", {"name": "stolen"}),
        ("DELETE", "", None),
        ("POST", "/rotate-secret", {}),
        ("POST", "/test", {"eventType": "key.rotated"}),
        ("GET", "/public-key", None),
        ("POST", "/enable", None),
        ("GET", "/deliveries", None),
        ("POST", "/recover", {"since": "2026-01-01T00:00:00Z"}),
    ):
        reply = hooks.api.call(method, path + suffix, body, authorizer=OTHER, headers={"If-Match": '"1"'})
        _problem(reply, 404, "webhook_not_found")

    # Nothing changed, nothing was sent.
    after = hooks.api.call("GET", path, authorizer=OWNER)
    assert after.json["name"] == "Treasury hooks"
    assert after.json["version"] == 1
    assert receiver.requests == []


def test_scopes_are_required(hooks: Webhooks, receiver: Receiver) -> None:
    mine = _create(hooks, receiver.url_for("/acme"))

    denied = hooks.api.call("GET", HOOKS, authorizer=NO_SCOPE)
    assert _problem(denied, 403, "insufficient_scope")["required_scope"] == "webhooks:read"
    denied = hooks.api.call("GET", f"{HOOKS}/{mine['endpoint_id']}", authorizer=NO_SCOPE)
    _problem(denied, 403, "insufficient_scope")
    # Reading is not writing.
    denied = hooks.api.call("POST", HOOKS, _spec(receiver.url_for("/r")), authorizer=READER)
    assert _problem(denied, 403, "insufficient_scope")["required_scope"] == "webhooks:write"
    listed = hooks.api.call("GET", HOOKS, authorizer=READER)
    assert listed.status == 200, listed.text
    assert listed.json["items"] == []
    # No identity at all (a misconfigured method): 401, not a 5xx.
    anonymous = hooks.api.call("GET", HOOKS, authorizer={})
    _problem(anonymous, 401)


def test_listing_a_clients_own_and_admins_all(hooks: Webhooks, receiver: Receiver) -> None:
    acme = _create(hooks, receiver.url_for("/acme"))
    globex = _create(hooks, receiver.url_for("/globex"), who=OTHER)
    _next_millisecond()
    for_acme = _create(hooks, receiver.url_for("/admin-made"), who=ADMIN, client_id="acme")
    admins = _create(hooks, receiver.url_for("/admins"), who=ADMIN)
    assert for_acme["client_id"] == "acme"
    assert for_acme["audience"] == "own"
    assert admins["audience"] == "all"

    own = hooks.api.call("GET", HOOKS, authorizer=OWNER)
    assert own.status == 200, own.text
    assert {e["endpoint_id"] for e in own.json["items"]} == {acme["endpoint_id"], for_acme["endpoint_id"]}
    assert all("secret" not in e for e in own.json["items"])

    everything = hooks.api.call("GET", HOOKS)
    assert {e["endpoint_id"] for e in everything.json["items"]} == {
        e["endpoint_id"] for e in (acme, globex, for_acme, admins)
    }
    one_client = hooks.api.call("GET", HOOKS, query={"client_id": "globex"})
    assert [e["endpoint_id"] for e in one_client.json["items"]] == [globex["endpoint_id"]]

    # Paging the admins' list: one at a time, each once.
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = hooks.api.call("GET", HOOKS, query={"limit": "1", **({"cursor": cursor} if cursor else {})})
        assert page.status == 200, page.text
        seen.extend(e["endpoint_id"] for e in page.json["items"])
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(e["endpoint_id"] for e in (acme, globex, for_acme, admins))

    # A client's cursor on the admins' list (another partition) is refused, not handed to DynamoDB.
    first = hooks.api.call("GET", HOOKS, query={"limit": "1"}, authorizer=OWNER).json["next_cursor"]
    assert first is not None
    _problem(hooks.api.call("GET", HOOKS, query={"cursor": first}), 400, "invalid_cursor")
    _problem(hooks.api.call("GET", HOOKS, query={"cursor": "%%%"}), 400, "invalid_cursor")

    someone_else = hooks.api.call("GET", HOOKS, query={"client_id": "globex"}, authorizer=OWNER)
    _problem(someone_else, 403, "not_your_client")
    same_client = hooks.api.call("GET", HOOKS, query={"client_id": "acme"}, authorizer=OWNER)
    assert same_client.status == 200

    for_other = hooks.api.call("POST", HOOKS, _spec(receiver.url_for("/x"), client_id="globex"), authorizer=OWNER)
    _problem(for_other, 403, "not_your_client")


# -- changes: If-Match, delete --------------------------------------------------------------------
def test_patch_needs_if_match(hooks: Webhooks, receiver: Receiver) -> None:
    created = _create(hooks, receiver.url_for("/hooks"))
    path = f"{HOOKS}/{created['endpoint_id']}"

    _problem(hooks.api.call("PATCH", path, {"name": "renamed"}, authorizer=OWNER), 428)
    stale = hooks.api.call("PATCH", path, {"name": "renamed"}, authorizer=OWNER, headers={"If-Match": '"7"'})
    _problem(stale, 412)
    garbled = hooks.api.call("PATCH", path, {"name": "renamed"}, authorizer=OWNER, headers={"If-Match": "soon"})
    _problem(garbled, 400, "invalid_if_match")
    assert hooks.api.call("GET", path, authorizer=OWNER).json["name"] == "Treasury hooks"

    etag = hooks.api.call("GET", path, authorizer=OWNER).header("ETag")
    assert etag is not None
    changed = hooks.api.call(
        "PATCH",
        path,
        {"name": "renamed", "timeout_s": 5, "event_types": ["*"], "rate_limit_per_s": 3},
        authorizer=OWNER,
        headers={"If-Match": etag},
    )
    assert changed.status == 200, changed.text
    assert changed.header("ETag") == '"2"'
    assert (changed.json["name"], changed.json["timeout_s"], changed.json["event_types"]) == ("renamed", 5, ["*"])
    assert changed.json["rate_limit_per_s"] == 3
    assert changed.json["version"] == 2
    # The ETag just used is stale now.
    again = hooks.api.call("PATCH", path, {"name": "again"}, authorizer=OWNER, headers={"If-Match": etag})
    _problem(again, 412)

    for body, code in (
        ({"url": "http://169.254.169.254/"}, "invalid_url"),
        ({"headers": {"webhook-id": "x"}}, "reserved_header"),
        ({"event_types": ["nothing.happened"]}, "unknown_event_type"),
        ({"timeout_s": 31}, None),
        ({"signing": "v1a"}, None),  # chosen at creation: a rotation keeps it
        ({"client_id": "globex"}, None),
    ):
        refused = hooks.api.call("PATCH", path, body, authorizer=OWNER, headers={"If-Match": '"2"'})
        _problem(refused, 422, code)
    assert hooks.api.call("GET", path, authorizer=OWNER).json["version"] == 2

    anything = hooks.api.call("PATCH", path, {"description": "any"}, authorizer=OWNER, headers={"If-Match": "*"})
    assert anything.status == 200, anything.text
    assert anything.header("ETag") == '"3"'

    missing = hooks.api.call("PATCH", f"{HOOKS}/ep_missing", {"name": "x"}, authorizer=OWNER)
    _problem(missing, 404, "webhook_not_found")


def test_delete_answers_204_then_404(hooks: Webhooks, receiver: Receiver) -> None:
    created = _create(hooks, receiver.url_for("/hooks"))
    path = f"{HOOKS}/{created['endpoint_id']}"

    _problem(hooks.api.call("DELETE", path, authorizer=OWNER, headers={"If-Match": '"9"'}), 412)
    deleted = hooks.api.call("DELETE", path, authorizer=OWNER, headers={"If-Match": '"1"'})
    assert deleted.status == 204, deleted.text
    assert hooks.item(f"WEBHOOK#{created['endpoint_id']}", "ENDPOINT") is None
    _problem(hooks.api.call("GET", path, authorizer=OWNER), 404, "webhook_not_found")
    _problem(hooks.api.call("DELETE", path, authorizer=OWNER), 404, "webhook_not_found")


# -- signing keys -------------------------------------------------------------------------------
def test_rotation_signs_with_both_secrets_during_the_grace(hooks: Webhooks, receiver: Receiver) -> None:
    created = _create(hooks, receiver.url_for("/hooks"))
    old_secret = created["secret"]
    before = utc_now()

    reply = hooks.api.call("POST", f"{HOOKS}/{created['endpoint_id']}/rotate-secret", {}, authorizer=OWNER)

    assert reply.status == 200, reply.text
    assert reply.header("Cache-Control") == "no-store"
    rotated = reply.json
    new_secret = rotated["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != old_secret
    assert rotated["public_key"] is None
    retires = parse_iso(rotated["endpoint"]["previous_key_retires_at"])
    assert before + timedelta(hours=23, minutes=59) < retires <= utc_now() + timedelta(hours=24)
    assert rotated["endpoint"]["version"] == 2

    _test_send(hooks, created["endpoint_id"], key_id="k1")
    [request] = receiver.wait_for(1, "/hooks")
    signatures = _signatures(request.headers["webhook-signature"])
    assert [version for version, _ in signatures] == ["v1", "v1"]
    for secret in (old_secret, new_secret):
        assert Webhook(secret).verify(request.body, request.headers)["data"] == {"key_id": "k1"}
    # Each signature is one of the two secrets' (not two copies of one).
    moment = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    expected = {
        base64.b64decode(Webhook(s).sign(request.headers["webhook-id"], moment, request.body.decode()).split(",")[1])
        for s in (old_secret, new_secret)
    }
    assert {sig for _, sig in signatures} == expected


def test_rotation_without_grace_drops_the_old_secret(hooks: Webhooks, receiver: Receiver) -> None:
    created = _create(hooks, receiver.url_for("/hooks"))
    reply = hooks.api.call(
        "POST", f"{HOOKS}/{created['endpoint_id']}/rotate-secret", {"grace_seconds": 0}, authorizer=OWNER
    )
    assert reply.status == 200, reply.text
    assert reply.json["endpoint"]["previous_key_retires_at"] is None

    _test_send(hooks, created["endpoint_id"])
    [request] = receiver.wait_for(1, "/hooks")
    assert len(_signatures(request.headers["webhook-signature"])) == 1
    Webhook(reply.json["secret"]).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(created["secret"]).verify(request.body, request.headers)

    bad = hooks.api.call(
        "POST", f"{HOOKS}/{created['endpoint_id']}/rotate-secret", {"grace_seconds": -1}, authorizer=OWNER
    )
    _problem(bad, 422)


def test_v1a_sends_ed25519_signatures_with_both_keys_after_a_rotation(hooks: Webhooks, receiver: Receiver) -> None:
    created = _create(hooks, receiver.url_for("/hooks"), signing="v1a")
    rotated = hooks.api.call("POST", f"{HOOKS}/{created['endpoint_id']}/rotate-secret", {}, authorizer=OWNER)
    assert rotated.status == 200, rotated.text
    assert rotated.json["secret"] is None
    new_public = rotated.json["public_key"]
    assert new_public.startswith("whpk_")
    assert new_public != created["public_key"]
    published = hooks.api.call("GET", f"{HOOKS}/{created['endpoint_id']}/public-key", authorizer=OWNER).json
    assert published["public_key"] == new_public
    assert published["previous_public_keys"] == [created["public_key"]]

    _test_send(hooks, created["endpoint_id"])
    [request] = receiver.wait_for(1, "/hooks")
    signatures = _signatures(request.headers["webhook-signature"])
    assert [version for version, _ in signatures] == ["v1a", "v1a"]
    content = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    for public, (_, signature) in zip((new_public, created["public_key"]), signatures, strict=True):
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_"))).verify(signature, content)


# -- test sends -----------------------------------------------------------------------------------
def test_a_test_send_reaches_the_receiver_signed_and_answers_the_attempt(hooks: Webhooks, receiver: Receiver) -> None:
    receiver.behave("/hooks", status=200, body='{"ok":true}')
    created = _create(hooks, receiver.url_for("/hooks?token=abc"), headers={"X-Tenant": "acme"})
    sent_after = time.time()

    result = _test_send(hooks, created["endpoint_id"], key_id="k1", rotated_by="ops")

    attempt, delivery = result["attempt"], result["delivery"]
    assert attempt["status_code"] == 200
    assert attempt["outcome"] == "success"
    assert 0 <= attempt["latency_ms"] < 5000
    assert attempt["attempt"] == 1
    assert attempt["response_body"] == '{"ok":true}'
    assert delivery["trigger"] == "test"
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["endpoint_id"] == created["endpoint_id"]
    assert delivery["event_type"] == "key.rotated"

    [request] = receiver.wait_for(1, "/hooks")
    assert request.method == "POST"
    assert request.query == "token=abc"
    assert request.headers["webhook-id"] == delivery["event_id"]
    assert abs(int(request.headers["webhook-timestamp"]) - sent_after) < 5
    assert request.headers["x-tenant"] == "acme"
    assert request.headers["content-type"] == "application/json"
    body = Webhook(created["secret"]).verify(request.body, request.headers)
    assert body["type"] == "key.rotated"
    assert body["data"] == {"key_id": "k1", "rotated_by": "ops"}
    parse_iso(body["timestamp"])

    # The attempt is on record like any other.
    attempts = hooks.api.call(
        "GET", f"{HOOKS}/{created['endpoint_id']}/deliveries/{delivery['delivery_id']}/attempts", authorizer=OWNER
    )
    assert attempts.status == 200, attempts.text
    assert attempts.json["delivery"] == delivery
    assert attempts.json["items"] == [attempt]


def test_a_failed_test_send_is_recorded_and_not_retried(hooks: Webhooks, receiver: Receiver) -> None:
    receiver.behave("/hooks", status=500, body="boom")
    created = _create(hooks, receiver.url_for("/hooks"))

    result = _test_send(hooks, created["endpoint_id"])

    assert result["attempt"]["outcome"] == "failure"
    assert result["attempt"]["status_code"] == 500
    assert result["attempt"]["error"] == "HTTP 500"
    assert result["attempt"]["response_body"] == "boom"
    assert result["delivery"]["status"] == "failed"
    assert result["delivery"]["last_status"] == 500
    assert result["delivery"]["trigger"] == "test"
    receiver.wait_for(1, "/hooks")
    # A test is one attempt: nothing is queued for a retry.
    assert hooks.queue_messages() == []


def test_a_failed_test_send_settles_as_failed_without_side_effects(hooks: Webhooks, receiver: Receiver) -> None:
    receiver.behave("/hooks", status=500)
    created = _create(hooks, receiver.url_for("/hooks"))

    result = _test_send(hooks, created["endpoint_id"])

    assert result["delivery"]["status"] == "failed"
    assert hooks.queue_messages(hooks.dlq_url) == []
    assert hooks.items_with_prefix("EVENT#") == []


def test_a_test_send_to_a_receiver_that_does_not_answer(hooks: Webhooks, receiver: Receiver) -> None:
    receiver.behave("/slow", delay=3.0)
    created = _create(hooks, receiver.url_for("/slow"), timeout_s=1)

    result = _test_send(hooks, created["endpoint_id"])

    assert result["attempt"]["outcome"] == "failure"
    assert result["attempt"]["status_code"] is None
    assert "1 s" in result["attempt"]["error"]
    assert 900 <= result["attempt"]["latency_ms"] < 3000


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"eventType": "nothing.happened"}, "unknown_event_type"),
        ({"eventType": "key.*"}, "unknown_event_type"),
        ({}, None),
        ({"eventType": "key.rotated", "testData": []}, None),
        ({"eventType": "key.rotated", "extra": 1}, None),
        ({"eventType": 5}, None),
    ],
    ids=["unknown", "wildcard", "missing", "data-not-object", "extra", "not-a-string"],
)
def test_a_test_send_refuses_bad_bodies(
    hooks: Webhooks, receiver: Receiver, body: dict[str, Any], code: str | None
) -> None:
    created = _create(hooks, receiver.url_for("/hooks"))

    reply = hooks.api.call("POST", f"{HOOKS}/{created['endpoint_id']}/test", body, authorizer=OWNER)

    _problem(reply, 422, code)
    assert receiver.requests == []
    assert hooks.items_with_prefix("DELIVERY#") == []


# -- deliveries and attempts ------------------------------------------------------------------------
def test_deliveries_are_listed_filtered_and_paged(hooks: Webhooks, receiver: Receiver) -> None:
    receiver.behave("/hooks", status=500, fail_first=1)  # the first test send fails, the rest succeed
    created = _create(hooks, receiver.url_for("/hooks"))
    endpoint_id = created["endpoint_id"]
    path = f"{HOOKS}/{endpoint_id}/deliveries"
    sends = []
    for event_type in ("key.rotated", "client.created", "key.rotated"):
        _next_millisecond()
        sends.append(_test_send(hooks, endpoint_id, event_type=event_type)["delivery"])
    first, second, third = sends
    assert first["status"] != "delivered"
    assert second["status"] == third["status"] == "delivered"

    listed = hooks.api.call("GET", path, authorizer=OWNER)
    assert listed.status == 200, listed.text
    assert [d["delivery_id"] for d in listed.json["items"]] == [d["delivery_id"] for d in (third, second, first)]
    assert listed.json["next_cursor"] is None

    def ids(**query: str) -> list[str]:
        reply = hooks.api.call("GET", path, query=query, authorizer=OWNER)
        assert reply.status == 200, reply.text
        return [d["delivery_id"] for d in reply.json["items"]]

    assert ids(status="delivered") == [third["delivery_id"], second["delivery_id"]]
    assert ids(status=first["status"]) == [first["delivery_id"]]
    assert ids(status="retrying") == []
    assert ids(event_type="client.created") == [second["delivery_id"]]
    assert ids(event_type="key.rotated", status="delivered") == [third["delivery_id"]]
    assert ids(since=second["created_at"]) == [third["delivery_id"], second["delivery_id"]]
    assert ids(until=second["created_at"]) == [second["delivery_id"], first["delivery_id"]]
    assert ids(since=second["created_at"], until=second["created_at"]) == [second["delivery_id"]]
    assert ids(since=iso(utc_now() + timedelta(minutes=1))) == []
    assert ids(since=third["created_at"], until=first["created_at"]) == []  # reversed: empty, not a 5xx
    # An offset is read as such: the same instant, spelled in another zone.
    shifted = parse_iso(second["created_at"]).astimezone(datetime.now().astimezone().tzinfo)
    assert ids(since=shifted.isoformat()) == [third["delivery_id"], second["delivery_id"]]

    # Paging one at a time walks all three, newest first.
    seen: list[str] = []
    cursor: str | None = None
    while True:
        reply = hooks.api.call(
            "GET", path, query={"limit": "1", **({"cursor": cursor} if cursor else {})}, authorizer=OWNER
        )
        assert reply.status == 200, reply.text
        seen.extend(d["delivery_id"] for d in reply.json["items"])
        cursor = reply.json["next_cursor"]
        if cursor is None:
            break
    assert seen == [d["delivery_id"] for d in (third, second, first)]

    _problem(hooks.api.call("GET", path, query={"cursor": "not-a-cursor"}, authorizer=OWNER), 400, "invalid_cursor")
    _problem(hooks.api.call("GET", path, query={"since": "yesterday"}, authorizer=OWNER), 422, "invalid_time")
    _problem(hooks.api.call("GET", path, query={"status": "lost"}, authorizer=OWNER), 422)
    _problem(hooks.api.call("GET", path, query={"limit": "0"}, authorizer=OWNER), 422)
    _problem(hooks.api.call("GET", path, query={"limit": "many"}, authorizer=OWNER), 422)

    # Another endpoint's cursor is not this list's.
    other = _create(hooks, receiver.url_for("/other"))
    _test_send(hooks, other["endpoint_id"])
    _test_send(hooks, other["endpoint_id"])
    other_cursor = hooks.api.call(
        "GET", f"{HOOKS}/{other['endpoint_id']}/deliveries", query={"limit": "1"}, authorizer=OWNER
    ).json["next_cursor"]
    assert other_cursor is not None
    _problem(hooks.api.call("GET", path, query={"cursor": other_cursor}, authorizer=OWNER), 400, "invalid_cursor")


def test_attempts_belong_to_their_endpoints_delivery(hooks: Webhooks, receiver: Receiver) -> None:
    one = _create(hooks, receiver.url_for("/one"))
    two = _create(hooks, receiver.url_for("/two"))
    foreign = _create(hooks, receiver.url_for("/three"), who=OTHER)
    delivery = _test_send(hooks, two["endpoint_id"])["delivery"]

    crossed = hooks.api.call(
        "GET", f"{HOOKS}/{one['endpoint_id']}/deliveries/{delivery['delivery_id']}/attempts", authorizer=OWNER
    )
    _problem(crossed, 404, "delivery_not_found")
    missing = hooks.api.call("GET", f"{HOOKS}/{two['endpoint_id']}/deliveries/dlv_nothing/attempts", authorizer=OWNER)
    _problem(missing, 404, "delivery_not_found")
    # Another client's endpoint path does not confirm the delivery either.
    theirs = hooks.api.call(
        "GET", f"{HOOKS}/{two['endpoint_id']}/deliveries/{delivery['delivery_id']}/attempts", authorizer=OTHER
    )
    _problem(theirs, 404, "webhook_not_found")
    via_foreign = hooks.api.call(
        "GET", f"{HOOKS}/{foreign['endpoint_id']}/deliveries/{delivery['delivery_id']}/attempts", authorizer=OTHER
    )
    _problem(via_foreign, 404, "delivery_not_found")
    bad_cursor = hooks.api.call(
        "GET",
        f"{HOOKS}/{two['endpoint_id']}/deliveries/{delivery['delivery_id']}/attempts",
        query={"cursor": "garbage"},
        authorizer=OWNER,
    )
    _problem(bad_cursor, 400, "invalid_cursor")


# -- replay, recover, redrive ------------------------------------------------------------------------
def test_replay_reopens_a_delivery_and_queues_it_fenced(hooks: Webhooks, receiver: Receiver) -> None:
    receiver.behave("/hooks", status=500, fail_first=1)
    created = _create(hooks, receiver.url_for("/hooks"), max_retries=3)
    failed = _test_send(hooks, created["endpoint_id"])["delivery"]
    assert failed["status"] != "delivered"
    hooks.queue_messages(hooks.dlq_url)  # whatever the failed test left on the DLQ is not this test's

    reply = hooks.api.call(
        "POST", f"{HOOKS}/{created['endpoint_id']}/deliveries/{failed['delivery_id']}/replay", authorizer=OWNER
    )

    assert reply.status == 202, reply.text
    assert reply.json["status"] == "pending"
    assert reply.json["trigger"] == "replay"
    assert reply.json["attempts"] == 1
    assert reply.json["max_attempts"] == 1 + 1 + 3  # the attempts made, and a fresh budget
    [message] = hooks.queue_messages()
    assert _fence(message) == (failed["delivery_id"], 1)

    # The worker takes it from there: the receiver now succeeds, and the delivery is delivered.
    effects = delivery_wiring.engine().process(message)
    assert effects.outcome == "delivered"
    receiver.wait_for(2, "/hooks")
    after = hooks.api.call(
        "GET", f"{HOOKS}/{created['endpoint_id']}/deliveries/{failed['delivery_id']}/attempts", authorizer=OWNER
    ).json
    assert after["delivery"]["status"] == "delivered"
    assert [a["outcome"] for a in after["items"]] == ["failure", "success"]
    # The same message again (SQS redelivers) sends nothing.
    assert delivery_wiring.engine().process(message).outcome == "settled"
    assert len(receiver.requests_for("/hooks")) == 2

    for endpoint_id, delivery_id, who in (
        (created["endpoint_id"], "dlv_nothing", OWNER),
        (created["endpoint_id"], failed["delivery_id"], OTHER),
    ):
        refused = hooks.api.call("POST", f"{HOOKS}/{endpoint_id}/deliveries/{delivery_id}/replay", authorizer=who)
        _problem(refused, 404)
    readonly = hooks.api.call(
        "POST", f"{HOOKS}/{created['endpoint_id']}/deliveries/{failed['delivery_id']}/replay", authorizer=READER
    )
    _problem(readonly, 403, "insufficient_scope")
    assert hooks.queue_messages() == []


def test_recover_reopens_the_failures_since_a_time(hooks: Webhooks, receiver: Receiver) -> None:
    receiver.behave("/hooks", status=503)
    receiver.behave("/fine", status=204)
    created = _create(hooks, receiver.url_for("/hooks"))
    endpoint_id = created["endpoint_id"]
    early = _test_send(hooks, endpoint_id)["delivery"]
    _next_millisecond()
    since = utc_now()
    _next_millisecond()
    late = [_test_send(hooks, endpoint_id)["delivery"] for _ in range(2)]
    # A delivered one since then is left alone.
    receiver.behave("/hooks", status=204)
    delivered = _test_send(hooks, endpoint_id)["delivery"]
    assert delivered["status"] == "delivered"
    hooks.queue_messages(hooks.dlq_url)

    reply = hooks.api.call("POST", f"{HOOKS}/{endpoint_id}/recover", {"since": iso(since)}, authorizer=OWNER)

    assert reply.status == 202, reply.text
    assert reply.json["recovered"] == 2
    assert sorted(reply.json["delivery_ids"]) == sorted(d["delivery_id"] for d in late)
    messages = hooks.queue_messages()
    assert sorted(_fence(m) for m in messages) == sorted((d["delivery_id"], 1) for d in late)
    statuses = hooks.api.call("GET", f"{HOOKS}/{endpoint_id}/deliveries", authorizer=OWNER).json["items"]
    by_id = {d["delivery_id"]: d for d in statuses}
    assert all(by_id[d["delivery_id"]]["status"] == "pending" for d in late)
    assert all(by_id[d["delivery_id"]]["trigger"] == "recover" for d in late)
    assert by_id[early["delivery_id"]]["status"] == early["status"]
    assert by_id[delivered["delivery_id"]]["status"] == "delivered"

    # Nothing failed since now: nothing reopened, nothing queued.
    none = hooks.api.call("POST", f"{HOOKS}/{endpoint_id}/recover", {"since": iso(utc_now())}, authorizer=OWNER)
    assert none.status == 202, none.text
    assert none.json == {"recovered": 0, "delivery_ids": []}
    assert hooks.queue_messages() == []
    # A time without an offset is UTC.
    naive = hooks.api.call(
        "POST", f"{HOOKS}/{endpoint_id}/recover", {"since": iso(utc_now()).removesuffix("Z")}, authorizer=OWNER
    )
    assert naive.status == 202, naive.text
    assert naive.json["recovered"] == 0
    for body in ({"since": "yesterday"}, {}, {"since": iso(since), "extra": 1}):
        _problem(hooks.api.call("POST", f"{HOOKS}/{endpoint_id}/recover", body, authorizer=OWNER), 422)


def _abandoned_delivery(hooks: Webhooks, endpoint: dict[str, Any]) -> Delivery:
    """A delivery whose retries ran out, on record as the worker leaves it."""
    now = utc_now()
    event_id = new_event_id(now)
    delivery = Delivery(
        delivery_id=derived_delivery_id(event_id, endpoint["endpoint_id"]),
        endpoint_id=endpoint["endpoint_id"],
        client_id=endpoint["client_id"],
        event_id=event_id,
        event_type="key.rotated",
        payload=webhook_body("key.rotated", iso(now), {"key_id": "k1"}),
        status="abandoned",
        created_at=iso(now),
        attempts=8,
        max_attempts=8,
        last_status=500,
        last_error="HTTP 500",
    )
    stored = delivery_wiring.engine().deliveries
    records = DynamoDeliveryRecords(hooks.dynamodb, hooks.table)
    assert records.create(delivery, _endpoint_model(hooks, endpoint["endpoint_id"])) == "created"
    assert stored.get(delivery.delivery_id) is not None
    return delivery


def _endpoint_model(hooks: Webhooks, endpoint_id: str) -> Any:
    endpoint = DynamoEndpointHealth(hooks.dynamodb, hooks.table).get(endpoint_id)
    assert endpoint is not None
    return endpoint


def test_redrive_reopens_abandoned_deliveries_and_empties_the_dlq(hooks: Webhooks, receiver: Receiver) -> None:
    created = _create(hooks, receiver.url_for("/hooks"), max_retries=2)
    abandoned = _abandoned_delivery(hooks, created)
    queue = SqsDeliveryQueue(hooks.sqs, hooks.queue_url, hooks.dlq_url)
    queue.dead_letter(abandoned)
    hooks.sqs.send_message(QueueUrl=hooks.dlq_url, MessageBody="not json")
    hooks.sqs.send_message(QueueUrl=hooks.dlq_url, MessageBody='{"delivery_id": "dlv_gone", "attempts": 3}')

    # Only admins redrive; a client's attempt leaves the DLQ as it was.
    refused = hooks.api.call("POST", f"{HOOKS}/dlq/redrive", authorizer=OWNER)
    _problem(refused, 403, "insufficient_scope")
    assert (
        hooks.sqs.get_queue_attributes(QueueUrl=hooks.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
        == "3"
    )

    reply = hooks.api.call("POST", f"{HOOKS}/dlq/redrive")

    assert reply.status == 200, reply.text
    assert reply.json == {"moved": 3, "reopened": 1}
    assert hooks.queue_messages(hooks.dlq_url) == []
    [message] = hooks.queue_messages()
    assert _fence(message) == (abandoned.delivery_id, 8)
    reopened = hooks.api.call(
        "GET", f"{HOOKS}/{created['endpoint_id']}/deliveries/{abandoned.delivery_id}/attempts", authorizer=OWNER
    ).json["delivery"]
    assert (reopened["status"], reopened["trigger"], reopened["max_attempts"]) == ("pending", "redrive", 8 + 1 + 2)

    # The worker sends it once more.
    assert delivery_wiring.engine().process(message).outcome == "delivered"
    [request] = receiver.wait_for(1, "/hooks")
    assert json.loads(request.body)["data"] == {"key_id": "k1"}

    empty = hooks.api.call("POST", f"{HOOKS}/dlq/redrive")
    assert empty.json == {"moved": 0, "reopened": 0}


# -- events ---------------------------------------------------------------------------------------
def test_the_event_catalog_lists_every_type_with_its_schema(hooks: Webhooks) -> None:
    types = hooks.api.call("GET", "/api/v1/events/types", authorizer=NO_SCOPE)
    docs = hooks.api.call("GET", "/api/v1/docs/events", authorizer=NO_SCOPE)

    assert types.status == docs.status == 200, types.text
    assert types.json == docs.json
    items = types.json["items"]
    assert [i["type"] for i in items] == sorted(EVENT_TYPES)
    for item in items:
        assert item["schema"] == EVENT_TYPES[item["type"]].schema
        assert item["schema"].get("type") == "object", item
        assert item["description"]
    assert {"key.rotated", "client.created", "endpoint.disabled", "message.attempt.exhausted"} <= set(EVENT_TYPES)
    _problem(hooks.api.call("GET", "/api/v1/events/types", authorizer={}), 401)


def test_trigger_publishes_an_event_item(hooks: Webhooks) -> None:
    reply = hooks.api.call("POST", "/api/v1/events/trigger", {"event_type": "key.rotated", "data": {"key_id": "k1"}})

    assert reply.status == 202, reply.text
    event_id = reply.json["event_id"]
    assert event_id.startswith("msg_")
    assert reply.json["event_type"] == "key.rotated"
    item = hooks.item(f"EVENT#{event_id}", "EVENT")
    assert item is not None
    assert item["message_id"]["S"] == event_id
    assert item["event_type"]["S"] == "key.rotated"
    assert json.loads(item["event_data"]["S"]) == {"key_id": "k1"}
    assert abs(parse_iso(item["occurred_at"]["S"]) - utc_now()) < timedelta(seconds=10)
    assert int(item["ttl"]["N"]) > time.time() + 29 * 24 * 3600
    assert "event_client" not in item  # an admin's test event without a client is a platform event

    about = hooks.api.call(
        "POST", "/api/v1/events/trigger", {"event_type": "client.created", "data": {}, "client_id": "acme"}
    )
    assert about.status == 202, about.text
    assert hooks.item(f"EVENT#{about.json['event_id']}", "EVENT")["event_client"] == {"S": "acme"}  # type: ignore[index]


def test_trigger_needs_events_write_and_a_known_type(hooks: Webhooks) -> None:
    own = hooks.api.call(
        "POST", "/api/v1/events/trigger", {"event_type": "key.rotated", "data": {"key_id": "k1"}}, authorizer=PUBLISHER
    )
    assert own.status == 202, own.text
    # A client's test event is about itself.
    assert hooks.item(f"EVENT#{own.json['event_id']}", "EVENT")["event_client"] == {"S": "hooli"}  # type: ignore[index]
    events_before = hooks.items_with_prefix("EVENT#")

    for who, body, status, code in (
        (OWNER, {"event_type": "key.rotated"}, 403, "insufficient_scope"),
        (NO_SCOPE, {"event_type": "key.rotated"}, 403, "insufficient_scope"),
        (PUBLISHER, {"event_type": "key.rotated", "client_id": "acme"}, 403, "not_your_client"),
        (PUBLISHER, {"event_type": "nothing.happened"}, 422, "unknown_event_type"),
        (ADMIN, {"event_type": "key.*"}, 422, "unknown_event_type"),
        (ADMIN, {"event_type": "key.rotated", "data": {"blob": "x" * 70_000}}, 422, "data_too_large"),
        (ADMIN, {"event_type": "key.rotated", "data": []}, 422, None),
        (ADMIN, {"event_type": "key.rotated", "extra": True}, 422, None),
        (ADMIN, {}, 422, None),
    ):
        reply = hooks.api.call("POST", "/api/v1/events/trigger", body, authorizer=who)
        _problem(reply, status, code)
    assert hooks.items_with_prefix("EVENT#") == events_before


# -- the stores against moto ----------------------------------------------------------------------
def _pending_delivery(endpoint_id: str, client_id: str = "acme", event_type: str = "key.rotated") -> Delivery:
    now = utc_now()
    event_id = new_event_id(now)
    return Delivery(
        delivery_id=derived_delivery_id(event_id, endpoint_id),
        endpoint_id=endpoint_id,
        client_id=client_id,
        event_id=event_id,
        event_type=event_type,
        payload=webhook_body(event_type, iso(now), {"key_id": "k1"}),
        status="pending",
        created_at=iso(now),
        max_attempts=3,
        next_attempt_at=iso(now),
    )


def _attempt(delivery: Delivery, number: int, outcome: str = "success") -> Attempt:
    return Attempt(
        delivery_id=delivery.delivery_id,
        attempt=number,
        started_at=iso(utc_now()),
        outcome=outcome,  # type: ignore[arg-type]
        latency_ms=12,
        status_code=204 if outcome == "success" else 500,
    )


def test_delivery_store_claims_once_and_records_only_under_the_lease(hooks: Webhooks, receiver: Receiver) -> None:
    endpoint = _endpoint_model(hooks, _create(hooks, receiver.url_for("/hooks"))["endpoint_id"])
    store = DynamoDeliveryStore(hooks.dynamodb, hooks.table)
    records = DynamoDeliveryRecords(hooks.dynamodb, hooks.table)
    delivery = _pending_delivery(endpoint.endpoint_id)
    assert records.create(delivery, endpoint) == "created"
    loaded = store.get(delivery.delivery_id)
    assert loaded == delivery

    # No lease: no record.
    done = Delivery(**{**delivery.__dict__, "status": "delivered", "attempts": 1, "next_attempt_at": None})
    assert store.record(delivery, _attempt(delivery, 1), done) is False

    now = time.time()
    assert store.claim(delivery, now, now + 60) is True
    assert store.claim(delivery, now + 1, now + 61) is False  # leased
    # Once the lease ran out another worker may take it (a killed worker's).
    assert store.claim(delivery, now + 61, now + 121) is True

    assert store.record(delivery, _attempt(delivery, 1), done) is True
    recorded = store.get(delivery.delivery_id)
    assert recorded is not None
    assert (recorded.status, recorded.attempts, recorded.lease_until) == ("delivered", 1, 0.0)
    assert recorded.delivered_at is None
    assert recorded.next_attempt_at is None
    # The other holder of attempt 1's lease comes too late: refused, no second attempt item.
    assert store.record(delivery, _attempt(delivery, 1), done) is False
    assert hooks.item(f"DELIVERY#{delivery.delivery_id}", "ATTEMPT#0001") is not None
    assert hooks.item(f"DELIVERY#{delivery.delivery_id}", "ATTEMPT#0002") is None
    # Settled: no claim, no settle from the state read before.
    assert store.claim(recorded, now + 200, now + 260) is False
    assert store.claim(delivery, now + 200, now + 260) is False
    assert store.settle(delivery, Delivery(**{**delivery.__dict__, "status": "failed"})) is False
    assert store.get(delivery.delivery_id) == recorded


def test_delivery_store_settles_and_reopens_conditionally(hooks: Webhooks, receiver: Receiver) -> None:
    endpoint = _endpoint_model(hooks, _create(hooks, receiver.url_for("/hooks"))["endpoint_id"])
    store = DynamoDeliveryStore(hooks.dynamodb, hooks.table)
    delivery = _pending_delivery(endpoint.endpoint_id)
    assert DynamoDeliveryRecords(hooks.dynamodb, hooks.table).create(delivery, endpoint) == "created"

    failed = Delivery(**{**delivery.__dict__, "status": "failed", "last_error": "the endpoint was deleted"})
    assert store.settle(delivery, failed) is True
    assert store.settle(delivery, failed) is False  # it is no longer pending
    settled = store.get(delivery.delivery_id)
    assert settled is not None
    assert (settled.status, settled.last_error, settled.next_attempt_at) == ("failed", "the endpoint was deleted", None)

    assert store.reopen(delivery, 5, "replay", iso(utc_now())) is False  # read before it settled
    assert store.reopen(settled, 5, "replay", iso(utc_now())) is True
    reopened = store.get(delivery.delivery_id)
    assert reopened is not None
    assert (reopened.status, reopened.max_attempts, reopened.trigger) == ("pending", 5, "replay")

    assert store.queued_for(delivery.delivery_id) == 0
    store.mark_queued(delivery.delivery_id, 3)
    assert store.queued_for(delivery.delivery_id) == 3
    store.mark_queued("dlv_missing", 1)  # never creates a fragment
    assert hooks.item("DELIVERY#dlv_missing", "DELIVERY") is None


def test_ordered_endpoints_take_gapless_sequence_numbers(hooks: Webhooks, receiver: Receiver) -> None:
    endpoint_id = _create(hooks, receiver.url_for("/hooks"), ordering="ordered")["endpoint_id"]
    endpoint = _endpoint_model(hooks, endpoint_id)
    records = DynamoDeliveryRecords(hooks.dynamodb, hooks.table)
    store = DynamoDeliveryStore(hooks.dynamodb, hooks.table)
    first, second = _pending_delivery(endpoint_id), _pending_delivery(endpoint_id)

    assert records.create(first, endpoint) == "created"
    assert records.create(second, endpoint) == "created"

    def seq(delivery: Delivery) -> int:
        item = hooks.item(f"DELIVERY#{delivery.delivery_id}", "DELIVERY")
        assert item is not None
        return int(item["seq"]["N"])

    def counter() -> int:
        item = hooks.item(f"WEBHOOK#{endpoint_id}", "ENDPOINT")
        assert item is not None
        return int(item["next_seq"]["N"])

    assert (seq(first), seq(second), counter()) == (1, 2, 2)

    # A retried fan-out of the same event: no new record, no number taken.
    assert records.create(first, endpoint) == "exists_unsent"
    now = time.time()
    claimed = store.get(first.delivery_id)
    assert claimed is not None
    assert store.claim(claimed, now, now + 60)
    sent = Delivery(**{**claimed.__dict__, "status": "delivered", "attempts": 1, "next_attempt_at": None})
    assert store.record(claimed, _attempt(claimed, 1), sent)
    assert records.create(first, endpoint) == "exists"
    assert (seq(first), seq(second), counter()) == (1, 2, 2)

    # An unordered endpoint's deliveries take none.
    unordered = _endpoint_model(hooks, _create(hooks, receiver.url_for("/plain"))["endpoint_id"])
    plain = _pending_delivery(unordered.endpoint_id)
    assert records.create(plain, unordered) == "created"
    assert records.create(plain, unordered) == "exists_unsent"
    assert seq(plain) == 0

    # The endpoint was deleted meanwhile: nothing to record.
    hooks.api.call("DELETE", f"{HOOKS}/{endpoint_id}", authorizer=OWNER)
    late = _pending_delivery(endpoint_id)
    assert records.create(late, endpoint) == "exists"
    assert hooks.item(f"DELIVERY#{late.delivery_id}", "DELIVERY") is None


def test_endpoint_health_disables_once(hooks: Webhooks, receiver: Receiver) -> None:
    created = _create(hooks, receiver.url_for("/hooks"))
    health = DynamoEndpointHealth(hooks.dynamodb, hooks.table)
    endpoint = _endpoint_model(hooks, created["endpoint_id"])

    failing = health.record_failure(endpoint, iso(utc_now()), 0.0)
    assert failing.consecutive_failures == 1
    assert failing.failing_since is not None
    assert health.record_failure(endpoint, iso(utc_now()), 0.0).failing_since == failing.failing_since

    def events_of(event_type: str) -> list[dict[str, Any]]:
        # Published events are items with an event_type (standalone or inside an audit item).
        return [i for i in hooks.items_with_prefix("") if i.get("event_type", {}).get("S") == event_type]

    def disabled_event(reason: str) -> dict[str, Any]:
        data = {"endpoint_id": endpoint.endpoint_id, "url": endpoint.url, "reason": reason, "disabled_at": at}
        return event_item("endpoint.disabled", data, client_id=endpoint.client_id)

    at = iso(utc_now())
    assert health.disable(endpoint, "gone", at, disabled_event("gone")) is True
    assert health.disable(endpoint, "failing", at, disabled_event("failing")) is False
    [announced] = events_of("endpoint.disabled")  # announced once, with the change
    assert json.loads(announced["event_data"]["S"])["reason"] == "gone"
    shown = hooks.api.call("GET", f"{HOOKS}/{created['endpoint_id']}", authorizer=OWNER)
    assert (shown.json["active"], shown.json["disabled_reason"], shown.json["disabled_at"]) == (False, "gone", at)
    # Disabling is a new version (the ETag): a change based on an earlier read cannot reactivate it.
    assert shown.header("ETag") == '"2"'

    enabled = hooks.api.call("POST", f"{HOOKS}/{created['endpoint_id']}/enable", authorizer=OWNER)
    assert enabled.status == 200, enabled.text
    assert (enabled.json["active"], enabled.json["disabled_reason"], enabled.json["consecutive_failures"]) == (
        True,
        None,
        0,
    )
    assert len(events_of("endpoint.enabled")) == 1
    # Enabling an active endpoint changes nothing and announces nothing.
    again = hooks.api.call("POST", f"{HOOKS}/{created['endpoint_id']}/enable", authorizer=OWNER)
    assert again.status == 200, again.text
    assert len(events_of("endpoint.enabled")) == 1
    current = _endpoint_model(hooks, created["endpoint_id"])
    assert health.disable(current, "failing", at, disabled_event("failing")) is True
    assert len(events_of("endpoint.disabled")) == 2

    hooks.api.call("DELETE", f"{HOOKS}/{created['endpoint_id']}", authorizer=OWNER)
    assert health.disable(endpoint, "gone", at, disabled_event("gone")) is False
    assert len(events_of("endpoint.disabled")) == 2
    health.record_success(endpoint)
    assert hooks.item(f"WEBHOOK#{created['endpoint_id']}", "ENDPOINT") is None  # no fragment brought back
