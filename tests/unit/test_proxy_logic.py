"""The dynamic proxy (functions/routes/logic/proxy.py) over in-memory fakes: routing, credentials,
the upstream request, retries and circuits, the response cache, rendering, CORS, rate limits, the
request log and canaries. No network, no AWS, no real sleeping."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

import pytest
from urllib3.util import parse_url

from functions.routes.dal.serving_cache import ClientLimits
from functions.routes.dal.upstream import UpstreamAnswer
from functions.routes.logic.proxy import HOP_TOKEN, MAX_HOPS, Proxy, ProxyCaller, ProxyResponse, hop_token
from functions.routes.logic.proxy_ports import (
    UpstreamConnectFailed,
    UpstreamRequestInvalid,
    UpstreamTimedOut,
    UpstreamTransportFailed,
)
from gateway_core.deployed import serves_canary
from gateway_core.errors import PROBLEM_CONTENT_TYPE, UpstreamError
from gateway_core.ratelimit.limiter import Decision
from tests.unit.proxy_fakes import (
    ANONYMOUS,
    CLIENT,
    GATEWAY_ID,
    SOURCE_IP,
    TARGET_A,
    TARGET_B,
    FailingLogs,
    FakeCache,
    FakeClock,
    FakeLimiter,
    FakeUpstream,
    Harness,
    answer,
    harness,
    make_request,
    make_route,
    make_version,
    policy,
    serving_gateway,
)

ONE_ATTEMPT = {"max_attempts": 1, "initial_delay": 0.01, "max_delay": 0.01, "multiplier": 1.0}
CORS = {"allow_origins": ["https://app.example"]}


def problem(response: ProxyResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = json.loads(response.body)
    assert body["status"] == response.status
    return body


def only_call(h: Harness) -> Any:
    assert len(h.upstream.calls) == 1, h.upstream.urls()
    return h.upstream.calls[0]


# -- choosing the gateway, the version and the route ----------------------------------------------


def test_the_gateway_with_the_longest_base_path_serves_and_gets_the_rest_of_the_path() -> None:
    root = make_version([make_route(route_id="rt_root", gateway_id="gw_root")], gateway_id="gw_root")
    pay = make_version(
        [make_route(route_id="rt_pay", gateway_id="gw_pay", targets=[{"url": TARGET_B}])], gateway_id="gw_pay"
    )
    deeper_but_off = make_version([make_route(gateway_id="gw_off")], gateway_id="gw_off")
    h = harness(
        versions=[root, pay, deeper_but_off],
        gateways=[
            serving_gateway("gw_root", ""),
            serving_gateway("gw_pay", "/pay"),
            serving_gateway("gw_off", "/pay/eu", status="inactive"),
            serving_gateway("gw_undeployed", "/pay/us", active=None),
        ],
    )

    assert h.call("GET", "/pay/orders/7").status == 200
    assert h.upstream.urls() == [f"{TARGET_B}/orders/7"]
    assert (h.record().gateway_id, h.record().route_id) == ("gw_pay", "rt_pay")

    assert h.call("GET", "/orders/8").status == 200
    assert h.upstream.urls()[-1] == f"{TARGET_A}/orders/8"
    assert h.record().gateway_id == "gw_root"

    # A base path matches whole segments only; an inactive or undeployed gateway serves nothing.
    assert problem(h.call("GET", "/payments/orders/9"))["code"] == "route_not_found"
    assert h.call("GET", "/pay/eu/orders/1").status == 404  # gw_pay has no /eu/orders route
    assert h.record().gateway_id == "gw_pay"
    assert len(h.upstream.calls) == 2


def test_no_gateway_at_all_is_route_not_found() -> None:
    h = harness(gateways=[serving_gateway("gw_pay", "/pay")])
    response = h.call("GET", "/orders/1")
    assert response.status == 404
    assert problem(response)["code"] == "route_not_found"
    assert h.upstream.calls == []


@pytest.mark.parametrize(
    ("routes", "path"),
    [
        ([make_route()], "/unknown"),
        ([make_route()], "/orders"),
        ([make_route()], "/orders/"),
        ([make_route(active=False)], "/orders/42"),
    ],
    ids=["unknown", "prefix-only", "empty-parameter", "inactive"],
)
def test_unknown_paths_and_inactive_routes_are_404_route_not_found(routes: list[Any], path: str) -> None:
    h = harness(routes)
    response = h.call("GET", path)
    assert response.status == 404
    body = problem(response)
    assert body["code"] == "route_not_found"
    assert body["instance"] == "/gw" + path
    assert h.upstream.calls == []
    assert h.limiter.checked == []  # nothing was spent on a route that does not exist


def test_a_path_served_for_other_methods_is_405_with_allow() -> None:
    h = harness(
        [
            make_route(route_id="rt_get"),
            make_route(route_id="rt_put", method="PUT"),
            make_route(route_id="rt_list", path="/orders", method="POST"),
        ]
    )
    response = h.call("DELETE", "/orders/42")
    assert response.status == 405
    assert response.headers["Allow"] == "GET, PUT"
    assert problem(response)["code"] == "method_not_allowed"
    assert h.upstream.calls == []


def test_an_inactive_route_is_not_advertised_in_allow() -> None:
    """An inactive route is not served: a path only it matches is unknown (404), not a 405 that
    lists the inactive route's method in Allow."""
    h = harness([make_route(method="POST", active=False)])
    response = h.call("GET", "/orders/42")
    assert response.status == 404, response.headers.get("Allow")
    assert problem(response)["code"] == "route_not_found"


# -- credentials and scopes ---------------------------------------------------------------------


def test_an_anonymous_caller_on_a_route_that_needs_a_credential_gets_401() -> None:
    h = harness()
    response = h.call(caller=ANONYMOUS)
    assert response.status == 401
    assert problem(response)["code"] == "credential_required"
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert "ApiKey" in response.headers["WWW-Authenticate"]
    assert h.upstream.calls == []
    assert h.limiter.checked == []
    assert h.record().auth_failed is True


def test_missing_scopes_are_403_insufficient_scope() -> None:
    h = harness([make_route(required_scopes=["banking:read", "payments:write"])])
    response = h.call()
    assert response.status == 403
    body = problem(response)
    assert body["code"] == "insufficient_scope"
    assert body["required_scopes"] == ["banking:read", "payments:write"]
    assert "payments:write" in body["detail"]
    assert h.upstream.calls == []
    assert h.record().auth_failed is True


def test_a_caller_with_the_scopes_passes() -> None:
    h = harness([make_route(required_scopes=["banking:read"])])
    assert h.call().status == 200
    assert len(h.upstream.calls) == 1


def test_anonymous_callers_are_served_on_open_routes_and_limited_per_address() -> None:
    h = harness([make_route(auth_required=False)])
    response = h.call(caller=ANONYMOUS)
    assert response.status == 200
    assert only_call(h).headers["x-gateway-client"] == "anonymous"
    assert [s.plan.key for s in h.limiter.checked[0]] == [f"IP#{SOURCE_IP}"]
    assert h.record().client_id == f"anonymous:{SOURCE_IP}"


# -- the upstream request -----------------------------------------------------------------------


def test_path_parameters_are_url_encoded_into_the_upstream_path() -> None:
    h = harness([make_route(path="/accounts/{id}/statements", upstream_path="/v2/acct/{id}/stmts")])
    assert h.call("GET", "/accounts/DE89%20x%3Fz%23%25/statements").status == 200
    assert only_call(h).url == f"{TARGET_A}/v2/acct/DE89%20x%3Fz%23%25/stmts"


