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


# -- the admin API with OAuth2 client credentials (issue 12) -----------------------------------


def _register_admin_client(gateway: RunningGateway, name: str) -> dict[str, Any]:
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        response = http.post(
            "/api/v1/clients/register",
            json={
                "name": name,
                "client_type": "internal",
                "contact_email": "platform@ops.example",
                "allowed_scopes": ["admin", "data:read"],
            },
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _change_client(gateway: RunningGateway, client_id: str, change: dict[str, Any]) -> None:
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        etag = http.get(f"/api/v1/clients/{client_id}").headers.get("etag")
        changed = http.put(f"/api/v1/clients/{client_id}", json=change, headers={"If-Match": etag} if etag else {})
    assert changed.status_code == 200, changed.text


def test_an_admin_token_by_client_credentials_administers_until_the_client_is_narrowed_or_suspended(
    gateway: RunningGateway,
) -> None:
    # Given a platform team's client allowed admin, and tokens with and without the admin scope
    client = _register_admin_client(gateway, "Platform Automation")
    secret = (client["client_id"], client["client_secret"])
    with gateway.client() as http:
        issued = http.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": "admin"}, auth=secret)
        reader = http.post(
            "/oauth2/token", data={"grant_type": "client_credentials", "scope": "data:read"}, auth=secret
        )
    assert issued.status_code == 200, issued.text
    admin = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    not_admin = {"Authorization": f"Bearer {reader.json()['access_token']}"}

    def list_clients(headers: dict[str, str]) -> Any:
        with gateway.client(headers=headers) as http:
            return http.get("/api/v1/clients")

    # Then the admin token administers, the other one is refused by scope, and the API key still works
    assert list_clients(admin).status_code == 200, list_clients(admin).text
    refused = list_clients(not_admin)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    assert list_clients({"x-api-key": ADMIN_KEY}).status_code == 200
    unauthenticated = list_clients({})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["content-type"] == "application/problem+json"
    assert "Bearer" in unauthenticated.headers["www-authenticate"]

    # When admin is removed from the client, its admin token is refused on the next request
    _change_client(gateway, client["client_id"], {"allowed_scopes": ["data:read"]})
    narrowed = list_clients(admin)
    assert (narrowed.status_code, narrowed.json()["code"]) == (403, "insufficient_scope")

    # And when admin is given back and the client suspended, the token is denied with the reason
    _change_client(gateway, client["client_id"], {"allowed_scopes": ["admin", "data:read"]})
    assert list_clients(admin).status_code == 200
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        assert http.post(f"/api/v1/clients/{client['client_id']}/suspend").status_code == 200
    suspended = list_clients(admin)
    assert (suspended.status_code, suspended.json()["reason"]) == (403, "client_not_active")


def test_a_client_with_certificates_administers_only_with_a_token_bound_to_one(gateway: RunningGateway) -> None:
    # Given a client allowed admin that registered a certificate
    client = _register_admin_client(gateway, "Bound Platform Automation")
    certificate = Certificate(gateway, "platform-automation")
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        registered = http.post(f"/api/v1/clients/{client['client_id']}/certificates", json={"pem": certificate.pem})
    assert registered.status_code == 201, registered.text
    form = {"grant_type": "client_credentials", "scope": "admin"}
    secret = (client["client_id"], client["client_secret"])

    # When it asks for an admin token without its certificate, the token is issued unbound and
    # the admin API denies it
    with gateway.client() as http:
        unbound = http.post("/oauth2/token", data=form, auth=secret).json()["access_token"]
        denied = http.get("/api/v1/clients", headers={"Authorization": f"Bearer {unbound}"})
    assert (denied.status_code, denied.json()["reason"]) == (403, "certificate_binding_required")

    # Then a token asked for over mTLS is bound and administers over mTLS with that certificate
    with certificate.https(gateway) as https:
        bound = https.post("/oauth2/token", data=form, auth=secret).json()["access_token"]
        over_mtls = https.get("/api/v1/clients", headers={"Authorization": f"Bearer {bound}"})
    assert over_mtls.status_code == 200, over_mtls.text
    # and is refused without it
    with gateway.client() as http:
        stolen = http.get("/api/v1/clients", headers={"Authorization": f"Bearer {bound}"})
    assert stolen.status_code == 401
    assert stolen.headers["content-type"] == "application/problem+json"
