"""The mTLS authorizer's entry point on moto, with certificates registered the way the admin API
does it (functions/routes/logic/certificates.py) and presented as API Gateway fills
`requestContext.identity.clientCert`."""

from __future__ import annotations

import importlib
from dataclasses import replace
from types import ModuleType
from typing import Any

import boto3
import pytest

from functions.authorizer.core import Denied
from functions.routes.dal.certificates_store import DynamoCertificateStore
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.logic import certificates
from gateway_core.audit import Actor
from gateway_core.cert_binding import pem_x5t_s256
from gateway_core.clock import utc_now
from tests.certificates import make_certificate
from tests.integration.conftest import create_data_table
from tests.integration.helpers import REGION
from tests.unit.factories import make_client

TABLE = "gateway-mtls-authorizer"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/v1/whoami/certificate"
ADMIN = Actor("admin", "api_key", "k0", "req-0")


@pytest.fixture
def handler(aws: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    create_data_table(TABLE)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    import functions.authorizer.mtls_handler as module

    return importlib.reload(module)  # a fresh container: empty client-state cache


def stores() -> tuple[DynamoClientStore, DynamoCertificateStore]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    return DynamoClientStore(dynamodb, TABLE), DynamoCertificateStore(dynamodb, TABLE)


def register(pem: str, **client: Any) -> str:
    """An active client with the certificate registered, then the client changed as asked
    (registration itself needs an active client)."""
    clients, certs = stores()
    values: dict[str, Any] = {
        "client_id": "cl_bank",
        "name": "bank",
        "allowed_scopes": ["payments:write"],
        "tier": "enterprise",
    }
    active = make_client(**values)
    clients.create(active, ADMIN)
    fingerprint = certificates.register(certs, clients, "cl_bank", pem, ADMIN, utc_now()).fingerprint
    if client:
        clients.replace(active, replace(active, version=active.version + 1, **client), "client.update", ADMIN)
    return fingerprint


def event(pem: str | None, source_ip: str = "198.51.100.4") -> dict[str, Any]:
    identity: dict[str, Any] = {"sourceIp": source_ip}
    if pem is not None:
        identity["clientCert"] = {"clientCertPem": pem, "subjectDN": "CN=x", "serialNumber": "01"}
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": {}, "requestContext": {"identity": identity}}


def refused(handler: ModuleType, request: dict[str, Any]) -> str:
    with pytest.raises(Denied) as raised:
        handler.lambda_handler(request, None)
    assert str(raised.value) == "Unauthorized"
    return raised.value.reason


def test_given_a_registered_certificate_when_presented_then_allow_as_its_client(handler: ModuleType) -> None:
    pem, fingerprint = make_certificate("payments.bank.example")
    register(pem)

    result = handler.lambda_handler(event(pem), None)

    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["context"] == {
        "client_id": "cl_bank",
        "credential_kind": "certificate",
        "credential_id": fingerprint,
        "scopes": "payments:write",
        "tier": "enterprise",
        "cert_thumbprint": pem_x5t_s256(pem),
        "rate_limits": "",
        "client_scopes": "payments:write",
        "not_after": result["context"][
            "not_after"
        ],  # the certificate's end (tests/integration/test_grants_and_time.py)
        "key_lineage": "",
    }


def test_given_no_unknown_or_unreadable_certificate_when_authorized_then_401(handler: ModuleType) -> None:
    stranger, _ = make_certificate("stranger.example")

    assert refused(handler, event(None)) == "missing_client_certificate"
    assert refused(handler, event(stranger)) == "unknown_certificate"
    garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    assert refused(handler, event(garbage)) == "unreadable_client_certificate"


def test_given_a_revoked_certificate_when_presented_again_then_the_next_request_is_refused(
    handler: ModuleType,
) -> None:
    # Given a certificate that was accepted a moment ago (not cached: one read per request)
    pem, fingerprint = make_certificate("payments.bank.example")
    register(pem)
    handler.lambda_handler(event(pem), None)

    # When an admin revokes it
    certificates.revoke(stores()[1], "cl_bank", fingerprint, ADMIN, utc_now())

    # Then
    assert refused(handler, event(pem)) == "certificate_revoked"


def test_given_a_certificate_past_its_validity_when_presented_then_401_certificate_expired(
    handler: ModuleType,
) -> None:
    pem, fingerprint = make_certificate("payments.bank.example")
    register(pem)
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=TABLE,
        Key={"PK": {"S": f"CERT#{fingerprint}"}, "SK": {"S": "CERT"}},
        UpdateExpression="SET not_after = :t",
        ExpressionAttributeValues={":t": {"S": "2020-01-01T00:00:00.000Z"}},
    )

    assert refused(handler, event(pem)) == "certificate_expired"


@pytest.mark.parametrize(
    ("client", "reason"),
    [({"status": "suspended"}, "client_not_active"), ({"ip_allowlist": ["10.0.0.0/8"]}, "ip_not_allowed")],
)
def test_given_a_client_that_may_not_call_when_its_certificate_is_presented_then_deny_with_the_reason(
    handler: ModuleType, client: dict[str, Any], reason: str
) -> None:
    pem, _ = make_certificate("payments.bank.example")
    register(pem, **client)

    result = handler.lambda_handler(event(pem), None)

    assert result["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert result["context"] == {"reason": reason}