def test_a_greedy_parameter_keeps_its_slashes() -> None:
    h = harness([make_route(path="/files/{key+}", upstream_path="/store/{key+}")])
    assert h.call("GET", "/files/2026/q1 report.pdf").status == 200
    assert only_call(h).url == f"{TARGET_A}/store/2026/q1%20report.pdf"


@pytest.mark.parametrize(
    ("template", "upstream_path", "path"),
    [
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/%2E%2E"),
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/.."),
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/..%2F..%2Fadmin"),  # %252F through API Gateway
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/..%252F..%252Fadmin"),
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/..%5C..%5Cadmin"),
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/..%255c..%255cadmin"),
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/%c0%ae%c0%ae%c0%afadmin"),
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/..%EF%BC%8F..%EF%BC%8Fadmin"),
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/%EF%BC%8E%EF%BC%8E"),
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/..;x=1"),
        ("/accounts/{id}", "/v1/accounts/{id}/public", "/accounts/..%00"),
        ("/files/{key+}", "/v1/files/{key+}", "/files/..%2F..%2Fadmin"),
        ("/files/{key+}", "/v1/files/{key+}", "/files/a/../../../admin"),
        ("/files/{key+}", "/v1/files/{key+}", "/files/a/..%252F..%252F..%252Fadmin"),
        ("/files/{key+}", "/v1/files/{key+}", "/files/a/..%5C..%5Cadmin"),
    ],
    ids=repr,
)
def test_parameters_cannot_climb_out_of_the_upstream_path(template: str, upstream_path: str, path: str) -> None:
    """A parameter must not reach a path the route never exposed (here /v1/public or /admin
    instead of something under /v1/accounts/ or /v1/files/), whichever upstream, URL library or
    file system decodes, normalises or maps it further: a 400 `invalid_path`, nothing sent."""
    h = harness([make_route(path=template, upstream_path=upstream_path)])
    response = h.call("GET", path)
    assert response.status == 400, response.body
    assert problem(response)["code"] == "invalid_path"
    assert h.upstream.calls == []
    assert h.limiter.checked == []


def test_dot_segments_inside_a_greedy_parameter_are_resolved_below_it() -> None:
    h = harness([make_route(path="/files/{key+}", upstream_path="/v1/files/{key+}")])
    assert h.call("GET", "/files/2026/./drafts/../q1 report.pdf").status == 200
    assert parse_url(only_call(h).url).path == "/v1/files/2026/q1%20report.pdf"


def test_query_rename_rules_apply_and_other_parameters_pass() -> None:
    h = harness(
        [
            make_route(
                request_transform={"query": {"rename": {"ccy": "currency"}, "remove": ["debug"], "add": {"v": "2"}}}
            )
        ]
    )
    h.call(query={"ccy": ["EUR"], "debug": ["1"], "page": ["2", "3"]})
    params = parse_qs(parse_url(only_call(h).url).query or "", keep_blank_values=True)
    assert params.get("currency") == ["EUR"]
    assert params.get("page") == ["2", "3"]
    assert params.get("v") == ["2"]
    assert "ccy" not in params
    assert "debug" not in params


def test_credentials_hop_by_hop_and_gateway_only_headers_are_never_forwarded() -> None:
    h = harness()
    h.call(
        headers={
            "Authorization": "Bearer caller-token",
            "Proxy-Authorization": "Basic x",
            "X-Api-Key": "caller-key",
            "Cookie": "session=1",
            "Connection": "keep-alive",
            "Keep-Alive": "timeout=5",
            "Transfer-Encoding": "chunked",
            "Upgrade": "h2c",
            "TE": "trailers",
            "Host": "api.example",
            "Content-Length": "0",
            "Forwarded": "for=10.0.0.1",
            "Via": "1.1 proxy",
            "X-Forwarded-Host": "evil.example",
            "X-Gateway-Client": "cl_admin",
            "X-Amzn-Trace-Id": "Root=1",
            "Accept-Language": "de",
            "X-Partner-Ref": "p-77",
        }
    )
    sent = only_call(h).headers
    for name in (
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "cookie",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "host",
        "content-length",
        "forwarded",
        "via",
        "x-forwarded-host",
        "x-amzn-trace-id",
    ):
        assert name not in sent, name
    assert sent["x-gateway-client"] == "cl_1"  # ours, not the caller's claim
    assert sent["x-gateway-route"] == "rt_orders"
    assert sent["accept-language"] == "de"
    assert "x-partner-ref" not in sent  # a header of the caller's own goes only where a route sends it
    assert all(k == k.lower() for k in sent)


# Headers upstreams (or the frameworks and proxies in front of them) trust for the client's
# address, the original host, scheme, path or method. Only an allowlist passes, so the family is
# closed, not just these members.
CLAIMING_HEADERS = [
    "X-Cluster-Client-IP",
    "Fastly-Client-IP",
    "X-Originating-IP",
    "Client-IP",
    "X-Client-IP",
    "X-Remote-IP",
    "X-Remote-Addr",
    "X-Real-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-ProxyUser-Ip",
    "X-Envoy-External-Address",
    "Forwarded",
    "X-Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Forwarded-Scheme",
    "X-Forwarded-Ssl",
    "X-Url-Scheme",
    "Front-End-Https",
    "X-Host",
    "X-Original-Host",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Original-URI",
    "X-Envoy-Original-Path",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
    "X-Http-Destination",
    "X-Forwarded-User",
    "X-Forwarded-Client-Cert",
    "X-Client-Cert",
    "X-SSL-Client-Cert",
    "X-Amzn-Trace-Id",
    "X-Gateway-Client",
    "Via",
    "Origin",
    "Referer",
    "X-Partner-Ref",
]


def test_only_allowlisted_caller_headers_reach_the_upstream() -> None:
    h = harness()
    h.call(headers={name: "10.0.0.1" if "ip" in name.lower() else "/admin" for name in CLAIMING_HEADERS})
    sent = only_call(h).headers
    leaked = sorted({n.lower() for n in CLAIMING_HEADERS} & set(sent) - {"x-forwarded-for", "x-gateway-client"})
    assert leaked == []
    assert sent["x-forwarded-for"] == SOURCE_IP
    assert sent["x-gateway-client"] == "cl_1"


ALLOWED_HEADERS = {
    "Accept": "application/json",
    "Accept-Language": "de-CH",
    "Accept-Charset": "utf-8",
    "Content-Type": "application/json",
    "Content-Language": "de",
    "If-Match": '"v1"',
    "If-None-Match": '"v2"',
    "If-Modified-Since": "Wed, 21 Oct 2026 07:28:00 GMT",
    "If-Unmodified-Since": "Wed, 21 Oct 2026 07:28:00 GMT",
    "If-Range": '"v1"',
    "Range": "bytes=0-99",
    "Cache-Control": "no-cache",
    "Pragma": "no-cache",
    "Prefer": "return=minimal",
    "Idempotency-Key": "9c4f0b7e-payment-1",
    "User-Agent": "partner-sdk/2.1",
    "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "Tracestate": "vendor=1",
}


def test_allowlisted_caller_headers_pass_unchanged() -> None:
    h = harness()
    h.call(headers=ALLOWED_HEADERS)
    sent = only_call(h).headers
    assert {k.lower(): v for k, v in ALLOWED_HEADERS.items()} == {k: sent[k] for k in map(str.lower, ALLOWED_HEADERS)}


