"""gateway_core.endpoints: the resolver-free entry of the data plane, OAuth2, health and the
functions without an API yet. Its answers must be the resolver's (gateway_core.http): problem
details with the same codes, and CORS headers from the same settings."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway_core.endpoints import Endpoint, Endpoints, Reply, Request
from gateway_core.errors import Conflict
from tests.unit.test_http import proxy_event

PROBLEM = "application/problem+json"
ORIGIN = "https://app.bank.example"


def echo(request: Request) -> Reply:
    return Reply.json(200, json.dumps({"path": request.path, "body": request.text(), "ip": request.source_ip}))


def conflict(request: Request) -> Reply:
    raise Conflict("Someone changed it first.", code="concurrent_change", headers={"ETag": '"4"'})


def broken(request: Request) -> Reply:
    raise RuntimeError("a bug")


def endpoints(errors: list[Exception] | None = None) -> Endpoints:
    return Endpoints(
        [
            Endpoint("POST", "/api/v1/echo", echo),
            Endpoint("PUT", "/api/v1/echo", conflict),
            Endpoint("GET", "/api/v1/broken", broken),
            Endpoint("ANY", "/gw", echo, subtree=True, cors=False),
        ],
        on_error=(errors.append if errors is not None else None),
    )


def body(result: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(result["body"])
    return decoded


def test_a_request_reaches_its_endpoint_with_its_body_decoded() -> None:
    event = proxy_event("POST", "/api/v1/echo", body=base64.b64encode(b"amount=12.50").decode())
    event["isBase64Encoded"] = True  # API Gateway with binary media types */*

    result = endpoints()(event)

    assert result["statusCode"] == 200
    assert result["isBase64Encoded"] is False
    assert body(result) == {"path": "/api/v1/echo", "body": "amount=12.50", "ip": "127.0.0.1"}


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/nowhere"), ("DELETE", "/api/v1/echo")])
def test_an_unknown_path_or_method_is_the_resolvers_404_problem(method: str, path: str) -> None:
    result = endpoints()(proxy_event(method, path, request_id="req-404"))

    assert result["statusCode"] == 404
    assert result["headers"]["Content-Type"] == PROBLEM
    assert body(result) == {
        "type": "urn:gateway:problem:route_not_found",
        "title": "Not Found",
        "status": 404,
        "detail": "No route matches this method and path.",
        "code": "route_not_found",
        "instance": path,
        "request_id": "req-404",
    }


def test_a_gateway_error_is_its_problem_with_its_headers() -> None:
    result = endpoints()(proxy_event("PUT", "/api/v1/echo", request_id="req-409"))

    assert result["statusCode"] == 409
    assert result["headers"] == {"Content-Type": PROBLEM, "ETag": '"4"'}
    assert (body(result)["code"], body(result)["request_id"]) == ("concurrent_change", "req-409")


def test_a_bug_is_a_500_problem_without_internals_and_is_reported() -> None:
    errors: list[Exception] = []

    result = endpoints(errors)(proxy_event("GET", "/api/v1/broken"))

    assert result["statusCode"] == 500
    assert body(result)["code"] == "internal_error"
    assert "a bug" not in result["body"]
    assert [str(e) for e in errors] == ["a bug"]


def test_a_subtree_endpoint_serves_its_path_and_below_only() -> None:
    handler = endpoints()
    assert handler(proxy_event("DELETE", "/gw"))["statusCode"] == 200
    assert body(handler(proxy_event("PATCH", "/gw/orders/1")))["path"] == "/gw/orders/1"
    assert handler(proxy_event("GET", "/gwx/orders"))["statusCode"] == 404


def test_without_cors_settings_no_cors_header_is_added(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORS_ALLOW_ORIGINS", raising=False)
    result = endpoints()(proxy_event("POST", "/api/v1/echo", headers={"Origin": ORIGIN}))
    assert not [h for h in result["headers"] if h.startswith("Access-Control")]


@pytest.fixture
def cors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", f"{ORIGIN},https://ops.bank.example")
    monkeypatch.setenv("CORS_ALLOW_HEADERS", "Idempotency-Key")
    monkeypatch.setenv("CORS_EXPOSE_HEADERS", "X-Amzn-RequestId,Retry-After")
    monkeypatch.setenv("CORS_MAX_AGE_SECONDS", "600")


@pytest.mark.usefixtures("cors")
def test_answers_errors_included_carry_cors_headers_for_a_listed_origin_only() -> None:
    handler = endpoints()
    found = handler(proxy_event("POST", "/api/v1/echo", headers={"Origin": ORIGIN}))
    missing = handler(proxy_event("GET", "/api/v1/nowhere", headers={"Origin": ORIGIN}))
    foreign = handler(proxy_event("POST", "/api/v1/echo", headers={"Origin": "https://evil.example"}))

    for result in (found, missing):
        assert result["headers"]["Access-Control-Allow-Origin"] == ORIGIN
        assert result["headers"]["Access-Control-Expose-Headers"] == "X-Amzn-RequestId,Retry-After"
        assert result["headers"]["Vary"] == "Origin"
    assert missing["statusCode"] == 404
    assert "Access-Control-Allow-Origin" not in foreign["headers"]


@pytest.mark.usefixtures("cors")
def test_a_preflight_of_a_served_path_is_answered_with_its_methods() -> None:
    asked = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}

    result = endpoints()(proxy_event("OPTIONS", "/api/v1/echo", headers=asked))

    assert result["statusCode"] == 204
    headers = result["headers"]
    assert headers["Access-Control-Allow-Methods"] == "OPTIONS,POST,PUT"
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Idempotency-Key" in headers["Access-Control-Allow-Headers"].split(",")
    assert "X-Api-Key" in headers["Access-Control-Allow-Headers"].split(",")
    assert headers["Access-Control-Max-Age"] == "600"


@pytest.mark.usefixtures("cors")
def test_an_endpoint_with_its_own_cors_rules_gets_none_of_the_apis() -> None:
    # The proxy answers browsers by each gateway's settings, preflights included.
    result = endpoints()(proxy_event("OPTIONS", "/gw/orders", headers={"Origin": ORIGIN}))
    assert result["statusCode"] == 200  # the endpoint itself answered
    assert "Access-Control-Allow-Origin" not in result["headers"]
