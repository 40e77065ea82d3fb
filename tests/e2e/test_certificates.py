"""Client certificate registration through the local runtime, with certificates made here."""

from __future__ import annotations

import pytest

from tests.certificates import make_certificate
from tests.e2e.conftest import RunningGateway
from tests.e2e.test_product import ADMIN_KEY


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


def test_register_list_and_revoke_a_client_certificate(gateway: RunningGateway) -> None:
    pem, fingerprint = make_certificate("payments.testbank.example")
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        client = http.post(
            "/api/v1/clients/register",
            json={
                "name": "Cert Bank",
                "client_type": "integration",
                "contact_email": "pki@bank.example",
                "allowed_scopes": ["payments:write"],
            },
        ).json()["client_id"]
        created = http.post(f"/api/v1/clients/{client}/certificates", json={"pem": pem})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["fingerprint"] == fingerprint
        assert body["subject"] == "O=Test Bank,CN=payments.testbank.example"
        assert body["status"] == "active"
        duplicate = http.post(f"/api/v1/clients/{client}/certificates", json={"pem": pem})
        assert (duplicate.status_code, duplicate.json()["code"]) == (409, "duplicate_certificate")
        listed = http.get(f"/api/v1/clients/{client}/certificates").json()["items"]
        assert [c["fingerprint"] for c in listed] == [fingerprint]
        revoked = http.delete(f"/api/v1/clients/{client}/certificates/{fingerprint}")
        assert revoked.json()["status"] == "revoked"
        audit = http.get("/api/v1/audit/events", params={"target": f"certificate/{fingerprint}"}).json()["items"]
    assert [e["action"] for e in audit] == ["certificate.revoke", "certificate.register"]


def test_bad_or_expired_certificates_are_refused_and_change_nothing(gateway: RunningGateway) -> None:
    expired, _ = make_certificate("old.example", days=1, start_offset_days=-10)
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        client = http.post(
            "/api/v1/clients/register",
            json={
                "name": "Cert Refusals",
                "client_type": "integration",
                "contact_email": "pki@x.example",
                "allowed_scopes": ["data:read"],
            },
        ).json()["client_id"]
        not_pem = http.post(f"/api/v1/clients/{client}/certificates", json={"pem": "hello"})
        broken = http.post(
            f"/api/v1/clients/{client}/certificates",
            json={"pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
        )
        old = http.post(f"/api/v1/clients/{client}/certificates", json={"pem": expired})
        missing = http.post("/api/v1/clients/cl_nobody/certificates", json={"pem": expired})
        listed = http.get(f"/api/v1/clients/{client}/certificates").json()["items"]
    assert (not_pem.status_code, not_pem.json()["code"]) == (422, "invalid_certificate")
    assert (broken.status_code, broken.json()["code"]) == (422, "invalid_certificate")
    assert (old.status_code, old.json()["code"]) == (422, "certificate_expired")
    assert (missing.status_code, missing.json()["code"]) == (404, "client_not_found")
    assert listed == []
