"""The proxy's answer as a caller gets it (repeated headers, one Date, no upstream Server) and the
request body a route's templates read (issue 12's data-plane defects)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.routes.api.batch import _answer
from functions.routes.api.proxy import to_reply
from functions.routes.dal.upstream import UpstreamAnswer
from functions.routes.logic.proxy import ProxyResponse, header_values
from gateway_core.errors import PROBLEM_CONTENT_TYPE
from tests.unit.proxy_fakes import FakeUpstream, Harness, harness, make_route

LINKS = ['<https://api.example/p?page=2>; rel="next"', '<https://api.example/p?page=9>; rel="last"']
CORS = {"allow_origins": ["https://app.example"]}


def upstream_with(*pairs: tuple[str, str], body: bytes = b'{"ok":true}') -> FakeUpstream:
    return FakeUpstream(UpstreamAnswer(200, [("content-type", "application/json"), *pairs], body))


def values(response: ProxyResponse, name: str) -> list[str]:
    return {k.lower(): v for k, v in header_values(response).items()}.get(name.lower(), [])


def problem(response: ProxyResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = json.loads(response.body)
    assert body["status"] == response.status
    return body


# -- repeated headers, Date and Server --------------------------------------------------------------


def test_repeated_upstream_headers_each_reach_the_caller_as_multi_value_headers() -> None:
    h = harness(upstream=upstream_with(("link", LINKS[0]), ("vary", "Accept"), ("link", LINKS[1]), ("vary", "Prefer")))
    response = h.call()
    assert values(response, "Link") == LINKS
    assert values(response, "Vary") == ["Accept", "Prefer"]
    result = to_reply(response).result()
    assert result["multiValueHeaders"]["Link"] == LINKS
    assert result["multiValueHeaders"]["Vary"] == ["Accept", "Prefer"]
    # A name is in one map only: API Gateway merges both, so a value in each would be sent twice.
    assert not set(result["multiValueHeaders"]) & set(result["headers"])
    assert result["headers"]["Content-Type"] == "application/json"


def test_a_header_sent_once_stays_a_single_value_header() -> None:
    response = harness(upstream=upstream_with(("etag", '"v1"'))).call()
    result = to_reply(response).result()
    assert result["headers"]["Etag"] == '"v1"'
    assert result["multiValueHeaders"] == {}


@pytest.mark.parametrize(
    "pairs",
    [
        [("server", "nginx/1.25.3"), ("date", "Tue, 01 Dec 2026 10:00:00 GMT")],
        [("Server", "Apache/2.4 (Debian)"), ("Server", "envoy"), ("DATE", "Tue, 01 Dec 2026 10:00:00 GMT")],
        [("date", "a"), ("date", "b"), ("x-powered-by", "kept"), ("server", "")],
    ],
)
def test_the_upstreams_server_and_date_never_reach_the_caller(pairs: list[tuple[str, str]]) -> None:
    response = harness(upstream=upstream_with(*pairs)).call()
    assert values(response, "Server") == []
    assert values(response, "Date") == []
    result = to_reply(response).result()
    names = {k.lower() for k in [*result["headers"], *result["multiValueHeaders"]]}
    assert not names & {"server", "date"}


def test_the_gateways_own_headers_replace_every_upstream_value_of_the_same_name() -> None:
    h = harness(upstream=upstream_with(("x-request-id", "up-1"), ("x-request-id", "up-2"), ("x-cache", "HIT")))
    response = h.call(headers={"X-Request-Id": "mine-1"})
    assert values(response, "X-Request-Id") == ["mine-1"]


def test_cors_vary_joins_a_repeated_upstream_vary_once() -> None:
    route = make_route()
    h = harness([route], upstream=upstream_with(("vary", "Accept"), ("vary", "Origin")), cors=CORS)
    response = h.call(headers={"Origin": "https://app.example"})
    assert values(response, "Vary") == ["Accept", "Origin"]
    h2 = harness([route], upstream=upstream_with(("vary", "Accept"), ("vary", "Prefer")), cors=CORS)
    response = h2.call(headers={"Origin": "https://app.example"})
    assert values(response, "Vary") == ["Accept", "Prefer", "Origin"]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"remove": ["Link"]}, {"link": [], "x-link": []}),
        ({"rename": {"link": "x-link"}}, {"link": [], "x-link": LINKS}),
        ({"add": {"Link": "<https://gw.example/p>"}}, {"link": ["<https://gw.example/p>"], "x-link": []}),
    ],
)
def test_a_response_header_rule_acts_on_every_value_of_a_repeated_header(
    rules: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    route = make_route(response_transform={"headers": rules})
    response = harness([route], upstream=upstream_with(("link", LINKS[0]), ("link", LINKS[1]))).call()
    for name, wanted in expected.items():
        assert values(response, name) == wanted


def test_a_cached_answer_keeps_its_repeated_headers() -> None:
    h = harness([make_route(cache_ttl_seconds=60)], upstream=upstream_with(("link", LINKS[0]), ("link", LINKS[1])))
    assert values(h.call(), "Link") == LINKS
    hit = h.call()
    assert hit.headers["X-Cache"] == "HIT"
    assert values(hit, "Link") == LINKS
    assert len(h.upstream.calls) == 1


def test_a_batch_answer_lists_a_repeated_header_once_with_its_values_joined() -> None:
    response = harness(upstream=upstream_with(("link", LINKS[0]), ("link", LINKS[1]))).call()
    assert _answer("1", response)["headers"]["Link"] == ", ".join(LINKS)


# -- the body a route's templates read -------------------------------------------------------------

PAYMENT = {"body": {"amount": "{{ body.amount }}", "payee": "{{ body.payee.iban }}", "ref": "{{ request.id }}"}}


def payment_harness(transform: dict[str, Any] | None = None) -> Harness:
    route = make_route(method="POST", path="/payments", request_transform=transform or PAYMENT)
    return harness([route], upstream=upstream_with())


def post(h: Harness, body: bytes, content_type: str | None = "application/json") -> ProxyResponse:
    headers = {"Content-Type": content_type} if content_type else {}
    return h.call("POST", "/payments", body=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "content_type", "code", "missing"),
    [
        (b"", None, "invalid_body", None),
        (b"", "application/json", "invalid_body", None),
        (b'{"amount": "1.00", "payee": {"iban": "DE1"}}', "text/plain", "invalid_body", None),
        (b"<amount>1.00</amount>", "application/xml", "invalid_body", None),
        (b'{"amount": 1.00, "payee": ', "application/json", "invalid_body", None),
        (b"\xff\xfe{}", "application/json", "invalid_body", None),
        (b'[{"amount": 1.00}]', "application/json", "invalid_body", None),
        (b'"1.00"', "application/json", "invalid_body", None),
        (b"\x00\x01binary", "application/octet-stream", "invalid_body", None),
        (b'{"payee": {"iban": "DE1"}}', "application/json", "missing_field", ["$.amount"]),
        (b'{"amount": 1.00, "payee": {}}', "application/json", "missing_field", ["$.payee.iban"]),
        (b'{"amount": 1.00, "payee": "DE1"}', "application/json", "missing_field", ["$.payee.iban"]),
        (b"{}", "application/json", "missing_field", ["$.amount", "$.payee.iban"]),
    ],
)
def test_a_body_template_refuses_a_body_it_cannot_read_and_sends_nothing(
    body: bytes, content_type: str | None, code: str, missing: list[str] | None
) -> None:
    h = payment_harness()
    response = post(h, body, content_type)
    assert response.status == 400
    found = problem(response)
    assert found["code"] == code
    if missing is not None:
        assert found["missing"] == missing
        for path in missing:
            assert path in found["detail"]
    assert h.upstream.calls == []


def test_a_body_with_every_field_the_template_reads_is_sent() -> None:
    h = payment_harness()
    response = post(h, b'{"amount": 1234.50, "payee": {"iban": "DE1"}}')
    assert response.status == 200
    (sent,) = h.upstream.calls
    assert b'"amount":1234.50' in sent.body
    assert json.loads(sent.body)["payee"] == "DE1"


def test_a_field_sent_as_null_is_present_and_goes_upstream_as_null() -> None:
    h = payment_harness()
    assert post(h, b'{"amount": null, "payee": {"iban": "DE1"}}').status == 200
    assert json.loads(h.upstream.calls[0].body)["amount"] is None


@pytest.mark.parametrize(
    ("template", "body", "expected"),
    [
        ('{{ body.memo | default("none") }}', b'{"amount": 1}', "none"),
        ("{{ body.memo | default(null) }}", b'{"amount": 1}', None),
        ('{{ body.memo | trim | default("") }}', b'{"amount": 1}', ""),
        ('{{ body.memo | default("none") }}', b'{"amount": 1, "memo": "rent"}', "rent"),
    ],
)
def test_a_field_read_through_default_is_optional(template: str, body: bytes, expected: Any) -> None:
    h = payment_harness({"body": {"amount": "{{ body.amount }}", "memo": template}})
    assert post(h, body).status == 200
    assert json.loads(h.upstream.calls[0].body)["memo"] == expected


def test_a_template_that_reads_only_optional_fields_takes_no_body() -> None:
    h = payment_harness({"body": {"memo": '{{ body.memo | default("none") }}', "ref": "{{ request.id }}"}})
    assert post(h, b"", None).status == 200
    assert json.loads(h.upstream.calls[0].body)["memo"] == "none"


def test_a_template_that_reads_no_body_field_takes_any_body() -> None:
    h = payment_harness({"body": {"ref": "{{ request.id }}"}})
    assert post(h, b"plain words", "text/plain").status == 200


def test_indexed_fields_are_named_with_their_index() -> None:
    h = payment_harness({"body": {"sku": "{{ body.items[0].sku }}", "first": "{{ body['odd key'] }}"}})
    response = post(h, b'{"items": []}')
    assert problem(response)["missing"] == ["$.items[0].sku", '$["odd key"]']


def test_a_form_body_is_read_by_its_field_names() -> None:
    h = payment_harness({"body": {"amount": "{{ body.amount }}"}})
    assert post(h, b"amount=1.00", "application/x-www-form-urlencoded").status == 200
    assert problem(post(h, b"other=1", "application/x-www-form-urlencoded"))["missing"] == ["$.amount"]


def test_graphql_variables_and_soap_templates_are_held_to_the_same_rule() -> None:
    graphql = make_route(
        method="POST",
        path="/payments",
        protocol="graphql",
        graphql={"query": "mutation Pay($a: String!) { pay(amount: $a) }", "variables": {"a": "{{ body.amount }}"}},
    )
    h = harness([graphql], upstream=upstream_with(body=b'{"data":{"pay":true}}'))
    response = post(h, b"{}")
    assert problem(response)["missing"] == ["$.amount"]
    assert h.upstream.calls == []
    soap = make_route(
        method="POST",
        path="/payments",
        protocol="soap",
        soap={"namespace": "urn:bank:payments", "operation": "Pay", "action": "urn:bank:Pay"},
        request_transform={"body": {"Amount": "{{ body.amount }}"}},
    )
    h = harness([soap], upstream=upstream_with())
    response = post(h, b"", None)
    assert problem(response)["code"] == "invalid_body"
    assert h.upstream.calls == []
