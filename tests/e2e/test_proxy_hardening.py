"""The data plane against an adversarial caller and adversarial upstreams, end to end through the
local runtime (API Gateway, the gateway authorizer, the proxy function from its built assets) to
loopback upstreams that record exactly what reached them: path parameters that try to climb out
of a route's upstream path, decompression bombs, headers that claim the client's address or
another method, redirects to internal addresses, upstream CORS headers, routes that loop back to
the gateway, and upstream URLs spelled to slip past the SSRF guard."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import RunningGateway, eventually
from tests.e2e.test_proxy import admin
from tests.upstreams import Reply, ScriptedUpstream, encoded, json_reply, zeros_bomb

GIB = 1 << 30
MIB = 1 << 20
BASE = "/gw/hard"
BODY = b'{"amount":"1234.50","currency":"EUR"}'
INSIDE = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/admin",
    "http://0177.0.0.1/",
    "http://localhost/",
    "//169.254.169.254/",
    "/\\10.0.0.5/",
    "http:192.168.0.1/",
]
LINKS = ['</p?page=2>; rel="next"', '</p?page=9>; rel="last"']
UPSTREAM_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Credentials": "true",
    "Access-Control-Allow-Methods": "GET, DELETE",
    "Access-Control-Expose-Headers": "X-Internal-Token",
}


def _answers() -> dict[str, Reply | Any]:
    replies: dict[str, Reply | Any] = {
        "/answer/small-gzip": Reply(
            200, encoded(BODY, "gzip", "gzip"), "application/json", {"Content-Encoding": "gzip, gzip"}
        ),
        # 1 GiB of zeros, gzip over gzip: about 2 KB on the wire, built once per session.
        "/answer/bomb": Reply(
            200, zeros_bomb(GIB, "gzip", "gzip"), "application/json", {"Content-Encoding": "gzip, gzip"}
        ),
        "/answer/deflate-bomb": Reply(
            200,
            zeros_bomb(256 * MIB, "deflate", "deflate"),
            "application/json",
            {"Content-Encoding": "deflate, deflate"},
        ),
        "/answer/corrupt": Reply(
            200, b"\x1f\x8b\x08\x00not really gzip", "application/json", {"Content-Encoding": "gzip"}
        ),
        "/answer/three-layers": Reply(
            200, encoded(BODY, "gzip", "gzip", "gzip"), "application/json", {"Content-Encoding": "gzip, gzip, gzip"}
        ),
        "/answer/br": Reply(200, BODY, "application/json", {"Content-Encoding": "br"}),
        "/answer/cors": json_reply(200, {"ok": True}, **UPSTREAM_CORS),
        "/answer/public-redirect": Reply(302, b"", "text/plain", {"Location": "https://partner.example/next"}),
        "/answer/created": Reply(201, BODY, "application/json", {"Location": "/orders/5"}),
        # BaseHTTPRequestHandler sends its own Server and Date before these.
        "/answer/links": Reply(200, BODY, "application/json", {}, [("Link", LINKS[0]), ("Link", LINKS[1])]),
    }
    for index, location in enumerate(INSIDE):
        replies[f"/answer/redirect-{index}"] = Reply(302, b"", "text/plain", {"Location": location})
    return replies


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream(_answers())
    yield server
    server.close()


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


@pytest.fixture(scope="module")
def routes(gateway: RunningGateway, upstream: ScriptedUpstream) -> dict[str, str]:
    """One gateway under /gw/hard with open routes to the scripted upstream and two that point back
    at the gateway itself (its /gw and its batch endpoint), deployed."""
    specs: dict[str, dict[str, Any]] = {
        "seg": {"method": "GET", "path": "/seg/{id}", "upstream_path": "/v1/accounts/{id}/public"},
        "files": {"method": "GET", "path": "/files/{key+}", "upstream_path": "/v1/files/{key+}"},
        "headers": {"method": "GET", "path": "/headers"},
        "pay": {
            "method": "POST",
            "path": "/pay",
            "request_transform": {
                "body": {
                    "amount": "{{ body.amount }}",
                    "iban": "{{ body.payee.iban }}",
                    "memo": "{{ body.memo | default(null) }}",
                }
            },
        },
        "answer": {"method": "GET", "path": "/answer/{case}", "upstream_path": "/answer/{case}", "timeout_seconds": 20},
        # Each loop has a target of its own, so their 508s open no circuit the other depends on.
        "loop": {"method": "GET", "path": "/loop", "upstream_path": "/hard/loop", "target": gateway.base_url + "/gw"},
        "batchloop": {
            "method": "POST",
            "path": "/batchloop",
            "upstream_path": "/v1/batch",
            "target": gateway.base_url + "/api",
        },
    }
    ids: dict[str, str] = {}
    with admin(gateway) as http_admin:
        made = http_admin.post("/api/v1/gateways", json={"name": "hardening", "base_path": "/hard"})
        assert made.status_code == 201, made.text
        gateway_id = made.json()["gateway_id"]
        for name, spec in specs.items():
            target = spec.pop("target", upstream.url)
            created = http_admin.post(
                "/api/v1/gateway/routes",
                json={
                    "gateway_id": gateway_id,
                    "name": name,
                    "auth_required": False,
                    "targets": [{"url": target}],
                    "retry": {"max_attempts": 1, "initial_delay": 0.01, "max_delay": 0.01, "multiplier": 1.0},
                    **spec,
                },
            )
            assert created.status_code == 201, created.text
            ids[name] = created.json()["route_id"]
        deployed = http_admin.post(f"/api/v1/gateways/{gateway_id}/deploy", json={})
        assert deployed.status_code == 201, deployed.text
    ids["gateway_id"] = gateway_id
    return ids


def raw_get(
    gateway: RunningGateway, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET with the path exactly as written (an HTTP client would normalise dot segments)."""
    parts = urlsplit(gateway.base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def batch(gateway: RunningGateway, requests: list[dict[str, Any]], **kwargs: Any) -> httpx.Response:
    with gateway.client() as client:
        return client.post("/api/v1/batch", json={"requests": requests}, **kwargs)


# -- 1. path parameters -------------------------------------------------------------------------

# As a caller writes them on the wire (API Gateway decodes the path once before the function sees it).
CLIMBING_ON_GW = [
    "/seg/..%252f..%252fadmin",
    "/seg/..%252F..%252F..%252Fadmin",
    "/seg/..%25252f..%25252fadmin",
    "/seg/..%5c..%5cadmin",
    "/seg/..%255c..%255cadmin",
    "/seg/%2e%2e",
    "/seg/%252e%252e",
    "/seg/..%c0%af..",
    "/seg/%25c0%25ae%25c0%25ae",
    "/seg/..%ef%bc%8f..%ef%bc%8fadmin",
    "/seg/%ef%bc%8e%ef%bc%8e",
    "/seg/..;x=1",
    "/seg/..%2500",
    "/files/a/%2e%2e/%2e%2e/admin",
    "/files/a/..%252f..%252f..%252fadmin",
    "/files/a/..%255c..%255cadmin",
]
# In a batch the path is not decoded before the proxy reads it.
CLIMBING_IN_BATCH = [
    "/seg/..%2F..%2Fadmin",
    "/seg/..%252F..%252Fadmin",
    "/seg/..%5C..%5Cadmin",
    "/seg/%2E%2E",
    "/seg/..%c0%af..",
    "/seg/..%EF%BC%8F..",
    "/seg/%EF%BC%8E%EF%BC%8E",
    "/files/a/..%2F..%2F..%2Fadmin",
    "/files/a/../../admin",
]


def test_path_parameters_cannot_climb_out_of_the_upstream_path_on_gw(
    gateway: RunningGateway, upstream: ScriptedUpstream, routes: dict[str, str]
) -> None:
    before = upstream.count
    for path in CLIMBING_ON_GW:
        status, headers, body = raw_get(gateway, BASE + path)
        assert status == 400, (path, status, body)
        assert headers["content-type"] == "application/problem+json"
        assert b'"code":"invalid_path"' in body, (path, body)
    assert upstream.count == before  # nothing reached the upstream
    status, _, body = raw_get(gateway, BASE + "/seg/DE89%203704")
    assert status == 200, body
    status, _, body = raw_get(gateway, BASE + "/files/2026/./drafts/../q1%20report.pdf")
    assert status == 200, body
    assert upstream.paths()[-2:] == ["/v1/accounts/DE89%203704/public", "/v1/files/2026/q1%20report.pdf"]


def test_path_parameters_cannot_climb_out_of_the_upstream_path_in_a_batch(
    gateway: RunningGateway, upstream: ScriptedUpstream, routes: dict[str, str]
) -> None:
    before = upstream.count
    answer = batch(gateway, [{"id": p, "method": "GET", "path": BASE + p} for p in CLIMBING_IN_BATCH])
    assert answer.status_code == 200, answer.text
    refused = {r["id"]: (r["status"], r["body"]["code"]) for r in answer.json()["responses"]}
    assert refused == dict.fromkeys(CLIMBING_IN_BATCH, (400, "invalid_path"))
    assert upstream.count == before


# -- 2. decompression bombs ---------------------------------------------------------------------


def _proxy_peak_after(gateway: RunningGateway, start: int) -> int:
    """`Max Memory Used` (MB) of the first REPORT of the proxy function logged after `start`."""

    def found() -> int | None:
        for line in gateway.output[start:]:
            match = re.search(r"\[[^\]]*ProxyFunction[^\]]*\] REPORT .*Max Memory Used: (\d+) MB", line)
            if match:
                return int(match.group(1))
        return None

    return int(eventually(found, timeout=10))


def test_a_gigabyte_stacked_gzip_answer_costs_under_20_mib_and_is_a_502(
    gateway: RunningGateway, routes: dict[str, str]
) -> None:
    with gateway.client() as client:
        start = len(gateway.output)
        warm = client.get(f"{BASE}/answer/small-gzip")
        assert warm.status_code == 200, warm.text
        assert warm.content == BODY
        assert "content-encoding" not in warm.headers  # decoded here, as before
        warm_peak = _proxy_peak_after(gateway, start)
        # The next call goes to the same warm worker (the most recently used one is reused).
        start = len(gateway.output)
        bomb = client.get(f"{BASE}/answer/bomb")
        bomb_peak = _proxy_peak_after(gateway, start)
    assert bomb.status_code == 502, bomb.text
    assert bomb.headers["content-type"] == "application/problem+json"
    assert bomb.json()["code"] == "upstream_too_large"
    assert bomb_peak - warm_peak < 20, (warm_peak, bomb_peak)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("deflate-bomb", "upstream_too_large"),
        ("corrupt", "upstream_undecodable"),
        ("three-layers", "upstream_undecodable"),
        ("br", "upstream_undecodable"),
    ],
)
def test_answers_that_cannot_be_decoded_within_the_limits_are_502_problems(
    gateway: RunningGateway, routes: dict[str, str], case: str, code: str
) -> None:
    with gateway.client() as client:
        answer = client.get(f"{BASE}/answer/{case}")
    assert answer.status_code == 502, answer.text
    assert (answer.headers["content-type"], answer.json()["code"]) == ("application/problem+json", code)