def test_a_route_forwards_a_callers_own_header_by_naming_it_in_its_rules() -> None:
    route = make_route(
        request_transform={
            "headers": {
                "add": {"X-Partner-Ref": "{{ headers.x-partner-ref }}"},
                "rename": {"X-Caller-Batch": "X-Batch"},
            }
        }
    )
    h = harness([route])
    h.call(headers={"X-Partner-Ref": "p-77", "X-Caller-Batch": "b-1", "X-Other": "o", "X-Original-URL": "/admin"})
    sent = only_call(h).headers
    assert (sent["x-partner-ref"], sent["x-batch"]) == ("p-77", "b-1")
    assert not {"x-caller-batch", "x-other", "x-original-url"} & set(sent)
    h.call(headers={})  # a header the caller did not send is not made up
    assert "x-partner-ref" not in h.upstream.calls[-1].headers


def test_headers_named_in_connection_are_hop_by_hop_too() -> None:
    """RFC 9110 7.6.1: a proxy removes the fields the Connection header names before forwarding."""
    h = harness()
    h.call(headers={"Connection": "keep-alive, X-Hop-Secret", "X-Hop-Secret": "for-the-next-hop-only"})
    assert "x-hop-secret" not in only_call(h).headers


def test_a_valid_caller_request_id_goes_upstream_and_back() -> None:
    h = harness()
    response = h.call(headers={"X-Request-Id": "partner:2026-05.abc_1"}, request_id="apigw-1")
    assert only_call(h).headers["x-request-id"] == "partner:2026-05.abc_1"
    assert response.headers["X-Request-Id"] == "partner:2026-05.abc_1"
    assert h.record().request_id == "apigw-1"  # the log keeps the gateway's own id


@pytest.mark.parametrize("offered", ["has spaces", "x" * 200, "", "semi;colon", "ünï"], ids=repr)
def test_an_invalid_caller_request_id_is_replaced_by_the_request_id(offered: str) -> None:
    h = harness()
    headers = {"X-Request-Id": offered} if offered else {}
    response = h.call(headers=headers, request_id="apigw-2")
    assert only_call(h).headers["x-request-id"] == "apigw-2"
    assert response.headers["X-Request-Id"] == "apigw-2"


def test_a_caller_request_id_with_a_trailing_newline_is_replaced() -> None:
    """`$` in the correlation pattern also matches before a final newline; the id must be
    replaced, not sent upstream and echoed with a line break in it."""
    h = harness()
    response = h.call(headers={"X-Request-Id": "abc\n"}, request_id="apigw-3")
    assert response.headers["X-Request-Id"] == "apigw-3"
    assert all(c.headers["x-request-id"] == "apigw-3" for c in h.upstream.calls)


def test_x_forwarded_for_is_the_source_address_not_the_callers_claim() -> None:
    h = harness()
    h.call(headers={"X-Forwarded-For": "10.0.0.1, 192.0.2.9"}, source_ip="198.51.100.23")
    assert only_call(h).headers["x-forwarded-for"] == "198.51.100.23"
    assert h.record().client_ip == "198.51.100.23"


def test_the_route_timeout_is_given_to_the_upstream_call() -> None:
    h = harness([make_route(timeout_seconds=2.5)])
    h.call()
    assert only_call(h).timeout == pytest.approx(2.5)
    h2 = harness(default_timeout_seconds=4.0)
    h2.call()
    assert only_call(h2).timeout == pytest.approx(4.0)


# -- retries, failover, timeouts ------------------------------------------------------------------


def test_get_is_retried_on_503_up_to_max_attempts_with_backoff() -> None:
    h = harness(upstream=FakeUpstream(default=answer(503, {"error": "busy"})))
    response = h.call()
    assert response.status == 503  # the upstream's own last answer, as it is
    assert json.loads(response.body) == {"error": "busy"}
    assert len(h.upstream.calls) == 3  # RetrySpec's default max_attempts
    assert len(h.sleep.delays) == 2
    first, second = h.sleep.delays
    assert 0.5 <= first <= 1.0  # equal jitter around 1 s
    assert 1.0 <= second <= 2.0  # then around 2 s
    assert h.record().attempts == 3
    assert h.record().status_code == 503


def test_a_retried_get_that_then_succeeds_answers_200() -> None:
    h = harness(upstream=FakeUpstream(answer(502), answer(200, {"id": "42"})))
    response = h.call()
    assert response.status == 200
    assert json.loads(response.body) == {"id": "42"}
    assert len(h.upstream.calls) == 2
    assert len(h.sleep.delays) == 1
    assert h.record().attempts == 2


def test_the_routes_retry_settings_override_the_gateways() -> None:
    h = harness(
        [make_route(retry={"max_attempts": 5, "initial_delay": 0.1, "max_delay": 0.2, "multiplier": 2.0})],
        upstream=FakeUpstream(default=answer(503)),
    )
    h.call()
    assert len(h.upstream.calls) == 5
    assert len(h.sleep.delays) == 4
    assert all(0.05 <= d <= 0.2 for d in h.sleep.delays)


def test_a_4xx_is_not_retried() -> None:
    h = harness(upstream=FakeUpstream(default=answer(404, {"error": "no such order"})))
    assert h.call().status == 404
    assert len(h.upstream.calls) == 1
    assert h.sleep.delays == []


def test_post_is_not_retried_on_503() -> None:
    h = harness([make_route(method="POST", path="/payments")], upstream=FakeUpstream(default=answer(503)))
    response = h.call("POST", "/payments", body=b"{}", headers={"Content-Type": "application/json"})
    assert response.status == 503
    assert len(h.upstream.calls) == 1
    assert h.sleep.delays == []


def test_post_with_an_idempotency_key_is_retried() -> None:
    h = harness(
        [make_route(method="POST", path="/payments")],
        upstream=FakeUpstream(answer(503), answer(201, {"payment": "p1"})),
    )
    response = h.call("POST", "/payments", body=b"{}", headers={"Idempotency-Key": "k-1"})
    assert response.status == 201
    assert len(h.upstream.calls) == 2
    assert all(c.headers["idempotency-key"] == "k-1" for c in h.upstream.calls)
    assert len(h.sleep.delays) == 1


def test_post_fails_over_to_the_next_target_when_the_connection_is_refused() -> None:
    h = harness(
        [make_route(method="POST", path="/payments", targets=[{"url": TARGET_A}, {"url": TARGET_B}])],
        upstream=FakeUpstream(by_target={TARGET_A: [UpstreamConnectFailed("refused")]}),
    )
    response = h.call("POST", "/payments", body=b"{}")
    assert response.status == 200
    assert h.upstream.urls() == [f"{TARGET_A}/payments", f"{TARGET_B}/payments"]
    assert h.record().upstream_service == TARGET_B
    assert h.record().attempts == 2


def test_post_is_not_retried_after_a_read_timeout() -> None:
    h = harness(
        [make_route(method="POST", path="/payments", targets=[{"url": TARGET_A}, {"url": TARGET_B}])],
        upstream=FakeUpstream(UpstreamTimedOut("slow")),
    )
    response = h.call("POST", "/payments", body=b"{}")
    assert response.status == 504
    assert problem(response)["code"] == "upstream_timeout"
    assert len(h.upstream.calls) == 1  # the upstream may have done it: never twice
    assert h.sleep.delays == []


def test_timeouts_end_in_504_upstream_timeout() -> None:
    h = harness(upstream=FakeUpstream(default=answer(200)))
    h.upstream.script = [UpstreamTimedOut("slow"), UpstreamTimedOut("slow"), UpstreamTimedOut("slow")]
    response = h.call()
    assert response.status == 504
    body = problem(response)
    assert body["code"] == "upstream_timeout"
    assert len(h.upstream.calls) == 3
    assert h.record().error_code == "upstream_timeout"
    assert h.record().attempts == 3


def test_connection_errors_on_every_attempt_are_502_upstream_unreachable() -> None:
    h = harness(upstream=FakeUpstream(*[UpstreamConnectFailed("refused")] * 3))
    response = h.call()
    assert response.status == 502
    assert problem(response)["code"] == "upstream_unreachable"
    assert len(h.upstream.calls) == 3


