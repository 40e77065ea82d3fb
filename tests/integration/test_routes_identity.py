"""GET /api/v1/whoami and the management function's own error answers, through its entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gateway_core.cert_binding import pem_x5t_s256
from tests.certificates import make_certificate
from tests.integration.helpers import FakeLambdaContext, proxy_event, response_header

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
PROBLEM = "application/problem+json"


@pytest.fixture
def management_handler(aws: None) -> Handler:
    from functions.routes.management_handler import lambda_handler

    return lambda_handler


def test_given_an_authorizer_context_when_whoami_then_200_with_the_identity_and_scopes_as_a_list(
    management_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    # Given the context our authorizer hands API Gateway (flat strings, scopes space-separated)
    event = proxy_event(
        "GET",
        "/api/v1/whoami",
        authorizer={
            "client_id": "c1",
            "scopes": "admin read",
            "tier": "free",
            "credential_kind": "api_key",
            "credential_id": "k-1",
            "principalId": "c1",
        },
    )

    # When
    response = management_handler(event, lambda_context)

    # Then
    assert response["statusCode"] == 200
    assert response_header(response, "Content-Type") == "application/json"
    assert json.loads(response["body"]) == {
        "client_id": "c1",
        "credential_kind": "api_key",
        "scopes": ["admin", "read"],
        "tier": "free",
        "certificate_bound": False,
    }


def test_given_an_identity_without_scopes_when_whoami_then_scopes_is_an_empty_list(
    management_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    event = proxy_event("GET", "/api/v1/whoami", authorizer={"client_id": "c2", "scopes": "", "tier": "gold"})

    response = management_handler(event, lambda_context)

    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert body["scopes"] == []
    assert body["tier"] == "gold"


@pytest.mark.parametrize(
    "authorizer",
    [None, {}, {"principalId": "anonymous"}, {"client_id": ""}],
    ids=["no-authorizer", "empty", "principal-only", "blank-client"],
)
def test_given_no_authenticated_identity_when_whoami_then_401_problem_no_identity(
    management_handler: Handler, lambda_context: FakeLambdaContext, authorizer: dict[str, Any] | None
) -> None:
    # Given
    event = proxy_event("GET", "/api/v1/whoami", authorizer=authorizer, request_id="req-who")

    # When
    response = management_handler(event, lambda_context)

    # Then
    body = json.loads(response["body"])
    assert response["statusCode"] == 401
    assert response_header(response, "Content-Type") == PROBLEM
    assert body["code"] == "no_identity"
    assert body["type"] == "urn:gateway:problem:no_identity"
    assert body["title"] == "Unauthorized"
    assert body["request_id"] == "req-who"
    assert body["instance"] == "/api/v1/whoami"


def test_given_an_unknown_path_when_called_then_404_problem_route_not_found(
    management_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    response = management_handler(proxy_event("GET", "/api/v1/nope", request_id="req-nope"), lambda_context)

    body = json.loads(response["body"])
    assert response["statusCode"] == 404
    assert response_header(response, "Content-Type") == PROBLEM
    assert body["code"] == "route_not_found"
    assert body["request_id"] == "req-nope"


def test_given_the_docs_path_when_the_openapi_document_is_requested_then_it_lists_both_routes(
    management_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    event = proxy_event("GET", "/api/v1/docs")
    event["queryStringParameters"] = {"format": "json"}
    event["multiValueQueryStringParameters"] = {"format": ["json"]}

    response = management_handler(event, lambda_context)

    assert response["statusCode"] == 200
    document = json.loads(response["body"])
    assert {"/api/v1/gateway/health", "/api/v1/whoami"} <= set(document["paths"])


def _bound_token_event(presented_pem: str | None, bound_pem: str) -> dict[str, Any]:
    """A cached Allow for a certificate-bound token (the authorizer ran once, with the right
    certificate) reused on a request that presents `presented_pem`."""
    event = proxy_event(
        "GET",
        "/api/v1/whoami/token",
        authorizer={
            "client_id": "cl_pay",
            "scopes": "payments:write",
            "tier": "enterprise",
            "credential_kind": "jwt",
            "credential_id": "jti-1",
            "cert_thumbprint": pem_x5t_s256(bound_pem),
        },
        request_id="req-bound",
    )
    if presented_pem is not None:
        event["requestContext"]["identity"]["clientCert"] = {"clientCertPem": presented_pem}
    return event


def test_given_a_bound_token_when_the_same_certificate_is_presented_then_the_identity_says_bound(
    management_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    pem, _ = make_certificate("payments.bank.example")

    response = management_handler(_bound_token_event(pem, pem), lambda_context)

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["certificate_bound"] is True


@pytest.mark.parametrize(
    ("presented", "code"),
    [("none", "certificate_required"), ("other", "certificate_mismatch")],
)
def test_given_a_bound_token_when_reused_without_its_certificate_then_401(
    management_handler: Handler, lambda_context: FakeLambdaContext, presented: str, code: str
) -> None:
    # Given a token bound to one certificate, and API Gateway's cached Allow for it
    pem, _ = make_certificate("payments.bank.example")
    other, _ = make_certificate("thief.example")

    # When the request carries no certificate, or another one
    response = management_handler(_bound_token_event(None if presented == "none" else other, pem), lambda_context)

    # Then the function refuses it: the cached Allow does not depend on the certificate
    assert response["statusCode"] == 401
    assert response_header(response, "Content-Type") == PROBLEM
    assert json.loads(response["body"])["code"] == code