# -- 3. headers that claim the client's address, another host, path or method ------------------

CLAIMING = {
    "X-Cluster-Client-IP": "10.0.0.1",
    "Fastly-Client-IP": "10.0.0.1",
    "X-Originating-IP": "10.0.0.1",
    "Client-IP": "10.0.0.1",
    "X-Remote-IP": "10.0.0.1",
    "X-Remote-Addr": "10.0.0.1",
    "X-Real-IP": "10.0.0.1",
    "True-Client-IP": "10.0.0.1",
    "CF-Connecting-IP": "10.0.0.1",
    "X-Client-IP": "10.0.0.1",
    "Forwarded": "for=10.0.0.1;host=admin.internal",
    "X-Forwarded": "for=10.0.0.1",
    "X-Forwarded-Host": "admin.internal",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Prefix": "/admin",
    "X-Host": "admin.internal",
    "X-Original-URL": "/admin",
    "X-Rewrite-URL": "/admin",
    "X-HTTP-Method-Override": "DELETE",
    "X-HTTP-Method": "DELETE",
    "X-Method-Override": "DELETE",
    "X-Gateway-Client": "cl_admin",
}
ALLOWED = {"Accept-Language": "de-CH", "If-None-Match": '"v1"', "Idempotency-Key": "k-1", "Prefer": "return=minimal"}


