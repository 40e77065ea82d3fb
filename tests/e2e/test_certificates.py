"""Client certificate registration through the local runtime, with certificates made here, and
what a revocation does to the tokens bound to a certificate (over the runtime's mTLS port)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.certificates import make_certificate
from tests.e2e.conftest import RunningGateway
from tests.e2e.test_credentials_journey import Certificate
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


def test_revoking_a_certificate_ends_every_token_bound_to_it_even_cached_ones(gateway: RunningGateway) -> None:
    # Given a client with two certificates (it is rolling over from A to B)
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        client = http.post(
            "/api/v1/clients/register",
            json={
                "name": "Bound Rollover",
                "client_type": "integration",
                "contact_email": "pki@rollover.example",
                "allowed_scopes": ["payments:write"],
            },
        ).json()
    old, new = Certificate(gateway, "rollover-a"), Certificate(gateway, "rollover-b")
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        fingerprints = [
            http.post(f"/api/v1/clients/{client['client_id']}/certificates", json={"pem": c.pem}).json()["fingerprint"]
            for c in (old, new)
        ]
    form = {"grant_type": "client_credentials"}
    secret = (client["client_id"], client["client_secret"])
    with old.https(gateway) as https:
        # Two tokens bound to A: by secret over mTLS, and by the certificate alone (tls_client_auth)
        by_secret = https.post("/oauth2/token", data=form, auth=secret).json()["access_token"]
        by_certificate = https.post("/oauth2/token", data={**form, "client_id": client["client_id"]}).json()[
            "access_token"
        ]
    with new.https(gateway) as https:
        on_new = https.post("/oauth2/token", data=form, auth=secret).json()["access_token"]

    def whoami(certificate: Certificate, token: str) -> Any:
        with certificate.https(gateway) as https:
            return https.get("/api/v1/whoami/token", headers={"Authorization": f"Bearer {token}"})

    # Each works, and API Gateway now holds each Allow in its authorizer cache
    assert [whoami(old, t).status_code for t in (by_secret, by_certificate)] == [200, 200]
    assert whoami(new, on_new).status_code == 200

    # When certificate A is revoked
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        revoked = http.delete(f"/api/v1/clients/{client['client_id']}/certificates/{fingerprints[0]}")
    assert revoked.status_code == 200, revoked.text

    # Then both of A's tokens are refused on the very next request (the cached Allows were flushed
    # and the authorizer refuses them), and the token bound to B keeps working
    for token in (by_secret, by_certificate):
        refused = whoami(old, token)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert whoami(new, on_new).status_code == 200
    # And A can get no new token
    with old.https(gateway) as https:
        assert https.post("/oauth2/token", data=form, auth=secret).status_code == 401
