"""Upstream secrets end to end, through the local runtime as deployed from the CDK template (the
management function encrypting with the secrets key, the proxy function, alone, decrypting it,
each signing as its own role behind the IAM gate): an admin sets a secret, a route refers to it,
a caller reaches a loopback upstream that receives the credential; a `gateway:read` client reads
the route and sees no credential; the secret deleted, calls fail as 502 problems."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningGateway, eventually
from tests.e2e.test_product import ADMIN_KEY
from tests.upstreams import Reply, Request, _Upstream, json_reply

TOKEN = "tok_e2e_" + secrets.token_hex(12)
PARTNER_KEY = "ak_e2e_" + secrets.token_hex(12)


class RecordingUpstream(_Upstream):
    """Records what it receives and answers without echoing it."""

    def __init__(self) -> None:
        self.received: list[Request] = []
        super().__init__()

    def respond(self, request: Request) -> Reply:
        with self._lock:
            self.received.append(request)
        return json_reply(200, {"ok": True})


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    server = RecordingUpstream()
    yield server
    server.close()


def admin(gateway: RunningGateway) -> httpx.Client:
    return gateway.client(headers={"x-api-key": ADMIN_KEY})


def key_with(gateway: RunningGateway, scopes: list[str], tier: str = "free") -> str:
    with admin(gateway) as http:
        created = http.post(
            "/api/v1/clients/register",
            json={
                "name": f"secrets-{secrets.token_hex(4)}",
                "client_type": "integration",
                "contact_email": "ops@partner.example",
                "allowed_scopes": scopes,
                "tier": tier,
            },
        )
        assert created.status_code == 201, created.text
        key = http.post("/api/v1/gateway/keys", json={"client_id": created.json()["client_id"], "name": "e2e"})
        assert key.status_code == 201, key.text
    api_key: str = key.json()["api_key"]
    return api_key


@pytest.fixture(scope="module")
def setup(gateway: RunningGateway, upstream: RecordingUpstream) -> dict[str, Any]:
    with admin(gateway) as http:
        created = http.post("/api/v1/gateways", json={"name": "secret-partners", "base_path": "/secret-partners"})
        assert created.status_code == 201, created.text
        gateway_id = created.json()["gateway_id"]
        for name, value in (("orders_token", TOKEN), ("partner_key", PARTNER_KEY)):
            put = http.put(f"/api/v1/gateways/{gateway_id}/secrets/{name}", json={"value": value})
            assert put.status_code == 201, put.text
            assert value not in put.text
        route = http.post(
            "/api/v1/gateway/routes",
            json={
                "gateway_id": gateway_id,
                "name": "Orders with an upstream credential",
                "method": "GET",
                "path": "/orders/{id}",
                "targets": [{"url": upstream.url}],
                "auth_required": False,
                "request_transform": {
                    "headers": {"add": {"Authorization": "Bearer {{ secrets.orders_token }}"}},
                    "query": {"add": {"api_key": "{{ secrets.partner_key }}"}},
                },
            },
        )
        assert route.status_code == 201, route.text
        deployed = http.post(f"/api/v1/gateways/{gateway_id}/deploy", json={"description": "with secrets"})
        assert deployed.status_code == 201, deployed.text
    return {"gateway_id": gateway_id, "route_id": route.json()["route_id"]}


def test_a_route_refers_to_a_secret_and_the_upstream_receives_the_credential(
    gateway: RunningGateway, upstream: RecordingUpstream, setup: dict[str, Any]
) -> None:
    with gateway.client() as http:
        answer = eventually(lambda: (r := http.get("/gw/secret-partners/orders/42")).status_code == 200 and r)

    received = upstream.received[-1]
    assert received.path == "/orders/42"
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert received.query == f"api_key={PARTNER_KEY}"
    assert TOKEN not in answer.text + str(answer.headers)
    # Nothing the gateway keeps holds the values: request logs, audit events, the secret items.
    table = gateway.outputs("FinanceGateway")["TableName"]
    dynamodb = gateway.aws("dynamodb")
    scanned = dynamodb.get_paginator("scan").paginate(TableName=table)
    text = str([page["Items"] for page in scanned])
    assert "secret-partners" in text  # the scan did see this gateway's items
    assert TOKEN not in text
    assert PARTNER_KEY not in text


def test_a_gateway_read_client_reads_the_route_and_versions_without_any_credential(
    gateway: RunningGateway, setup: dict[str, Any]
) -> None:
    reader = key_with(gateway, ["gateway:read"])
    gateway_id, route_id = setup["gateway_id"], setup["route_id"]
    with gateway.client(headers={"x-api-key": reader}) as http:
        reads = [
            http.get(f"/api/v1/gateway/routes/{route_id}"),
            http.get("/api/v1/gateway/routes", params={"gateway_id": gateway_id}),
            http.get(f"/api/v1/gateways/{gateway_id}/versions/1"),
        ]
        secrets_list = http.get(f"/api/v1/gateways/{gateway_id}/secrets")
    for read in reads:
        assert read.status_code == 200, read.text
        assert "{{ secrets.orders_token }}" in read.text  # the reference, not the value
        assert TOKEN not in read.text
        assert PARTNER_KEY not in read.text
    assert secrets_list.status_code == 403  # names and history of secrets are for admins


@pytest.mark.parametrize(
    ("overrides", "place"),
    [
        ({"request_transform": {"headers": {"add": {"X-Api-Key": PARTNER_KEY}}}}, "X-Api-Key"),
        (
            {
                "method": "POST",
                "request_transform": {"body": {"grant_type": "client_credentials", "client_secret": TOKEN}},
            },
            "request_transform.body: client_secret",
        ),
        (
            {
                "method": "POST",
                "protocol": "graphql",
                "graphql": {"query": "query($k: String) { a(k: $k) }", "variables": {"auth": {"apiKey": TOKEN}}},
            },
            "graphql.variables: auth.apiKey",
        ),
    ],
)
def test_a_literal_credential_in_a_route_is_refused_naming_where_it_is(
    gateway: RunningGateway, setup: dict[str, Any], overrides: dict[str, Any], place: str
) -> None:
    with admin(gateway) as http:
        refused = http.post(
            "/api/v1/gateway/routes",
            json={
                "gateway_id": setup["gateway_id"],
                "name": "literal",
                "method": "GET",
                "path": "/literal",
                "targets": [{"url": "https://orders.example.com"}],
                **overrides,
            },
        )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert place in refused.text
    assert PARTNER_KEY not in refused.text
    assert TOKEN not in refused.text


def test_a_secret_deleted_and_set_again_is_sent_with_its_new_value_by_every_warm_container(
    gateway: RunningGateway, upstream: RecordingUpstream, setup: dict[str, Any]
) -> None:
    recreated = "tok_e2e_again_" + secrets.token_hex(12)
    # A client of its own, whose limits leave room for polling (anonymous callers get 30/min).
    caller = {"x-api-key": key_with(gateway, ["gateway:read"], tier="professional")}
    with gateway.client(headers=caller) as http:
        for _ in range(4):  # warm the proxy's containers with the first value
            assert http.get("/gw/secret-partners/orders/44").status_code == 200
    with admin(gateway) as http:
        assert http.delete(f"/api/v1/gateways/{setup['gateway_id']}/secrets/orders_token").status_code == 204
        again = http.put(f"/api/v1/gateways/{setup['gateway_id']}/secrets/orders_token", json={"value": recreated})
    assert (again.status_code, again.json()["version"]) == (201, 1)  # the version the containers hold

    # Each container checks a secret it holds again within 30 s; then every call has the new value.
    def all_new() -> bool:
        with gateway.client(headers=caller) as http:
            for _ in range(6):
                before = len(upstream.received)
                assert http.get("/gw/secret-partners/orders/44").status_code == 200
                if upstream.received[before:][-1].headers["authorization"] != f"Bearer {recreated}":
                    return False
        return True

    eventually(all_new, timeout=60, interval=1)


def test_a_deleted_secret_fails_the_calls_that_need_it_with_a_502_problem(
    gateway: RunningGateway, upstream: RecordingUpstream, setup: dict[str, Any]
) -> None:
    with admin(gateway) as http:
        deleted = http.delete(f"/api/v1/gateways/{setup['gateway_id']}/secrets/partner_key")
    assert deleted.status_code == 204

    # Each proxy container checks a secret it holds again within 30 s.
    with gateway.client() as http:
        failed = eventually(
            lambda: (r := http.get("/gw/secret-partners/orders/43")).status_code == 502 and r, timeout=60, interval=1
        )
    problem = failed.json()
    assert failed.headers["content-type"] == "application/problem+json"
    assert (problem["code"], problem["secret"]) == ("secret_unavailable", "partner_key")
    assert TOKEN not in failed.text