def test_headers_that_claim_address_host_path_or_method_never_reach_the_upstream(
    gateway: RunningGateway, upstream: ScriptedUpstream, routes: dict[str, str]
) -> None:
    status, _, body = raw_get(gateway, BASE + "/headers", {**CLAIMING, **ALLOWED})
    assert status == 200, body
    answer = batch(gateway, [{"method": "GET", "path": BASE + "/headers", "headers": {**CLAIMING, **ALLOWED}}])
    assert answer.json()["responses"][0]["status"] == 200
    for seen in (r.headers for r in upstream.requests[-2:]):
        leaked = {n.lower() for n in CLAIMING} & set(seen) - {"x-gateway-client"}
        assert leaked == set()
        assert seen["x-gateway-client"] == "anonymous"
        assert seen["x-forwarded-for"] == "127.0.0.1"  # the address API Gateway saw
        assert {k.lower(): v for k, v in ALLOWED.items()}.items() <= seen.items()


# -- 4. what an upstream's answer may tell the caller -------------------------------------------


def test_redirects_to_internal_hosts_lose_their_location_and_upstream_cors_is_dropped(
    gateway: RunningGateway, routes: dict[str, str]
) -> None:
    with gateway.client() as client:
        for index, location in enumerate(INSIDE):
            answer = client.get(f"{BASE}/answer/redirect-{index}")
            assert answer.status_code == 302, (location, answer.text)
            assert "location" not in answer.headers, location
        assert client.get(f"{BASE}/answer/public-redirect").headers["location"] == "https://partner.example/next"
        created = client.get(f"{BASE}/answer/created")
        assert (created.status_code, created.headers["location"]) == (201, "/orders/5")
        cors = client.get(f"{BASE}/answer/cors", headers={"Origin": "https://evil.example"})
    assert cors.status_code == 200
    assert [h for h in cors.headers if h.lower().startswith("access-control-")] == []