def test_a_broken_connection_is_502_and_a_post_is_not_sent_again() -> None:
    h = harness(
        [make_route(method="POST", path="/payments", targets=[{"url": TARGET_A}, {"url": TARGET_B}])],
        upstream=FakeUpstream(UpstreamTransportFailed("connection reset")),
    )
    response = h.call("POST", "/payments", body=b"{}")
    assert response.status == 502
    assert problem(response)["code"] == "upstream_unreachable"
    assert len(h.upstream.calls) == 1  # the upstream may have received it: never twice
    assert h.sleep.delays == []


def test_a_request_that_cannot_be_written_is_400_and_not_the_upstreams_failure() -> None:
    h = harness(
        [make_route(retry=ONE_ATTEMPT)],
        upstream=FakeUpstream(*[UpstreamRequestInvalid("Invalid header value")] * 6, default=answer(503)),
    )
    for _ in range(6):
        response = h.call()
        assert response.status == 400
        assert problem(response)["code"] == "invalid_request"
    # Six refusals opened no circuit (five failures would): the next call reaches the upstream.
    assert h.call().status == 503
    assert len(h.upstream.calls) == 7


# -- circuits and health ------------------------------------------------------------------------


def test_the_circuit_opens_after_five_failures_and_the_target_gets_no_more_calls() -> None:
    h = harness([make_route(retry=ONE_ATTEMPT)], upstream=FakeUpstream(default=answer(503)))
    for _ in range(5):
        assert h.call().status == 503
    assert len(h.upstream.calls) == 5

    response = h.call()
    assert response.status == 503
    body = problem(response)
    assert body["code"] == "upstream_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert len(h.upstream.calls) == 5  # the open circuit kept the call away
    h.call()
    assert len(h.upstream.calls) == 5


def test_an_open_circuit_moves_traffic_to_the_other_target() -> None:
    h = harness(
        [make_route(retry=ONE_ATTEMPT, targets=[{"url": TARGET_A}, {"url": TARGET_B}])],
        upstream=FakeUpstream(by_target={TARGET_A: [UpstreamConnectFailed("refused")] * 100}),
    )
    for _ in range(10):  # round robin: five to each
        h.call()
    assert sum(u.startswith(TARGET_A) for u in h.upstream.urls()) == 5
    for _ in range(4):
        assert h.call().status == 200
    assert sum(u.startswith(TARGET_A) for u in h.upstream.urls()) == 5
    assert h.upstream.urls()[-4:] == [f"{TARGET_B}/orders/42"] * 4


def test_targets_marked_down_are_skipped() -> None:
    h = harness(
        [make_route(targets=[{"url": TARGET_A}, {"url": TARGET_B}])],
        health={TARGET_A: "down", TARGET_B: "up"},
    )
    for _ in range(4):
        assert h.call().status == 200
    assert h.upstream.urls() == [f"{TARGET_B}/orders/42"] * 4


def test_when_every_target_is_down_the_proxy_fails_open() -> None:
    h = harness(
        [make_route(targets=[{"url": TARGET_A}, {"url": TARGET_B}])],
        health={TARGET_A: "down", TARGET_B: "down"},
    )
    assert h.call().status == 200
    assert len(h.upstream.calls) == 1


def test_failing_open_still_respects_open_circuits() -> None:
    h = harness([make_route(retry=ONE_ATTEMPT)], health={TARGET_A: "down"}, upstream=FakeUpstream(default=answer(500)))
    for _ in range(5):
        h.call()
    response = h.call()
    assert problem(response)["code"] == "upstream_unavailable"
    assert "Retry-After" in response.headers
    assert len(h.upstream.calls) == 5


# -- the response cache ---------------------------------------------------------------------------


def test_a_second_get_is_a_cache_hit_with_age_and_no_upstream_call() -> None:
    h = harness([make_route(cache_ttl_seconds=60)], upstream=FakeUpstream(answer(200, {"id": "42"})))
    first = h.call()
    assert first.status == 200
    assert first.headers["X-Cache"] == "MISS"
    assert h.record().cache == "miss"

    h.clock.now += 10
    second = h.call()
    assert second.status == 200
    assert second.headers["X-Cache"] == "HIT"
    assert second.headers["Age"] == "10"
    assert second.body == first.body
    assert second.headers["Content-Type"] == "application/json"
    assert len(h.upstream.calls) == 1
    assert h.record().cache == "hit"

    h.clock.now += 51  # expired
    assert h.call().headers["X-Cache"] == "MISS"
    assert len(h.upstream.calls) == 2


def test_cached_answers_are_per_caller_by_default() -> None:
    h = harness([make_route(cache_ttl_seconds=60)])
    h.call(caller=CLIENT)
    other = ProxyCaller(client_id="cl_2", scopes=CLIENT.scopes)
    assert h.call(caller=other).headers["X-Cache"] == "MISS"
    assert len(h.upstream.calls) == 2


def test_post_is_never_cached() -> None:
    h = harness([make_route(method="POST", path="/payments")])
    for _ in range(2):
        response = h.call("POST", "/payments", body=b"{}")
        assert response.status == 200
        assert "X-Cache" not in response.headers
    assert len(h.upstream.calls) == 2
    assert h.cache.puts == 0


def test_answers_other_than_200_are_not_cached() -> None:
    h = harness(
        [make_route(cache_ttl_seconds=60)],
        upstream=FakeUpstream(answer(404, {"error": "no"}), answer(200, {"id": "42"})),
    )
    assert h.call().status == 404
    second = h.call()
    assert second.status == 200
    assert second.headers["X-Cache"] == "MISS"
    assert len(h.upstream.calls) == 2
    assert h.cache.puts == 1


# -- deprecation ----------------------------------------------------------------------------------


def test_deprecated_routes_carry_deprecation_and_sunset_headers() -> None:
    h = harness([make_route(deprecated=True, deprecation_date="2026-01-01", sunset_date="2026-06-30")])
    response = h.call()
    assert response.headers["Deprecation"] == "@1767225600"
    assert response.headers["Sunset"] == "Tue, 30 Jun 2026 00:00:00 GMT"


def test_a_deprecated_route_without_a_date_is_deprecated_since_its_version() -> None:
    h = harness(versions=[make_version([make_route(deprecated=True)], created_at="2026-03-01T12:00:00.000Z")])
    response = h.call()
    assert response.headers["Deprecation"] == "@1772366400"
    assert "Sunset" not in response.headers


def test_routes_that_are_not_deprecated_say_nothing() -> None:
    response = harness().call()
    assert "Deprecation" not in response.headers
    assert "Sunset" not in response.headers


# -- CORS -----------------------------------------------------------------------------------------


def test_a_preflight_from_an_allowed_origin_is_answered_204() -> None:
    h = harness(cors=CORS)
    response = h.call(
        "OPTIONS",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        caller=ANONYMOUS,  # preflights carry no credentials
    )
    assert response.status == 204
    assert response.body == b""
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert response.headers["Vary"] == "Origin"
    assert h.upstream.calls == []
    assert h.limiter.checked == []


def test_a_preflight_from_an_unknown_origin_gets_no_cors_headers() -> None:
    h = harness(cors=CORS)
    response = h.call(
        "OPTIONS",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        caller=ANONYMOUS,
    )
    assert response.status == 204
    assert not [k for k in response.headers if k.lower().startswith("access-control-")]
    assert h.upstream.calls == []


