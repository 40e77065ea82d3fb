"""The dynamic proxy end to end: an admin defines a gateway and routes over HTTP, deploys them,
and callers reach real upstream servers on loopback (JSON, SOAP, GraphQL, one that fails on
demand) through the local runtime: API Gateway, the gateway authorizer, the proxy (data plane) function,
DynamoDB rate limits and request logs, all as deployed from the CDK template."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningGateway, eventually
from tests.e2e.test_product import ADMIN_KEY
from tests.upstreams import GraphqlUpstream, JsonUpstream, SoapUpstream

FAST_RETRY = {"max_attempts": 3, "initial_delay": 0.05, "max_delay": 0.2, "multiplier": 2.0}


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway  # its schedules run 60 times faster: health checks every second


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Any]]:
    servers = {
        "orders": JsonUpstream(name="orders-a"),
        "orders_b": JsonUpstream(name="orders-b"),
        "flaky": JsonUpstream(name="flaky"),
        "soap": SoapUpstream(),
        "graphql": GraphqlUpstream(),
    }
    yield servers
    for server in servers.values():
        server.close()


def admin(gateway: RunningGateway) -> httpx.Client:
    return gateway.client(headers={"x-api-key": ADMIN_KEY})


def register(gateway: RunningGateway, name: str, scopes: list[str], **extra: Any) -> tuple[str, str]:
    """A client and an API key for it."""
    with admin(gateway) as http:
        created = http.post(
            "/api/v1/clients/register",
            json={
                "name": name,
                "client_type": "integration",
                "contact_email": "ops@partner.example",
                "allowed_scopes": scopes,
                **extra,
            },
        )
        assert created.status_code == 201, created.text
        client_id = created.json()["client_id"]
        key = http.post("/api/v1/gateway/keys", json={"client_id": client_id, "name": "proxy"})
        assert key.status_code == 201, key.text
    return client_id, key.json()["api_key"]


@pytest.fixture(scope="module")
def setup(gateway: RunningGateway, upstreams: dict[str, Any]) -> dict[str, Any]:
    """One gateway with a route per protocol and behaviour, deployed."""
    with admin(gateway) as http:
        created = http.post("/api/v1/gateways", json={"name": "partners", "base_path": ""})
        assert created.status_code == 201, created.text
        gateway_id = created.json()["gateway_id"]
        routes: dict[str, dict[str, Any]] = {
            "orders": {
                "name": "Order by id",
                "method": "GET",
                "path": "/orders/{id}",
                "upstream_path": "/v2/orders/{id}",
                "targets": [{"url": upstreams["orders"].url}],
                "required_scopes": ["banking:read"],
                "rate_limits": {"per_minute": 1000},
                "request_transform": {
                    "headers": {"add": {"X-Partner": "{{ client.id }}"}, "remove": ["X-Debug"]},
                    "query": {"rename": {"ccy": "currency"}},
                },
                "response_transform": {"headers": {"add": {"X-Served-By": "gateway"}}},
                "retry": FAST_RETRY,
            },
            "payment": {
                "name": "Create payment",
                "method": "POST",
                "path": "/payments",
                "targets": [{"url": upstreams["orders"].url}],
                "required_scopes": ["payments:write"],
                "request_transform": {
                    "body": {
                        "amount": "{{ body.amount }}",
                        "currency": '{{ body.ccy | default("EUR") }}',
                        "reference": "{{ request.id }}",
                    }
                },
                "retry": FAST_RETRY,
            },
            "balance": {
                "name": "Balance over SOAP",
                "method": "POST",
                "path": "/accounts/{account}/balance",
                "upstream_path": "/soap",
                "targets": [{"url": upstreams["soap"].url}],
                "protocol": "soap",
                "soap": {
                    "version": "1.1",
                    "namespace": "urn:bank:accounts",
                    "operation": "GetBalance",
                    "action": "urn:bank:accounts#GetBalance",
                },
                "request_transform": {"body": {"accountId": "{{ path.account }}"}},
            },
            "account": {
                "name": "Account over GraphQL",
                "method": "GET",
                "path": "/accounts/{account}",
                "upstream_path": "/graphql",
                "targets": [{"url": upstreams["graphql"].url}],
                "protocol": "graphql",
                "graphql": {
                    "query": "query Account($id: ID!) { account(id: $id) { id balance currency } }",
                    "operation_name": "Account",
                    "variables": {"id": "{{ path.account }}"},
                },
                "auth_required": False,
            },
            "flaky": {
                "name": "Two targets, one failing",
                "method": "GET",
                "path": "/flaky/{id}",
                "targets": [{"url": upstreams["flaky"].url}, {"url": upstreams["orders_b"].url}],
                "load_balancing": "round_robin",
                "retry": FAST_RETRY,
            },
            "limited": {
                "name": "Tight limit",
                "method": "GET",
                "path": "/limited",
                "targets": [{"url": upstreams["orders_b"].url}],
                "rate_limits": {"per_day": 20},
            },
            "cached": {
                "name": "Cached quotes",
                "method": "GET",
                "path": "/quotes/{symbol}",
                "targets": [{"url": upstreams["orders_b"].url}],
                "cache_ttl_seconds": 60,
                "deprecated": True,
                "sunset_date": "2027-06-30",
            },
        }
        ids = {}
        for key, spec in routes.items():
            made = http.post("/api/v1/gateway/routes", json={"gateway_id": gateway_id, **spec})
            assert made.status_code == 201, made.text
            ids[key] = made.json()["route_id"]
        deployed = http.post(f"/api/v1/gateways/{gateway_id}/deploy", json={"description": "first"})
        assert deployed.status_code == 201, deployed.text
    client_id, key = register(gateway, "Proxy Partner", ["banking:read", "payments:write"], tier="basic")
    _, reader_key = register(gateway, "Read-only Partner", ["data:read"])
    return {"gateway_id": gateway_id, "routes": ids, "client_id": client_id, "key": key, "reader_key": reader_key}


def call(gateway: RunningGateway, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if key:
        headers["x-api-key"] = key
    with gateway.client() as http:
        return http.request(method, path, headers=headers, **kwargs)


def test_a_deployed_route_proxies_with_transformations_and_correlation(
    gateway: RunningGateway, upstreams: dict[str, Any], setup: dict[str, Any]
) -> None:
    response = call(
        gateway,
        "GET",
        "/gw/orders/42",
        setup["key"],
        params={"ccy": "EUR", "page": "2"},
        headers={"X-Debug": "1", "X-Request-Id": "corr-123", "Authorization": "Bearer not-for-upstream"},
    )
    assert response.status_code == 200, response.text
    echo = response.json()
    assert echo["path"] == "/v2/orders/42"
    assert echo["query"] == {"currency": ["EUR"], "page": ["2"]}
    seen = echo["headers"]
    assert seen["x-partner"] == setup["client_id"]
    assert "x-debug" not in seen
    # The caller's credentials stay here.
    assert "x-api-key" not in seen
    assert "authorization" not in seen
    assert seen["x-request-id"] == "corr-123"
    assert response.headers["X-Request-Id"] == "corr-123"
    assert response.headers["X-Served-By"] == "gateway"
    assert '"minute"' in response.headers["RateLimit-Policy"]
    assert "r=" in response.headers["RateLimit"]


def test_scopes_and_credentials_are_checked_per_route(gateway: RunningGateway, setup: dict[str, Any]) -> None:
    missing = call(gateway, "GET", "/gw/orders/42")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "credential_required"
    narrow = call(gateway, "GET", "/gw/orders/42", setup["reader_key"])
    assert narrow.status_code == 403
    assert narrow.json()["code"] == "insufficient_scope"
    bad_key = call(gateway, "GET", "/gw/orders/42", "gk_live_" + "x" * 43)
    assert bad_key.status_code == 401  # a bad credential is refused, never treated as anonymous
    unknown = call(gateway, "GET", "/gw/nowhere", setup["key"])
    assert (unknown.status_code, unknown.json()["code"]) == (404, "route_not_found")
    wrong_method = call(gateway, "DELETE", "/gw/orders/42", setup["key"])
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "GET"


def test_body_templates_keep_money_exact(gateway: RunningGateway, setup: dict[str, Any]) -> None:
    response = call(
        gateway,
        "POST",
        "/gw/payments",
        setup["key"],
        content=b'{"amount": 1234.50, "note": "x"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    sent = response.json()["body"]
    assert sent["currency"] == "EUR"
    assert Decimal(str(sent["amount"])) == Decimal("1234.50")
    assert b'"amount":1234.50' in upstream_raw_body(response)
    assert sent["reference"] == response.headers["X-Request-Id"]


def upstream_raw_body(response: httpx.Response) -> bytes:
    # The echo server writes numbers as it read them; the proxy passed its JSON through untouched.
    return response.content


def test_rest_to_soap_and_faults_to_problems(gateway: RunningGateway, setup: dict[str, Any]) -> None:
    ok = call(gateway, "POST", "/gw/accounts/ACC-1/balance", setup["key"])
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"accountId": "ACC-1", "balance": "1234.56", "currency": "EUR"}
    fault = call(gateway, "POST", "/gw/accounts/NOPE/balance", setup["key"])
    assert fault.status_code == 400
    assert fault.json()["code"] == "upstream_rejected"
    as_xml = call(gateway, "POST", "/gw/accounts/ACC-2/balance", setup["key"], headers={"accept": "application/xml"})
    assert as_xml.headers["content-type"].startswith("application/xml")
    assert b"<balance>0.10</balance>" in as_xml.content


def test_rest_to_graphql_anonymous_route_and_errors(gateway: RunningGateway, setup: dict[str, Any]) -> None:
    ok = call(gateway, "GET", "/gw/accounts/ACC-1")  # auth_required false: no credential needed
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"account": {"id": "ACC-1", "balance": "1234.56", "currency": "EUR"}}
    missing = call(gateway, "GET", "/gw/accounts/NOPE")
    assert missing.status_code == 502
    assert missing.json()["code"] == "upstream_graphql_error"
    assert missing.json()["errors"][0]["message"] == "Account not found"
    csv = call(gateway, "GET", "/gw/accounts/ACC-2", headers={"accept": "text/csv"})
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")


def test_failover_and_circuit_breaker(
    gateway: RunningGateway, upstreams: dict[str, Any], setup: dict[str, Any]
) -> None:
    flaky: JsonUpstream = upstreams["flaky"]
    healthy: JsonUpstream = upstreams["orders_b"]
    flaky.fail_next(100, status=503)
    before_flaky, before_healthy = flaky.count, healthy.count
    answers = [call(gateway, "GET", f"/gw/flaky/{i}", setup["key"]) for i in range(12)]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    assert all(a.headers.get("X-Upstream-Name") == "orders-b" for a in answers)
    # Five failures open the flaky target's circuit: after that it gets no traffic at all.
    assert flaky.count - before_flaky == 5
    assert healthy.count - before_healthy == 12
    flaky.fail_next(0)


def test_limits_refuse_with_retry_after_and_exact_counts_under_concurrency(
    gateway: RunningGateway, setup: dict[str, Any]
) -> None:
    _, key = register(gateway, "Concurrent Partner", ["banking:read"])
    admitted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(6):
            status = call(gateway, "GET", "/gw/limited", key).status_code
            with lock:
                admitted.append(status)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 30
    assert admitted.count(200) == 20  # the route allows 20 per day per client, exactly
    assert admitted.count(429) == 10
    refused = call(gateway, "GET", "/gw/limited", key)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["code"] == "rate_limited"
    assert '"route-day";r=0' in refused.headers["RateLimit"]


def test_cache_and_deprecation_headers(
    gateway: RunningGateway, upstreams: dict[str, Any], setup: dict[str, Any]
) -> None:
    server: JsonUpstream = upstreams["orders_b"]
    first = call(gateway, "GET", "/gw/quotes/EURUSD", setup["key"])
    count = server.count
    second = call(gateway, "GET", "/gw/quotes/EURUSD", setup["key"])
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert server.count == count  # served from the cache
    assert second.json() == first.json()
    assert first.headers["Deprecation"].startswith("@")
    assert first.headers["Sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"


def test_every_proxied_request_is_logged_without_secrets(gateway: RunningGateway, setup: dict[str, Any]) -> None:
    response = call(gateway, "GET", "/gw/orders/7", setup["key"], params={"token": "s3cr3t-value"})
    request_id = response.headers["X-Request-Id"]
    table = gateway.outputs("FinanceGateway")["TableName"]
    dynamodb = gateway.aws("dynamodb")

    def logged() -> Any:
        page = dynamodb.query(
            TableName=table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}},
        )
        return page["Items"]

    items = eventually(logged, timeout=10)
    record = items[0]
    assert record["status_code"]["N"] == "200"
    assert record["route_id"]["S"] == setup["routes"]["orders"]
    text = str(record)
    assert setup["key"] not in text
    assert "s3cr3t-value" not in text


def test_batch_runs_each_request_through_the_same_checks(gateway: RunningGateway, setup: dict[str, Any]) -> None:
    with gateway.client(headers={"x-api-key": setup["key"]}) as http:
        answer = http.post(
            "/api/v1/batch",
            json={
                "requests": [
                    {"id": "a", "method": "GET", "path": "/gw/orders/1"},
                    {"id": "b", "method": "POST", "path": "/gw/accounts/ACC-1/balance"},
                    {"id": "c", "method": "GET", "path": "/gw/nowhere"},
                ]
            },
        )
    assert answer.status_code == 200, answer.text
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert by_id["a"]["status"] == 200
    assert by_id["a"]["body"]["path"] == "/v2/orders/1"
    assert by_id["b"]["body"]["balance"] == "1234.56"
    assert by_id["c"]["status"] == 404
    with gateway.client(headers={"x-api-key": setup["reader_key"]}) as http:
        refused = http.post("/api/v1/batch", json={"requests": [{"method": "GET", "path": "/gw/orders/1"}]})
    assert refused.json()["responses"][0]["status"] == 403


def test_canary_then_rollback(gateway: RunningGateway, upstreams: dict[str, Any], setup: dict[str, Any]) -> None:
    gateway_id = setup["gateway_id"]
    with admin(gateway) as http:
        route = http.get(f"/api/v1/gateway/routes/{setup['routes']['limited']}")
        spec = {
            k: v
            for k, v in route.json().items()
            if k not in ("route_id", "version", "created_at", "updated_at", "created_by")
        }
        spec["rate_limits"] = {"per_day": 100000}
        changed = http.put(
            f"/api/v1/gateway/routes/{setup['routes']['limited']}",
            json=spec,
            headers={"If-Match": route.headers["ETag"]},
        )
        assert changed.status_code == 200, changed.text
        stale = http.put(
            f"/api/v1/gateway/routes/{setup['routes']['limited']}",
            json=spec,
            headers={"If-Match": route.headers["ETag"]},
        )
        assert (stale.status_code, stale.json()["code"]) == (412, "version_mismatch")
        canary = http.post(f"/api/v1/gateways/{gateway_id}/deploy", json={"strategy": "canary", "canary_percent": 50})
        assert canary.status_code == 201, canary.text
        deployment = canary.json()["deployment"]
        assert (deployment["active_version"], deployment["canary_version"]) == (1, 2)
        promoted = http.post(f"/api/v1/gateways/{gateway_id}/promote")
        assert promoted.json()["deployment"]["active_version"] == 2
        rolled = http.post(f"/api/v1/gateways/{gateway_id}/rollback", json={})
        assert rolled.json()["deployment"]["active_version"] == 1
        versions = http.get(f"/api/v1/gateways/{gateway_id}/versions")
        assert [v["version"] for v in versions.json()["items"]] == [2, 1]


def test_upstream_urls_are_checked_against_ssrf(gateway: RunningGateway, setup: dict[str, Any]) -> None:
    with admin(gateway) as http:
        for url in ("http://169.254.169.254", "http://10.0.0.5", "http://localhost:80", "ftp://127.0.0.1"):
            refused = http.post(
                "/api/v1/gateway/routes",
                json={
                    "gateway_id": setup["gateway_id"],
                    "name": "bad",
                    "method": "GET",
                    "path": "/bad",
                    "targets": [{"url": url}],
                },
            )
            assert refused.status_code == 422, (url, refused.text)


def test_health_checks_take_a_down_target_out(gateway: RunningGateway, upstreams: dict[str, Any]) -> None:
    primary, spare = JsonUpstream(name="primary"), JsonUpstream(name="spare")
    try:
        with admin(gateway) as http:
            made = http.post("/api/v1/gateways", json={"name": "health", "base_path": "/health-demo"})
            gateway_id = made.json()["gateway_id"]
            route = http.post(
                "/api/v1/gateway/routes",
                json={
                    "gateway_id": gateway_id,
                    "name": "checked",
                    "method": "GET",
                    "path": "/ping",
                    "auth_required": False,
                    "load_balancing": "weighted",
                    "targets": [{"url": primary.url, "weight": 1000}, {"url": spare.url, "weight": 1}],
                    "health_check": {"path": "/health"},
                },
            )
            assert route.status_code == 201, route.text
            assert http.post(f"/api/v1/gateways/{gateway_id}/deploy", json={}).status_code == 201
        primary.healthy = False
        eventually(lambda: primary.health_checks > 0, timeout=20)
        time.sleep(3)  # the proxy re-reads target health every 2 s

        def served_by_spare() -> bool:
            answer = call(gateway, "GET", "/gw/health-demo/ping")
            return answer.status_code == 200 and answer.headers.get("X-Upstream-Name") == "spare"

        assert eventually(served_by_spare, timeout=20)
        before = primary.count
        for _ in range(5):
            assert call(gateway, "GET", "/gw/health-demo/ping").headers.get("X-Upstream-Name") == "spare"
        assert primary.count == before
    finally:
        primary.close()
        spare.close()


def test_limits_an_admin_changes_apply_within_seconds(gateway: RunningGateway, setup: dict[str, Any]) -> None:
    client_id, key = register(
        gateway, "Throttled Partner", ["banking:read"], rate_limits={"per_minute": 2, "per_hour": 100, "per_day": 1000}
    )
    statuses = [call(gateway, "GET", "/gw/orders/1", key).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = call(gateway, "GET", "/gw/orders/1", key)
    assert '"minute";q=2;w=60' in refused.headers["RateLimit-Policy"]
    with admin(gateway) as http:
        raised = http.put(
            f"/api/v1/clients/{client_id}",
            json={"rate_limits": {"per_minute": 600, "per_hour": 10000, "per_day": 100000}},
            headers={"If-Match": http.get(f"/api/v1/clients/{client_id}").headers["ETag"]},
        )
        assert raised.status_code == 200, raised.text
    # The proxy re-reads a client's limits every few seconds: no deploy, no restart.
    assert eventually(lambda: call(gateway, "GET", "/gw/orders/1", key).status_code == 200, timeout=15, interval=0.5)
    assert '"minute";q=600;w=60' in call(gateway, "GET", "/gw/orders/1", key).headers["RateLimit-Policy"]


def test_a_key_with_its_own_limits_is_limited_by_them(gateway: RunningGateway, setup: dict[str, Any]) -> None:
    with admin(gateway) as http:
        made = http.post(
            "/api/v1/gateway/keys",
            json={
                "client_id": setup["client_id"],
                "name": "batch job",
                "rate_limits": {"per_minute": 2, "per_hour": 50, "per_day": 500},
            },
        )
        assert made.status_code == 201, made.text
    key = made.json()["api_key"]
    statuses = [call(gateway, "GET", "/gw/orders/5", key).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = call(gateway, "GET", "/gw/orders/5", key)
    assert '"minute";q=2;w=60' in refused.headers["RateLimit-Policy"]
    # The client's other key keeps the client's (basic tier) limits.
    other = call(gateway, "GET", "/gw/orders/5", setup["key"])
    assert other.status_code == 200
    assert '"minute";q=300;w=60' in other.headers["RateLimit-Policy"]