# -- 5. loops -----------------------------------------------------------------------------------


def _records(gateway: RunningGateway, name: str, value: str) -> list[dict[str, Any]]:
    """Request log records whose attribute `name` is `value` (written before each answer)."""
    dynamodb = gateway.aws("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": gateway.outputs("FinanceGateway")["TableName"],
        "FilterExpression": "begins_with(PK, :log) AND #n = :v",
        "ExpressionAttributeNames": {"#n": name},
        "ExpressionAttributeValues": {":log": {"S": "REQLOG#"}, ":v": {"S": value}},
    }
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _passes(gateway: RunningGateway, correlation: str) -> list[tuple[str, str, str]]:
    """(route, status, error) of every pass through the proxy of requests with this X-Request-Id
    (the gateway sends it upstream, so a request that comes back carries it too)."""
    return sorted(
        (r.get("route_id", {}).get("S", ""), r["status_code"]["N"], r.get("error_code", {}).get("S", ""))
        for r in _records(gateway, "correlation_id", correlation)
    )


def test_a_route_back_to_the_gateway_is_stopped_at_the_first_reentry(
    gateway: RunningGateway, routes: dict[str, str]
) -> None:
    with gateway.client() as client:
        answer = client.get(f"{BASE}/loop", headers={"X-Request-Id": "hard-loop-gw"})
    assert answer.status_code == 508, answer.text
    assert answer.json()["code"] == "loop_detected"
    # The caller's request, and the one that came back, refused before it went anywhere.
    assert _passes(gateway, "hard-loop-gw") == [("", "508", "loop_detected"), (routes["loop"], "508", "")]


def test_batches_through_routes_back_to_the_gateway_are_stopped_at_the_first_reentry(
    gateway: RunningGateway, routes: dict[str, str]
) -> None:
    looping = [
        {"method": "GET", "path": f"{BASE}/loop", "headers": {"X-Request-Id": f"hard-loop-batch-{i}"}} for i in range(3)
    ]
    answer = batch(gateway, looping)
    assert answer.status_code == 200, answer.text
    assert [(r["status"], r["body"]["code"]) for r in answer.json()["responses"]] == [(508, "loop_detected")] * 3
    for i in range(3):
        assert _passes(gateway, f"hard-loop-batch-{i}") == [("", "508", "loop_detected"), (routes["loop"], "508", "")]

    # Sub-requests that call the batch endpoint again with batches of their own, nested three
    # deep (27 sub-requests at the bottom without the hop): the inner batches are refused whole.
    inner = {"requests": [{"method": "POST", "path": f"{BASE}/batchloop", "body": {"requests": looping}}] * 3}
    nested = [{"method": "POST", "path": f"{BASE}/batchloop", "body": inner} for _ in range(3)]
    answer = batch(gateway, nested)
    assert answer.status_code == 200, answer.text
    assert [(r["status"], r["body"]["code"]) for r in answer.json()["responses"]] == [(508, "loop_detected")] * 3
    assert len(_records(gateway, "route_id", routes["batchloop"])) == 3  # the outer batch's three, no more
    for i in range(3):
        assert len(_passes(gateway, f"hard-loop-batch-{i}")) == 2  # no inner batch ran its sub-requests


