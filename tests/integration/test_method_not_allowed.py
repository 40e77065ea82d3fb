"""A method the management function does not serve on a path it serves: 405 with `Allow` naming the
methods it does serve, as a problem document; a path it does not serve stays 404. API Gateway sends
every method of the greedy admin resources (`{proxy+}`, ANY) here, so this is the 405 a caller
gets below /api/v1/clients/, /keys/, /issuers/, /routes/ and /gateways/ (the resources with
explicit methods answer from the template: tests/infra/test_method_not_allowed.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from gateway_core import http
from infra.constructs import api as api_construct
from tests.integration.helpers import ADMIN, FakeLambdaContext, proxy_event, response_header

PROBLEM = "application/problem+json"


def _call(method: str, path: str, *, body: str | None = None) -> dict[str, Any]:
    from functions.routes.management_handler import lambda_handler

    handler: Any = lambda_handler  # takes Lambda's context; the fake has its fields
    event = proxy_event(method, path, body=body, authorizer=ADMIN, request_id=f"req-{uuid.uuid4().hex[:8]}")
    response: dict[str, Any] = handler(event, FakeLambdaContext())
    return response


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/api/v1/clients/c-1", "GET, PUT, DELETE"),
        ("HEAD", "/api/v1/clients/c-1", "GET, PUT, DELETE"),
        ("OPTIONS", "/api/v1/clients/c-1", "GET, PUT, DELETE"),  # no CORS: no preflight served
        ("GET", "/api/v1/clients/c-1/suspend", "POST"),
        ("PUT", "/api/v1/gateway/issuers/i-1", "GET, PATCH, DELETE"),
        ("PATCH", "/api/v1/gateway/keys/k-1", "GET, PUT, DELETE"),
        ("DELETE", "/api/v1/gateways/g-1/versions", "GET"),
        ("POST", "/api/v1/gateways/g-1/secrets/db-password", "GET, PUT, DELETE"),
    ],
)
def test_a_method_a_served_path_does_not_take_is_a_405_naming_the_ones_it_does(
    aws: None, method: str, path: str, allow: str
) -> None:
    response = _call(method, path, body='{"any": "body"}')

    assert response["statusCode"] == 405, response.get("body")
    assert response_header(response, "Allow") == allow
    assert response_header(response, "Content-Type") == PROBLEM
    problem = json.loads(response["body"])
    assert problem["type"] == "urn:gateway:problem:method_not_allowed"
    assert problem["code"] == "method_not_allowed"
    assert problem["title"] == "Method Not Allowed"
    assert problem["status"] == 405
    assert problem["request_id"].startswith("req-")
    # the same words as the template's MOCK 405 on resources with explicit methods
    assert problem["detail"] == api_construct.method_not_allowed_detail(allow)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/clients/c-1/nowhere"),
        ("PATCH", "/api/v1/clients/c-1/nowhere"),
        ("DELETE", "/api/v1/gateways/g-1/versions/3/extra"),
    ],
)
def test_any_method_on_a_path_nothing_serves_stays_404(aws: None, method: str, path: str) -> None:
    response = _call(method, path)

    assert response["statusCode"] == 404
    assert response_header(response, "Allow") is None
    assert json.loads(response["body"])["code"] == "route_not_found"


def test_the_allow_header_lists_methods_in_the_templates_order() -> None:
    # The template's MOCK 405s and the function's must list a path's methods alike.
    assert http.METHOD_ORDER == api_construct.METHOD_ORDER
    assert api_construct.allow_header(["delete", "GET", "PUT"]) == "GET, PUT, DELETE"


_CONTEXT: Any = FakeLambdaContext()  # has the fields of Lambda's context


def _resolver(monkeypatch: pytest.MonkeyPatch, origins: str | None) -> APIGatewayRestResolver:
    if origins is None:
        monkeypatch.delenv("CORS_ALLOW_ORIGINS", raising=False)
    else:
        monkeypatch.setenv("CORS_ALLOW_ORIGINS", origins)
    resolver = http.build_resolver(Logger(service=f"method-test-{uuid.uuid4().hex}"))

    @resolver.get("/things/<thing_id>")
    def _get(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @resolver.delete("/things/<thing_id>")
    def _delete(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    return resolver


def test_with_cors_the_preflight_is_served_and_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = _resolver(monkeypatch, "https://app.bank.example")

    preflight = resolver.resolve(
        proxy_event("OPTIONS", "/things/1", headers={"Origin": "https://app.bank.example"}), _CONTEXT
    )
    refused = resolver.resolve(proxy_event("PUT", "/things/1"), _CONTEXT)

    assert preflight["statusCode"] == 204
    assert refused["statusCode"] == 405
    assert response_header(refused, "Allow") == "GET, DELETE, OPTIONS"


def test_without_cors_options_is_refused_like_any_other_method(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = _resolver(monkeypatch, None)

    response = resolver.resolve(proxy_event("OPTIONS", "/things/1"), _CONTEXT)

    assert response["statusCode"] == 405
    assert response_header(response, "Allow") == "GET, DELETE"
