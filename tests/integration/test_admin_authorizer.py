"""The admin API's authorizer on moto, followed by the management function with the context it
returns: an API key or an OAuth2 client-credentials token with the `admin` scope administers; a
narrowed or suspended client's token is refused on its next request; a client with registered
certificates administers only with tokens bound to one of them (RFC 8705)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest

from functions.authorizer.core import Denied
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.logic import clients
from gateway_core.cert_binding import pem_x5t_s256
from gateway_core.clock import utc_now
from gateway_core.credentials import api_key_item, generate_api_key, hash_api_key
from tests.integration.helpers import REGION, FakeLambdaContext, proxy_event
from tests.integration.test_jwt_authorizer import (
    ADMIN,
    TABLE,
    Kms,
    _count_calls,
    kms,  # noqa: F401  (the fixture, with the table and the signing keys)
    our_token,
    put_client,
    register_certificate,
    revoke_certificate,
)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/v1/audit/events"
ADMIN_SCOPES = ["admin", "banking:read"]


@pytest.fixture
def authorizer(kms: Kms) -> ModuleType:  # noqa: F811
    import functions.authorizer.admin_handler as module

    return importlib.reload(module)


@pytest.fixture
def management() -> Handler:
    from functions.routes.management_handler import lambda_handler

    return lambda_handler


def store_key(scopes: list[str], client_id: str = "cl_ops") -> str:
    key = generate_api_key("test")
    item = api_key_item(
        key_hash=hash_api_key(key),
        key_id="k-ops",
        client_id=client_id,
        scopes=scopes,
        tier="free",
        name="operator",
        created_at="2026-11-01T00:00:00Z",
        last_four=key[-4:],
        prefix="gk_test_",
    )
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=TABLE, Item=item)
    return key


def request(headers: dict[str, str], cert_pem: str | None = None) -> dict[str, Any]:
    identity: dict[str, Any] = {"sourceIp": "203.0.113.7"}
    if cert_pem is not None:
        identity["clientCert"] = {"clientCertPem": cert_pem}
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers,
        "requestContext": {"identity": identity},
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(authorizer: ModuleType, event: dict[str, Any]) -> str:
    with pytest.raises(Denied) as raised:
        authorizer.lambda_handler(event, None)
    return raised.value.reason


def denied(authorizer: ModuleType, event: dict[str, Any]) -> str:
    result = authorizer.lambda_handler(event, None)
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    return str(result["context"]["reason"])


def call_admin_api(
    authorizer: ModuleType, management: Handler, headers: dict[str, str], cert_pem: str | None = None
) -> tuple[int, dict[str, Any]]:
    """The authorizer's Allow, then GET /api/v1/audit/events with its context, as API Gateway does."""
    decision = authorizer.lambda_handler(request(headers, cert_pem), None)
    assert decision["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    event = proxy_event(
        "GET", "/api/v1/audit/events", authorizer={**decision["context"], "principalId": decision["principalId"]}
    )
    if cert_pem is not None:
        event["requestContext"]["identity"]["clientCert"] = {"clientCertPem": cert_pem}
    response = management(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def client_store() -> DynamoClientStore:
    return DynamoClientStore(boto3.client("dynamodb", region_name=REGION), TABLE)


def test_given_an_admin_token_or_an_admin_key_when_calling_the_admin_api_then_200(
    authorizer: ModuleType,
    management: Handler,
    kms: Kms,  # noqa: F811
) -> None:
    put_client(allowed_scopes=ADMIN_SCOPES)
    key = store_key(["admin"])

    by_token = call_admin_api(authorizer, management, bearer(our_token(kms.current, scopes=ADMIN_SCOPES)))
    by_key = call_admin_api(authorizer, management, {"x-api-key": key})

    assert by_token[0] == 200, by_token
    assert by_key[0] == 200, by_key


def test_given_tokens_without_admin_when_calling_the_admin_api_then_403_insufficient_scope(
    authorizer: ModuleType,
    management: Handler,
    kms: Kms,  # noqa: F811
) -> None:
    # Given a client allowed admin whose token asked only for banking:read, a client never allowed
    # admin, and a token claiming admin for that client (narrowed to what it may hold)
    put_client(allowed_scopes=ADMIN_SCOPES)
    put_client(client_id="cl_other", name="other", allowed_scopes=["banking:read"])
    tokens = [
        our_token(kms.current, scopes=["banking:read"]),
        our_token(kms.current, scopes=["banking:read"], sub="cl_other"),
        our_token(kms.current, scopes=ADMIN_SCOPES, sub="cl_other"),
    ]

    # Then each reaches the function, which refuses the operation
    for token in tokens:
        status, problem = call_admin_api(authorizer, management, bearer(token))
        assert (status, problem["code"]) == (403, "insufficient_scope")


def test_given_an_admin_token_when_its_client_loses_admin_or_is_suspended_then_the_next_request_is_refused(
    authorizer: ModuleType,
    management: Handler,
    kms: Kms,  # noqa: F811
) -> None:
    put_client(allowed_scopes=ADMIN_SCOPES)
    token = our_token(kms.current, scopes=ADMIN_SCOPES)
    assert call_admin_api(authorizer, management, bearer(token))[0] == 200

    # When admin is removed from the client, the same token is narrowed on its next request
    clients.update(client_store(), "cl_pay", {"allowed_scopes": ["banking:read"]}, ADMIN, utc_now(), None)
    status, problem = call_admin_api(authorizer, management, bearer(token))
    assert (status, problem["code"]) == (403, "insufficient_scope")

    # And when admin is given back but the client is suspended, the authorizer denies it
    clients.update(client_store(), "cl_pay", {"allowed_scopes": ADMIN_SCOPES}, ADMIN, utc_now(), None)
    assert call_admin_api(authorizer, management, bearer(token))[0] == 200
    clients.set_status(client_store(), "cl_pay", "suspended", ADMIN, utc_now())
    assert denied(authorizer, request(bearer(token))) == "client_not_active"


def test_given_no_or_bad_credentials_when_authorizing_then_401_with_the_reason(
    authorizer: ModuleType,
    kms: Kms,  # noqa: F811
) -> None:
    put_client(allowed_scopes=ADMIN_SCOPES)

    assert refused(authorizer, request({})) == "missing_credential"
    assert refused(authorizer, request({"x-api-key": ""})) == "missing_credential"
    assert refused(authorizer, request({"x-api-key": "gk_test_unknown"})) != ""
    assert refused(authorizer, request(bearer("not.a.token"))) != ""
    assert refused(authorizer, request({"Authorization": "Basic dXNlcjpwYXNz"})) != ""
    assert refused(authorizer, request(bearer(our_token(kms.current, scopes=ADMIN_SCOPES, aud="other")))) == (
        "wrong_audience"
    )


def test_given_a_key_and_a_token_when_authorizing_then_the_key_decides(
    authorizer: ModuleType,
    kms: Kms,  # noqa: F811
) -> None:
    put_client(allowed_scopes=ADMIN_SCOPES)
    key = store_key(["admin"])

    decided = authorizer.lambda_handler(
        request({"x-api-key": key, **bearer(our_token(kms.current, scopes=ADMIN_SCOPES))}), None
    )
    assert decided["context"]["credential_kind"] == "api_key"
    # and a bad key is refused even beside a good token, never passed over for it
    assert refused(authorizer, request({"x-api-key": "gk_test_unknown", **bearer(our_token(kms.current))})) != ""


def test_given_a_client_with_certificates_when_its_admin_token_is_unbound_then_denied_and_bound_ones_work(
    authorizer: ModuleType,
    management: Handler,
    kms: Kms,  # noqa: F811
) -> None:
    # Given a client with admin that registered a certificate
    put_client(allowed_scopes=ADMIN_SCOPES)
    pem, fingerprint = register_certificate("ops.bank.example")
    unbound = our_token(kms.current, scopes=ADMIN_SCOPES)

    # Then its unbound admin tokens are denied, over mTLS or not
    assert denied(authorizer, request(bearer(unbound))) == "certificate_binding_required"
    assert denied(authorizer, request(bearer(unbound), cert_pem=pem)) == "certificate_binding_required"
    # But its unbound tokens without admin are not (they are refused by scope in the function)
    status, problem = call_admin_api(authorizer, management, bearer(our_token(kms.current, scopes=["banking:read"])))
    assert (status, problem["code"]) == (403, "insufficient_scope")
    # And a token bound to the certificate administers when presented with it, and only then
    bound = our_token(kms.current, scopes=ADMIN_SCOPES, cnf={"x5t#S256": pem_x5t_s256(pem)})
    assert call_admin_api(authorizer, management, bearer(bound), cert_pem=pem)[0] == 200
    assert refused(authorizer, request(bearer(bound))) == "certificate_required"

    # When its only certificate is revoked, the bound token ends and an unbound one is accepted again
    revoke_certificate(fingerprint)
    assert refused(authorizer, request(bearer(bound), cert_pem=pem)) == "certificate_revoked"
    assert call_admin_api(authorizer, management, bearer(unbound))[0] == 200


def test_given_another_clients_certificates_when_an_unbound_admin_token_arrives_then_it_is_not_affected(
    authorizer: ModuleType,
    management: Handler,
    kms: Kms,  # noqa: F811
) -> None:
    put_client(allowed_scopes=ADMIN_SCOPES)
    put_client(client_id="cl_other", name="other", allowed_scopes=["banking:read"])
    register_certificate("other.bank.example", client_id="cl_other")

    assert call_admin_api(authorizer, management, bearer(our_token(kms.current, scopes=ADMIN_SCOPES)))[0] == 200


def test_what_each_admin_decision_reads_since_none_is_cached(
    authorizer: ModuleType,
    kms: Kms,  # noqa: F811
) -> None:
    # Given a warm container (our public keys fetched) and each kind of admin credential
    put_client(allowed_scopes=ADMIN_SCOPES)
    put_client(client_id="cl_bound", name="bound", allowed_scopes=ADMIN_SCOPES)
    pem, _ = register_certificate("bound.bank.example", client_id="cl_bound")
    key = store_key(["admin"])
    unbound = request(bearer(our_token(kms.current, scopes=ADMIN_SCOPES)))
    bound = request(
        bearer(our_token(kms.current, scopes=ADMIN_SCOPES, sub="cl_bound", cnf={"x5t#S256": pem_x5t_s256(pem)})),
        cert_pem=pem,
    )
    not_admin = request(bearer(our_token(kms.current, scopes=["banking:read"])))
    for event in (unbound, bound, not_admin, request({"x-api-key": key})):
        authorizer.lambda_handler(event, None)

    def reads(event: dict[str, Any]) -> list[str]:
        return _count_calls(lambda: authorizer.lambda_handler(event, None), 1)

    # Then every request pays only these reads: the denylist, the credential's items, and for an
    # unbound admin token the count of its client's certificates
    # (this key was stored without a copy of its client's scopes, so the client is read too)
    assert reads(request({"x-api-key": key})) == ["GetItem", "GetItem", "GetItem"]
    assert reads(unbound) == ["GetItem", "GetItem", "Query"]
    assert reads(bound) == ["GetItem", "GetItem", "GetItem"]
    assert reads(not_admin) == ["GetItem", "GetItem"]