# -- 6. upstream URLs spelled to slip past the SSRF guard ---------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "0177.0.0.1",
        "2130706433",
        "0x7f.1",
        "127.1",
        "127.000.000.001",
        "\uff11\uff12\uff17.\uff10.\uff10.\uff11",
        "[fec0::1]",
    ],
    ids=repr,
)
def test_upstream_urls_that_are_not_canonical_or_special_purpose_are_422_on_create_and_update(
    gateway: RunningGateway, upstream: ScriptedUpstream, routes: dict[str, str], host: str
) -> None:
    # https, so that no URL is refused for its scheme: only its host may decide.
    url = f"https://{host}:{urlsplit(upstream.url).port}"
    spec = {"gateway_id": routes["gateway_id"], "name": "odd", "method": "GET", "path": "/odd", "auth_required": False}
    with admin(gateway) as http_admin:
        created = http_admin.post("/api/v1/gateway/routes", json={**spec, "targets": [{"url": url}]})
        assert created.status_code == 422, created.text
        assert created.headers["content-type"] == "application/problem+json"
        assert re.search(r"not a canonical|private, loopback", created.text), created.text
        current = http_admin.get(f"/api/v1/gateway/routes/{routes['headers']}")
        stored = {
            k: v
            for k, v in current.json().items()
            if k not in ("route_id", "version", "created_at", "updated_at", "created_by")
        }
        updated = http_admin.put(
            f"/api/v1/gateway/routes/{routes['headers']}",
            json={**stored, "targets": [{"url": url}]},
            headers={"If-Match": current.headers["ETag"]},
        )
        assert updated.status_code == 422, updated.text
        assert re.search(r"not a canonical|private, loopback", updated.text), updated.text


# -- 4. what a caller gets back, and what a body template needs ---------------------------------------

# A caller address of these tests' own: anonymous callers are limited per address (30 a minute),
# and the module's other tests spend 127.0.0.1's share.
OWN_ADDRESS = "127.0.0.7"


def test_repeated_upstream_headers_all_arrive_with_one_date_and_no_upstream_server(
    gateway: RunningGateway, upstream: ScriptedUpstream, routes: dict[str, str]
) -> None:
    parts = urlsplit(gateway.base_url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=60, source_address=(OWN_ADDRESS, 0)
    )
    try:
        connection.request("GET", BASE + "/answer/links")
        response = connection.getresponse()
        assert response.status == 200, response.read()
        pairs = [(name.lower(), value) for name, value in response.getheaders()]
        response.read()
    finally:
        connection.close()
    assert [v for k, v in pairs if k == "link"] == LINKS
    assert len([v for k, v in pairs if k == "date"]) == 1
    assert len([v for k, v in pairs if k == "server"]) <= 1


BAD_BODIES = [
    (b"", "application/json", "invalid_body"),
    (b'{"amount": "1.00", "payee": {"iban": "DE1"}}', "text/plain", "invalid_body"),
    (b'{"amount": ', "application/json", "invalid_body"),
    (b'[{"amount": "1.00"}]', "application/json", "invalid_body"),
    (b'{"amount": "1.00", "payee": {}}', "application/json", "missing_field"),
]


def test_a_body_template_route_refuses_a_body_it_cannot_read_and_sends_nothing(
    gateway: RunningGateway, upstream: ScriptedUpstream, routes: dict[str, str]
) -> None:
    before = upstream.count
    with gateway.client(transport=httpx.HTTPTransport(local_address=OWN_ADDRESS)) as client:
        for body, content_type, code in BAD_BODIES:
            response = client.post(BASE + "/pay", content=body, headers={"Content-Type": content_type})
            assert response.status_code == 400, (body, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == code, (body, response.text)
        assert response.json()["missing"] == ["$.payee.iban"]
        assert upstream.count == before
        sent = client.post(BASE + "/pay", content=b'{"amount": 12.50, "payee": {"iban": "DE1"}}')
    assert sent.status_code == 200, sent.text
    assert upstream.requests[-1].body == b'{"amount":12.50,"iban":"DE1","memo":null}'