def test_answers_to_an_allowed_origin_carry_allow_origin_and_expose_headers() -> None:
    h = harness(cors=CORS)
    response = h.call(headers={"Origin": "https://app.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]
    failed = h.call("GET", "/nothing", headers={"Origin": "https://app.example"})
    assert failed.headers["Access-Control-Allow-Origin"] == "https://app.example"  # errors too
    assert "Access-Control-Allow-Origin" not in h.call(headers={"Origin": "https://evil.example"}).headers


# -- content negotiation and transformations ------------------------------------------------------

ITEMS = b'{"items":[{"id":1,"amount":1234.50},{"id":2,"amount":-3.10}]}'
JSON_HEADERS = {"Content-Type": "application/json"}


def test_a_json_answer_is_rendered_as_csv_when_the_caller_asks_for_it() -> None:
    h = harness(upstream=FakeUpstream(answer(200, ITEMS, JSON_HEADERS)))
    response = h.call(headers={"Accept": "text/csv"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.body == b"id,amount\r\n1,1234.50\r\n2,-3.10\r\n"


def test_a_json_answer_is_rendered_as_xml_when_the_caller_prefers_it() -> None:
    h = harness(upstream=FakeUpstream(answer(200, b'{"amount":1234.50}', JSON_HEADERS)))
    response = h.call(headers={"Accept": "text/csv;q=0.5, application/xml"})
    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert b"<amount>1234.50</amount>" in response.body


def test_a_route_that_must_render_answers_406_for_an_unrenderable_accept() -> None:
    h = harness(
        [make_route(response_transform={"body": {"total": "{{ body.amount }}"}})],
        upstream=FakeUpstream(answer(200, b'{"amount":1234.50}', JSON_HEADERS)),
    )
    response = h.call(headers={"Accept": "image/png"})
    assert response.status == 406
    body = problem(response)
    assert body["code"] == "not_acceptable"
    assert "text/csv" in body["available"]
    assert h.record().status_code == 406


def test_a_response_body_transform_keeps_exact_numbers() -> None:
    h = harness(
        [make_route(response_transform={"body": {"total": "{{ body.amount }}", "order": "{{ path.id }}"}})],
        upstream=FakeUpstream(answer(200, b'{"amount":1234.50}', JSON_HEADERS)),
    )
    response = h.call()
    assert response.body == b'{"total":1234.50,"order":"42"}'


def test_a_pass_through_route_returns_the_upstream_body_untouched_whatever_the_accept() -> None:
    raw = b'{ "id": 1,   "amount": 1234.50 }'
    h = harness(upstream=FakeUpstream(default=answer(200, raw, JSON_HEADERS)))
    for accept in ("image/png", "application/json", None):
        response = h.call(headers={"Accept": accept} if accept else {})
        assert response.status == 200
        assert response.body == raw
        assert response.headers["Content-Type"] == "application/json"


def test_upstream_headers_that_must_not_be_returned_are_dropped() -> None:
    headers = {
        "Content-Type": "application/json",
        "Set-Cookie": "upstream=1",
        "Connection": "close",
        "X-Gateway-Internal": "1",
        "X-Amzn-RequestId": "u",
        "ETag": '"v1"',
    }
    h = harness(upstream=FakeUpstream(answer(200, b"{}", headers)))
    response = h.call()
    lowered = {k.lower() for k in response.headers}
    assert "set-cookie" not in lowered
    assert "connection" not in lowered
    assert "x-gateway-internal" not in lowered
    assert "x-amzn-requestid" not in lowered
    assert response.headers["Etag"] == '"v1"'


def test_a_request_body_template_keeps_decimal_exactness() -> None:
    route = make_route(
        method="POST",
        path="/payments",
        request_transform={
            "body": {"amount": "{{ body.amount }}", "currency": "{{ body.ccy | upper }}", "ref": "{{ request.id }}"}
        },
    )
    h = harness([route])
    h.call(
        "POST",
        "/payments",
        body=b'{"amount": 1234.50, "ccy": "eur"}',
        headers={"Content-Type": "application/json", "X-Request-Id": "pay-1"},
    )
    sent = only_call(h)
    assert b'"amount":1234.50' in sent.body
    assert json.loads(sent.body) == {"amount": 1234.5, "currency": "EUR", "ref": "pay-1"}
    assert sent.headers["content-type"] == "application/json"


def test_a_caller_body_that_is_not_json_is_400_when_a_template_needs_it() -> None:
    route = make_route(method="POST", path="/payments", request_transform={"body": {"amount": "{{ body.amount }}"}})
    h = harness([route])
    response = h.call("POST", "/payments", body=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert problem(response)["code"] == "invalid_body"
    assert h.upstream.calls == []


SOAP_ANSWER = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b'<m:GetBalanceResponse xmlns:m="urn:bank:accounts"><m:balance>1234.50</m:balance>'
    b"<m:currency>EUR</m:currency></m:GetBalanceResponse></soap:Body></soap:Envelope>"
)


def soap_route(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "route_id": "rt_balance",
        "method": "POST",
        "path": "/balances",
        "protocol": "soap",
        "soap": {"namespace": "urn:bank:accounts", "operation": "GetBalance", "action": "urn:bank:GetBalance"},
    }
    values.update(overrides)
    return make_route(**values)


def test_a_soap_route_sends_an_envelope_and_answers_json() -> None:
    h = harness([soap_route()], upstream=FakeUpstream(answer(200, SOAP_ANSWER, {"Content-Type": "text/xml"})))
    response = h.call(
        "POST",
        "/balances",
        body=b'{"account": "DE89 <3704>", "currency": "EUR"}',
        headers={"Content-Type": "application/json"},
    )
    sent = only_call(h)
    assert sent.method == "POST"
    assert sent.body.startswith(b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope')
    assert b'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"' in sent.body
    assert b'<m:GetBalance xmlns:m="urn:bank:accounts">' in sent.body
    assert b"<m:account>DE89 &lt;3704&gt;</m:account><m:currency>EUR</m:currency>" in sent.body
    assert sent.headers["content-type"] == "text/xml; charset=utf-8"
    assert sent.headers["soapaction"] == '"urn:bank:GetBalance"'
    assert response.status == 200
    assert json.loads(response.body) == {"balance": "1234.50", "currency": "EUR"}


def test_a_soap_fault_from_the_service_is_502() -> None:
    fault = (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>'
        b"<faultcode>soap:Server</faultcode><faultstring>ledger offline</faultstring>"
        b"</soap:Fault></soap:Body></soap:Envelope>"
    )
    h = harness([soap_route()], upstream=FakeUpstream(answer(500, fault, {"Content-Type": "text/xml"})))
    response = h.call("POST", "/balances", body=b'{"account": "1"}', headers={"Content-Type": "application/json"})
    assert response.status == 502
    assert problem(response)["code"] == "upstream_fault"


def graphql_route(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "route_id": "rt_account",
        "path": "/accounts/{id}",
        "protocol": "graphql",
        "graphql": {
            "query": "query Account($id: ID!) { account(id: $id) { id balance } }",
            "operation_name": "Account",
            "variables": {"id": "{{ path.id }}"},
        },
    }
    values.update(overrides)
    return make_route(**values)


def test_a_graphql_route_posts_the_document_and_answers_its_data() -> None:
    h = harness(
        [graphql_route()],
        upstream=FakeUpstream(answer(200, b'{"data":{"account":{"id":"42","balance":1234.50}}}', JSON_HEADERS)),
    )
    response = h.call("GET", "/accounts/42")
    sent = only_call(h)
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.body) == {
        "query": "query Account($id: ID!) { account(id: $id) { id balance } }",
        "variables": {"id": "42"},
        "operationName": "Account",
    }
    assert response.status == 200
    assert response.body == b'{"account":{"id":"42","balance":1234.50}}'


def test_graphql_errors_are_502_upstream_graphql_error() -> None:
    errors = {
        "data": None,
        "errors": [
            {"message": "account not found", "path": ["account"], "extensions": {"code": "NOT_FOUND", "trace": "x"}}
        ],
    }
    h = harness([graphql_route()], upstream=FakeUpstream(answer(200, errors)))
    response = h.call("GET", "/accounts/42")
    assert response.status == 502
    body = problem(response)
    assert body["code"] == "upstream_graphql_error"
    assert body["errors"] == [{"message": "account not found", "path": ["account"], "code": "NOT_FOUND"}]
    assert h.record().error_code == "upstream_graphql_error"


def test_a_mutation_that_cannot_be_rendered_for_the_caller_is_refused_before_it_runs() -> None:
    """A GraphQL (or SOAP) route always renders its answer, so an Accept it cannot meet is known
    before the upstream call: the 406 must come first, not after the mutation (a payment) ran."""
    route = graphql_route(
        method="POST",
        path="/payments",
        graphql={"query": "mutation Pay($amount: Float!) { pay(amount: $amount) { id } }", "variables": None},
    )
    h = harness([route], upstream=FakeUpstream(answer(200, {"data": {"pay": {"id": "p1"}}})))
    response = h.call(
        "POST", "/payments", body=b'{"amount": 10}', headers={"Content-Type": "application/json", "Accept": "image/png"}
    )
    assert response.status == 406
    assert h.upstream.calls == []


# -- rate limits ----------------------------------------------------------------------------------


def test_admitted_requests_carry_ratelimit_headers() -> None:
    response = harness().call()
    assert response.headers["RateLimit-Policy"] == '"minute";q=300;w=60'
    assert response.headers["RateLimit"] == '"minute";r=299;t=1'
    assert "Retry-After" not in response.headers


def test_a_refused_decision_is_429_with_retry_after_and_ratelimit_headers() -> None:
    refused = Decision(
        admitted=False, policies=[policy(remaining=0, reset=12)], retry_after=12, refused_by="CLIENT#cl_1"
    )
    h = harness(limiter=FakeLimiter(refused))
    response = h.call()
    assert response.status == 429
    assert response.headers["Retry-After"] == "12"
    assert response.headers["RateLimit"] == '"minute";r=0;t=12'
    assert "RateLimit-Policy" in response.headers
    body = problem(response)
    assert body["code"] == "rate_limited"
    assert body["retry_after"] == 12
    assert body["scope"] == "client"
    assert h.upstream.calls == []
    assert h.record().rate_limited is True
    assert h.record().status_code == 429


def test_a_route_limit_refusal_names_the_route_scope() -> None:
    refused = Decision(admitted=False, policies=[policy(remaining=0)], retry_after=3, refused_by="ROUTE#rt_orders")
    body = problem(harness(limiter=FakeLimiter(refused)).call())
    assert body["scope"] == "route"


def test_a_global_refusal_is_503_capacity_exceeded() -> None:
    refused = Decision(admitted=False, policies=[policy("global", 50, 0, 1)], retry_after=1, refused_by="GLOBAL")
    h = harness(limiter=FakeLimiter(refused), global_per_second=50)
    response = h.call()
    assert response.status == 503
    assert problem(response)["code"] == "capacity_exceeded"
    assert response.headers["Retry-After"] == "1"
    assert h.upstream.calls == []
    assert h.record().rate_limited is True


def test_the_plans_cover_the_client_the_route_total_and_the_global_guard() -> None:
    limits = ClientLimits("professional", None, None, None, None, None, overridden=False)
    h = harness(
        [make_route(total_rate_limits={"per_minute": 100}, rate_limits={"per_minute": 10})],
        limits={"cl_1": limits},
        global_per_second=50,
    )
    h.call()
    plans = h.limiter.checked[0]
    assert [s.plan.key for s in plans] == ["CLIENT#cl_1", "ROUTE#rt_orders", "GLOBAL"]
    client_windows = {w.name: w.limit for w in plans[0].plan.windows}
    assert client_windows == {"minute": 1_000, "hour": 50_000, "day": 1_000_000, "route-minute": 10}
    assert plans[0].plan.quota is not None
    assert plans[0].plan.quota.limit == 10_000_000
    assert plans[2].plan.reserve == pytest.approx(0.1)  # professional leaves 10 % for higher tiers


def test_a_clients_own_limits_override_its_tier() -> None:
    limits = ClientLimits("basic", 20, None, None, 5, 1_000, overridden=True)
    h = harness(limits={"cl_1": limits})
    h.call()
    (plan,) = h.limiter.checked[0]
    assert [(w.name, w.limit, w.capacity) for w in plan.plan.windows] == [("minute", 20, 5)]
    assert plan.plan.quota is not None
    assert plan.plan.quota.limit == 1_000


# -- the request log ------------------------------------------------------------------------------


def test_every_request_writes_exactly_one_log_record_whatever_happened() -> None:
    refused = Decision(admitted=False, policies=[policy(remaining=0)], retry_after=5, refused_by="CLIENT#cl_1")
    h = harness(
        [make_route(), make_route(route_id="rt_open", path="/open", auth_required=False)],
        limiter=FakeLimiter(Decision(admitted=True, policies=[]), refused),
        upstream=FakeUpstream(answer(200, {"id": "42"})),
        cors=CORS,
    )
    outcomes = [
        h.call(),  # 200
        h.call("GET", "/open"),  # 429
        h.call("GET", "/nothing"),  # 404
        h.call("DELETE", "/orders/1"),  # 405
        h.call(caller=ANONYMOUS),  # 401
        h.call("OPTIONS", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}),  # 204
    ]
    assert [r.status for r in outcomes] == [200, 429, 404, 405, 401, 204]
    assert len(h.logs.records) == len(outcomes)
    assert [r.status_code for r in h.logs.records] == [200, 429, 404, 405, 401, 204]
    assert [r.route_id for r in h.logs.records] == ["rt_orders", "rt_open", "", "", "rt_orders", ""]
    assert [r.attempts for r in h.logs.records] == [1, 0, 0, 0, 0, 0]
    assert [r.error_code for r in h.logs.records] == [
        "",
        "rate_limited",
        "route_not_found",
        "method_not_allowed",
        "credential_required",
        "",
    ]
    success = h.logs.records[0]
    assert (success.gateway_id, success.gateway_version, success.upstream_service) == (GATEWAY_ID, 1, TARGET_A)
    assert success.response_size == len(outcomes[0].body)
    assert success.at.endswith("Z")


def test_a_failed_upstream_call_is_logged_once_with_its_attempts() -> None:
    h = harness(upstream=FakeUpstream(default=answer(503)))
    h.call()
    (record,) = h.logs.records
    assert (record.status_code, record.attempts, record.route_id) == (503, 3, "rt_orders")


def test_the_log_record_keeps_no_credentials_or_secret_values() -> None:
    h = harness([make_route(method="POST", path="/payments")])
    h.call(
        "POST",
        "/payments",
        query={"token": ["qry-sekrit-1"], "api_key": ["qry-sekrit-2"], "ccy": ["EUR"]},
        headers={
            "Authorization": "Bearer hdr-sekrit-3",
            "X-Api-Key": "hdr-sekrit-4",
            "Cookie": "session=hdr-sekrit-5",
            "X-Client-Secret": "hdr-sekrit-6",
            "Content-Type": "application/json",
            "User-Agent": "partner-sdk/1.0",
        },
        body=b'{"password": "body-sekrit-7", "card": {"pan": "4111"}, "amount": 1}',
    )
    (record,) = h.logs.records
    dumped = json.dumps(record.item_fields(), default=str)
    assert "sekrit" not in dumped
    assert "4111" not in dumped
    assert record.query_params == {"token": ["***"], "api_key": ["***"], "ccy": ["EUR"]}
    assert "authorization" not in record.request_headers
    assert "x-api-key" not in record.request_headers
    assert "cookie" not in record.request_headers
    assert record.request_headers["x-client-secret"] == "***"
    assert record.user_agent == "partner-sdk/1.0"
    assert json.loads(record.request_body_sample) == {"password": "***", "card": "***", "amount": 1}


def test_secret_form_fields_are_not_kept_in_the_body_sample() -> None:
    """JSON members with secret-looking names are masked in the sample; a form body carries the
    same fields and must not keep them in clear either."""
    h = harness([make_route(method="POST", path="/login")])
    h.call(
        "POST",
        "/login",
        body=b"username=ann&password=hunter2-sekrit&otp=991-sekrit",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    (record,) = h.logs.records
    assert "sekrit" not in record.request_body_sample
    assert "username=ann" in record.request_body_sample


def test_a_failed_log_write_does_not_fail_the_request() -> None:
    seen: list[Exception] = []
    h = harness()
    logs = FailingLogs()
    proxy = Proxy(
        serving=h.serving,
        limiter=FakeLimiter(),
        upstream=h.upstream,
        cache=FakeCache(FakeClock()),
        logs=logs,
        on_log_failure=seen.append,
        sleep=h.sleep,
    )
    response = proxy.handle(make_request())
    assert response.status == 200
    assert logs.attempts == 1
    assert [str(e) for e in seen] == ["DynamoDB is throttling"]
    # without a callback the failure is swallowed too
    proxy.on_log_failure = None
    assert proxy.handle(make_request()).status == 200


# -- canaries -------------------------------------------------------------------------------------


def canary_harness(percent: int) -> Any:
    stable = make_version([make_route()], version=1)
    canary = make_version([make_route(targets=[{"url": TARGET_B}])], version=2)
    return harness(versions=[stable, canary], gateways=[serving_gateway(active=1, canary=2, percent=percent)])


def test_a_caller_always_gets_the_same_version() -> None:
    h = canary_harness(50)
    for client in ("cl_1", "cl_2", "cl_3", "cl_4"):
        caller = ProxyCaller(client_id=client)
        versions = set()
        for _ in range(5):
            h.call(caller=caller)
            versions.add(h.record().gateway_version)
        assert len(versions) == 1, client
    for address in ("198.51.100.1", "198.51.100.2"):
        seen = set()
        for _ in range(3):
            h.call(caller=ANONYMOUS, source_ip=address)
            seen.add(h.record().gateway_version)
        assert len(seen) == 1


def test_about_half_of_many_callers_get_a_fifty_percent_canary() -> None:
    h = canary_harness(50)
    for i in range(200):
        h.call(caller=ProxyCaller(client_id=f"cl_{i}"))
    on_canary = sum(r.gateway_version == 2 for r in h.logs.records)
    assert 65 <= on_canary <= 135
    assert sum(u.startswith(TARGET_B) for u in h.upstream.urls()) == on_canary


def test_without_a_canary_everyone_gets_the_active_version() -> None:
    h = canary_harness(0)
    for i in range(50):
        h.call(caller=ProxyCaller(client_id=f"cl_{i}"))
    assert {r.gateway_version for r in h.logs.records} == {1}


def test_a_cached_answer_of_one_version_is_not_served_to_callers_of_the_other() -> None:
    """Canary and stable share route ids; the cache must not hand the canary's answer to a caller
    of the stable version (nor keep serving it after the canary is rolled back)."""
    stable = make_version([make_route(auth_required=False, cache_ttl_seconds=60)], version=1)
    canary = make_version(
        [make_route(auth_required=False, cache_ttl_seconds=60, targets=[{"url": TARGET_B}])], version=2
    )
    gateway = serving_gateway(active=1, canary=2, percent=50)
    addresses = [f"198.51.100.{i}" for i in range(1, 60)]
    on_canary = next(a for a in addresses if serves_canary(gateway.deployment, f"ip:{a}"))
    on_stable = next(a for a in addresses if not serves_canary(gateway.deployment, f"ip:{a}"))
    h = harness(
        versions=[stable, canary],
        gateways=[gateway],
        upstream=FakeUpstream(by_target={TARGET_A: [answer(200, {"v": 1})], TARGET_B: [answer(200, {"v": 2})]}),
    )
    assert json.loads(h.call(caller=ANONYMOUS, source_ip=on_canary).body) == {"v": 2}
    response = h.call(caller=ANONYMOUS, source_ip=on_stable)
    assert h.record().gateway_version == 1
    assert json.loads(response.body) == {"v": 1}, response.headers.get("X-Cache")


def test_a_version_that_cannot_be_read_is_503() -> None:
    h = harness(versions=[make_version([make_route()], version=1)], gateways=[serving_gateway(active=2)])
    response = h.call()
    assert response.status == 503
    assert problem(response)["code"] == "dependency_unavailable"


def test_a_request_whose_deadline_has_passed_is_not_sent_upstream() -> None:
    # Given a batch's sub-request whose share of the 29 s is used up
    h = harness(upstream=FakeUpstream(default=answer(200)))
    response = h.call(deadline_at=time.monotonic() - 1)
    # Then it is a 504 and the upstream never saw it
    assert response.status == 504
    assert problem(response)["code"] == "deadline_exceeded"
    assert h.upstream.calls == []


def test_a_near_deadline_cuts_the_attempts_timeout() -> None:
    h = harness(upstream=FakeUpstream(default=answer(200)))
    assert h.call(deadline_at=time.monotonic() + 2.0).status == 200
    assert h.upstream.calls[0].timeout <= 2.0


# -- hardening (found in review) ------------------------------------------------------------------


def test_a_deeply_nested_json_body_is_logged_as_not_kept_and_does_not_crash() -> None:
    h = harness([make_route(method="POST", path="/payments")])
    response = h.call("POST", "/payments", body=b"[" * 5000 + b"]" * 5000, headers={"content-type": "application/json"})
    assert response.status == 200  # a pass-through route does not read the body
    assert "not kept" in h.record().request_body_sample


def test_header_values_that_are_not_printable_ascii_are_a_400_and_never_sent() -> None:
    route = make_route(request_transform={"headers": {"add": {"X-Ccy": "{{ query.ccy }}"}}})
    h = harness([route])
    response = h.call(query={"ccy": ["€"]})
    assert response.status == 400
    assert problem(response)["code"] == "invalid_header"
    assert h.upstream.calls == []
    # The refusal says nothing about the upstream: its circuit stays closed for the next caller.
    assert h.call(query={"ccy": ["EUR"]}).status == 200


def test_identity_headers_only_the_gateway_may_set_are_not_forwarded() -> None:
    h = harness()
    h.call(
        headers={
            "X-Forwarded-User": "admin",
            "X-Forwarded-Client-Cert": "x",
            "X-Real-IP": "10.0.0.1",
            "True-Client-IP": "10.0.0.2",
            "Accept-Encoding": "br, zstd",
        }
    )
    sent = only_call(h).headers
    for name in ("x-forwarded-user", "x-forwarded-client-cert", "x-real-ip", "true-client-ip"):
        assert name not in sent
    assert sent["accept-encoding"] == "gzip, deflate"  # what the gateway itself can decode


@pytest.mark.parametrize(
    "headers",
    [{"Cache-Control": "private, max-age=60"}, {"Cache-Control": "no-store"}, {"Vary": "Authorization"}],
)
def test_answers_the_upstream_marks_private_or_varying_are_not_cached(headers: dict[str, str]) -> None:
    h = harness([make_route(cache_ttl_seconds=60)], upstream=FakeUpstream(default=answer(200, {"id": 1}, headers)))
    h.call()
    assert h.call().headers["X-Cache"] == "MISS"
    assert h.cache.puts == 0
    assert len(h.upstream.calls) == 2


def test_an_upstreams_own_ratelimit_headers_do_not_reach_the_caller() -> None:
    upstream = FakeUpstream(default=answer(200, {"id": 1}, {"RateLimit": '"up";r=1;t=1', "X-RateLimit-Limit": "5"}))
    h = harness(upstream=upstream, limiter=FakeLimiter(Decision(admitted=True, policies=[policy()])))
    response = h.call()
    assert '"up"' not in response.headers.get("RateLimit", "")
    assert "X-Ratelimit-Limit" not in response.headers


def test_a_half_open_probe_that_fails_oddly_is_released() -> None:
    upstream = FakeUpstream(default=answer(503))
    h = harness(
        upstream=upstream, retry={"max_attempts": 1, "initial_delay": 0.01, "max_delay": 0.01, "multiplier": 1.0}
    )
    for _ in range(5):
        h.call()  # five failures open the circuit
    assert h.call().status == 503
    h.clock.now += 61  # half-open: one probe may go
    upstream.script = [UpstreamError("too large", code="upstream_too_large")]
    assert h.call().status == 502
    upstream.script = [answer(200, {"ok": True})]
    assert h.call().status == 200  # the probe was given back, not stuck


def test_an_answer_too_large_for_lambda_is_a_502_problem() -> None:
    # 2.2 MB of Cyrillic text: 13 MB once JSON-escaped into the Lambda answer
    big = UpstreamAnswer(200, [("content-type", "text/plain")], "д".encode() * 1_100_000)
    h = harness(upstream=FakeUpstream(big))
    response = h.call()
    assert response.status == 502
    assert problem(response)["code"] == "upstream_too_large"


def test_a_cache_that_cannot_be_read_or_written_is_a_miss_not_a_failure() -> None:
    class BrokenCache(FakeCache):
        def get(self, route_id: str, key: str) -> Any:
            raise RuntimeError("DynamoDB is throttling")

        def put(self, route_id: str, key: str, answer: Any) -> bool:
            raise RuntimeError("DynamoDB is throttling")

    errors: list[Exception] = []
    h = harness([make_route(cache_ttl_seconds=60)])
    h.proxy.cache = BrokenCache(h.clock)
    h.proxy.on_error = errors.append
    response = h.call()
    assert response.status == 200
    assert response.headers["X-Cache"] == "MISS"
    assert len(errors) == 2


# -- what an upstream's answer may tell the caller ------------------------------------------------

UPSTREAM_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Credentials": "true",
    "Access-Control-Allow-Methods": "GET, POST, DELETE",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Expose-Headers": "X-Internal-Token",
    "Access-Control-Max-Age": "86400",
    "Access-Control-Allow-Private-Network": "true",
    "access-control-allow-origin": "https://evil.example",
}


def test_an_upstreams_cors_headers_never_reach_the_caller_of_a_gateway_without_cors() -> None:
    h = harness(upstream=FakeUpstream(default=answer(200, {"id": 1}, UPSTREAM_CORS)))
    response = h.call(headers={"Origin": "https://evil.example"})
    assert response.status == 200
    assert [k for k in response.headers if k.lower().startswith("access-control-")] == []


def test_the_gateway_alone_answers_cors_on_a_gateway_with_cors() -> None:
    h = harness(upstream=FakeUpstream(default=answer(200, {"id": 1}, UPSTREAM_CORS)), cors=CORS)
    response = h.call(headers={"Origin": "https://app.example"})
    cors = {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}
    assert set(cors) == {"Access-Control-Allow-Origin", "Access-Control-Expose-Headers"}  # the gateway's
    assert cors["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-Internal-Token" not in cors["Access-Control-Expose-Headers"]


def test_a_routes_response_rules_cannot_answer_cors_either() -> None:
    route = make_route(response_transform={"headers": {"add": {"Access-Control-Allow-Origin": "*"}}})
    h = harness([route])
    response = h.call(headers={"Origin": "https://evil.example"})
    assert [k for k in response.headers if k.lower().startswith("access-control-")] == []


@pytest.mark.parametrize(
    "location",
    [
        "http://10.0.0.5/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/internal",
        "http://[fd00:ec2::254]/",
        "http://0177.0.0.1/",
        "http://2130706433/",
        "http://localhost/",
        "http://metadata.google.internal/",
        "//169.254.169.254/",
        "/\\10.0.0.5/",
        "http:10.0.0.5",
    ],
    ids=repr,
)
@pytest.mark.parametrize("header", ["Location", "Content-Location"])
def test_a_location_pointing_inside_is_not_handed_to_the_caller(location: str, header: str) -> None:
    h = harness(upstream=FakeUpstream(default=answer(302, b"", {header: location, "X-Kept": "1"})))
    response = h.call()
    # The status stays: the upstream may have acted already, and a 502 would invite a retry.
    assert response.status == 302
    assert header.lower() not in {k.lower() for k in response.headers}
    assert response.headers["X-Kept"] == "1"


def test_a_refresh_pointing_inside_is_dropped() -> None:
    h = harness(upstream=FakeUpstream(default=answer(200, b"ok", {"Refresh": "0; url=http://169.254.169.254/"})))
    assert "Refresh" not in h.call().headers


@pytest.mark.parametrize(
    "location", ["/orders/5", "https://partner.example/orders/5", "?page=2", "com.bank.app:/callback?code=1"]
)
def test_a_location_pointing_elsewhere_is_kept(location: str) -> None:
    h = harness(upstream=FakeUpstream(default=answer(201, {"id": 5}, {"Location": location})))
    response = h.call()
    assert (response.status, response.headers["Location"]) == (201, location)


# -- loops: a route whose upstream is this gateway (or a chain of gateways that comes back) -------


def test_every_upstream_request_carries_this_gateways_hop() -> None:
    h = harness()
    h.call()
    assert only_call(h).headers["x-gateway-hop"] == h.proxy.hop_id


def test_a_request_that_already_passed_this_gateway_is_508_and_goes_nowhere() -> None:
    h = harness()
    for hops in (h.proxy.hop_id, f"gw-other, {h.proxy.hop_id}", f"{h.proxy.hop_id},gw-other", f" {h.proxy.hop_id} "):
        response = h.call(headers={"X-Gateway-Hop": hops})
        assert response.status == 508
        assert problem(response)["code"] == "loop_detected"
    assert h.upstream.calls == []
    assert h.limiter.checked == []
    assert h.record().error_code == "loop_detected"


def test_hops_of_other_gateways_are_passed_on_with_ours_after_them() -> None:
    h = harness()
    h.call(headers={"X-Gateway-Hop": "gw-a, gw-b, not a token!, gw-c"})
    assert only_call(h).headers["x-gateway-hop"] == f"gw-a, gw-b, gw-c, {h.proxy.hop_id}"


def test_a_chain_of_too_many_gateways_is_508() -> None:
    h = harness()
    response = h.call(headers={"X-Gateway-Hop": ", ".join(f"gw-{i}" for i in range(MAX_HOPS))})
    assert response.status == 508
    assert h.upstream.calls == []


def test_two_deployments_have_different_hops_and_one_keeps_its_own() -> None:
    assert hop_token("FinanceGateway-Table-A") == hop_token("FinanceGateway-Table-A")
    assert hop_token("FinanceGateway-Table-A") != hop_token("FinanceGateway-Table-B")
    assert HOP_TOKEN.fullmatch(hop_token("FinanceGateway-Table-A"))
