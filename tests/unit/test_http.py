"""gateway_core.http.build_resolver: every failure leaves as application/problem+json."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel, Field

from gateway_core.errors import Conflict, NotFound, TooManyRequests
from gateway_core.http import build_resolver

PROBLEM = "application/problem+json"


def proxy_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    request_id: str = "req-123",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A minimal API Gateway REST (payload 1.0) proxy event."""
    all_headers = {"Accept": "application/json", **(headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourcePath": path,
            "stage": "prod",
            "requestId": request_id,
            "path": f"/prod{path}",
            "httpMethod": method,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def header(response: dict[str, Any], name: str) -> str | None:
    """A response header, whether powertools put it in headers or multiValueHeaders."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return str(values[-1])
    return None


class Payment(BaseModel):
    reference: str = Field(min_length=3)
    amount_cents: int = Field(gt=0)


@pytest.fixture
def log_stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def app(log_stream: io.StringIO) -> APIGatewayRestResolver:
    # powertools shares one handler per service name: a fresh name gives this test its own stream
    resolver = build_resolver(Logger(service=f"http-test-{uuid.uuid4().hex}", stream=log_stream))

    @resolver.get("/conflict")
    def conflict() -> dict[str, Any]:
        raise Conflict("Route /x already exists.", extensions={"existing_id": "r-1"})

    @resolver.get("/missing")
    def missing() -> dict[str, Any]:
        raise NotFound("No client c-404.", code="client_not_found")

    @resolver.get("/throttled")
    def throttled() -> dict[str, Any]:
        raise TooManyRequests("Slow down.", headers={"Retry-After": "7"})

    @resolver.get("/boom")
    def boom() -> dict[str, Any]:
        raise ValueError("secret connection string postgres://u:p@db")

    @resolver.post("/payments")
    def create_payment(payment: Payment) -> dict[str, Any]:
        return {"reference": payment.reference, "amount_cents": payment.amount_cents}

    return resolver


def call(app: APIGatewayRestResolver, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    response = app.resolve(event, None)  # type: ignore[arg-type]
    return response, json.loads(response["body"])


def test_given_a_route_raising_conflict_when_called_then_409_problem_with_request_id_and_instance(
    app: APIGatewayRestResolver,
) -> None:
    # When
    response, body = call(app, proxy_event("GET", "/conflict", request_id="req-conflict"))

    # Then
    assert response["statusCode"] == 409
    assert header(response, "Content-Type") == PROBLEM
    assert body == {
        "type": "urn:gateway:problem:conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "Route /x already exists.",
        "code": "conflict",
        "request_id": "req-conflict",
        "instance": "/conflict",
        "existing_id": "r-1",
    }


def test_given_a_route_raising_not_found_with_a_code_when_called_then_404_with_that_code(
    app: APIGatewayRestResolver,
) -> None:
    response, body = call(app, proxy_event("GET", "/missing", request_id="req-nf"))

    assert response["statusCode"] == 404
    assert header(response, "Content-Type") == PROBLEM
    assert body["code"] == "client_not_found"
    assert body["type"] == "urn:gateway:problem:client_not_found"
    assert body["title"] == "Not Found"
    assert body["request_id"] == "req-nf"


def test_given_an_error_with_headers_when_called_then_the_headers_are_sent(app: APIGatewayRestResolver) -> None:
    response, body = call(app, proxy_event("GET", "/throttled"))

    assert response["statusCode"] == 429
    assert header(response, "Retry-After") == "7"
    assert body["code"] == "rate_limited"


def test_given_an_unexpected_exception_when_called_then_500_without_internals_and_it_is_logged(
    app: APIGatewayRestResolver, log_stream: io.StringIO
) -> None:
    # When
    response, body = call(app, proxy_event("GET", "/boom", request_id="req-500"))

    # Then the caller sees a generic problem with the request id
    assert response["statusCode"] == 500
    assert header(response, "Content-Type") == PROBLEM
    assert body["code"] == "internal_error"
    assert body["request_id"] == "req-500"
    assert "postgres" not in response["body"]
    assert "ValueError" not in response["body"]
    # and the log has the error type and the stack for the operator
    records = [json.loads(line) for line in log_stream.getvalue().splitlines() if line.strip()]
    errors = [r for r in records if r.get("message") == "unhandled error"]
    assert len(errors) == 1
    assert errors[0]["error_type"] == "ValueError"
    assert "ValueError" in errors[0]["exception"]


def test_given_an_unknown_route_when_called_then_404_route_not_found(app: APIGatewayRestResolver) -> None:
    response, body = call(app, proxy_event("GET", "/nowhere", request_id="req-404"))

    assert response["statusCode"] == 404
    assert header(response, "Content-Type") == PROBLEM
    assert body["code"] == "route_not_found"
    assert body["type"] == "urn:gateway:problem:route_not_found"
    assert body["request_id"] == "req-404"
    assert body["instance"] == "/nowhere"


def test_given_a_known_path_with_the_wrong_method_when_called_then_405_naming_the_served_ones(
    app: APIGatewayRestResolver,
) -> None:
    response, body = call(app, proxy_event("DELETE", "/conflict"))

    assert response["statusCode"] == 405
    assert header(response, "Allow") == "GET"
    assert header(response, "Content-Type") == PROBLEM
    assert body["code"] == "method_not_allowed"
    assert body["type"] == "urn:gateway:problem:method_not_allowed"


def test_given_a_valid_body_when_posted_then_the_route_answers_200(app: APIGatewayRestResolver) -> None:
    response, body = call(
        app,
        proxy_event(
            "POST",
            "/payments",
            body=json.dumps({"reference": "INV-1", "amount_cents": 1500}),
            headers={"Content-Type": "application/json"},
        ),
    )

    assert response["statusCode"] == 200
    assert body == {"reference": "INV-1", "amount_cents": 1500}


def test_given_a_body_that_breaks_the_model_when_posted_then_422_validation_failed_with_errors(
    app: APIGatewayRestResolver,
) -> None:
    # Given a reference that is too short and a negative amount
    event = proxy_event(
        "POST",
        "/payments",
        body=json.dumps({"reference": "x", "amount_cents": -5}),
        headers={"Content-Type": "application/json"},
        request_id="req-422",
    )

    # When
    response, body = call(app, event)

    # Then
    assert response["statusCode"] == 422
    assert header(response, "Content-Type") == PROBLEM
    assert body["code"] == "validation_failed"
    assert body["type"] == "urn:gateway:problem:validation_failed"
    assert body["title"] == "Unprocessable Content"
    assert body["request_id"] == "req-422"
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {tuple(e["loc"]) for e in errors} >= {
        ("body", "reference"),
        ("body", "amount_cents"),
    }
    assert all(set(e) == {"loc", "msg", "type"} and e["msg"] for e in errors)


def test_given_a_body_that_is_not_json_when_posted_then_400_invalid_body(app: APIGatewayRestResolver) -> None:
    response, body = call(
        app,
        proxy_event("POST", "/payments", body="{not json", headers={"Content-Type": "application/json"}),
    )

    assert response["statusCode"] == 400
    assert body["code"] == "invalid_body"
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["body", "1"], "json_invalid")]
