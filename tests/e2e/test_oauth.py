"""OAuth 2.0 client credentials through the local runtime; tokens verified with a JOSE library
(PyJWT) from the gateway's own JWKS and discovery document."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e.conftest import RunningGateway
from tests.e2e.test_product import ADMIN_KEY
from tests.jwks_server import JwksServer


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


@pytest.fixture(scope="module")
def registered(gateway: RunningGateway) -> dict[str, Any]:
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        response = http.post(
            "/api/v1/clients/register",
            json={
                "name": "Token Client",
                "client_type": "integration",
                "contact_email": "ops@tokens.example",
                "allowed_scopes": ["data:read", "banking:read"],
                "tier": "professional",
            },
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _token(gateway: RunningGateway, **kwargs: Any) -> Any:
    with gateway.client() as http:
        return http.post("/oauth2/token", **kwargs)


def test_discovery_document_describes_this_server(gateway: RunningGateway) -> None:
    with gateway.client() as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert metadata["issuer"] == gateway.base_url
    assert metadata["token_endpoint"] == f"{gateway.base_url}/oauth2/token"
    assert metadata["jwks_uri"] == f"{gateway.base_url}/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "tls_client_auth",
    }


def test_client_secret_basic_yields_a_token_verifiable_from_the_jwks(
    gateway: RunningGateway, registered: dict[str, Any]
) -> None:
    response = _token(
        gateway,
        data={"grant_type": "client_credentials", "scope": "data:read"},
        auth=(registered["client_id"], registered["client_secret"]),
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "data:read"

    # Verify the way any relying party would: discovery, then JWKS, then the signature.
    jwks_client = jwt.PyJWKClient(f"{gateway.base_url}/.well-known/jwks.json")
    signing_key = jwks_client.get_signing_key_from_jwt(body["access_token"])
    claims = jwt.decode(
        body["access_token"], signing_key.key, algorithms=["RS256"], audience="finance-gateway", issuer=gateway.base_url
    )
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == registered["client_id"]
    assert claims["scope"] == "data:read"
    assert claims["tier"] == "professional"
    assert claims["exp"] - claims["iat"] <= 3600
    assert claims["jti"]


def test_client_secret_post_without_scope_grants_all_allowed_scopes(
    gateway: RunningGateway, registered: dict[str, Any]
) -> None:
    response = _token(
        gateway,
        data={
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": registered["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "banking:read data:read"


def test_refusals_use_rfc_6749_error_bodies(gateway: RunningGateway, registered: dict[str, Any]) -> None:
    good = (registered["client_id"], registered["client_secret"])
    wrong_secret = _token(gateway, data={"grant_type": "client_credentials"}, auth=(registered["client_id"], "nope"))
    unknown_client = _token(gateway, data={"grant_type": "client_credentials"}, auth=("cl_nobody", "nope"))
    bad_scope = _token(gateway, data={"grant_type": "client_credentials", "scope": "admin"}, auth=good)
    bad_grant = _token(gateway, data={"grant_type": "password"}, auth=good)
    two_methods = _token(
        gateway,
        data={"grant_type": "client_credentials", "client_id": good[0], "client_secret": good[1]},
        auth=good,
    )
    json_body = _token(gateway, json={"grant_type": "client_credentials"}, auth=good)
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert wrong_secret.headers["www-authenticate"].startswith("Basic")
    assert unknown_client.json() == wrong_secret.json()  # nothing to learn by probing ids
    assert (bad_scope.status_code, bad_scope.json()["error"]) == (400, "invalid_scope")
    assert (bad_grant.status_code, bad_grant.json()["error"]) == (400, "unsupported_grant_type")
    assert (two_methods.status_code, two_methods.json()["error"]) == (400, "invalid_request")
    assert (json_body.status_code, json_body.json()["error"]) == (400, "invalid_request")
    assert registered["client_secret"] not in "".join(gateway.output), "the client secret was logged"


def test_a_rotated_secret_works_through_its_grace_a_rotation_without_grace_ends_it_and_suspension_stops_tokens(
    gateway: RunningGateway,
) -> None:
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        client = http.post(
            "/api/v1/clients/register",
            json={
                "name": "Rotating Secrets",
                "client_type": "internal",
                "contact_email": "a@b.example",
                "allowed_scopes": ["data:read"],
            },
        ).json()
        form = {"grant_type": "client_credentials"}
        first = client["client_secret"]
        # A rotation without a body: the old secret keeps working for the default grace (24 h)
        second = http.post(f"/api/v1/clients/{client['client_id']}/secret").json()["client_secret"]
        assert _token(gateway, data=form, auth=(client["client_id"], first)).status_code == 200
        assert _token(gateway, data=form, auth=(client["client_id"], second)).status_code == 200
        # Without grace: only the newest secret works from now on
        third = http.post(f"/api/v1/clients/{client['client_id']}/secret", json={"grace_seconds": 0}).json()
        for old in (first, second):
            assert _token(gateway, data=form, auth=(client["client_id"], old)).status_code == 401
        assert _token(gateway, data=form, auth=(client["client_id"], third["client_secret"])).status_code == 200
        http.post(f"/api/v1/clients/{client['client_id']}/suspend")
        suspended = _token(gateway, data=form, auth=(client["client_id"], third["client_secret"]))
    assert (suspended.status_code, suspended.json()["error"]) == (400, "unauthorized_client")


def test_hostile_bearer_tokens_get_a_401_problem_never_a_500(gateway: RunningGateway) -> None:
    # Given a partner issuer that signs with RSA and EC keys (its JWKS on loopback)
    idp = JwksServer()
    issuer = "https://login.multi-alg.example"
    try:
        with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
            created = http.post(
                "/api/v1/gateway/issuers",
                json={
                    "issuer": issuer,
                    "jwks_url": idp.url,
                    "audiences": ["bank-api"],
                    "algorithms": ["RS256", "ES256"],
                },
            )
        assert created.status_code == 201, created.text

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).decode().rstrip("=")

        claims = b64(json.dumps({"iss": issuer, "sub": "svc-1", "aud": "bank-api"}).encode())

        def forged(header: bytes) -> str:
            return f"{b64(header)}.{claims}.{b64(b'signature')}"

        hostile = {
            # The header names EC, the kid the partner's RSA key: PyJWT raised TypeError (a 500)
            "ES256 header on an RSA key": idp.token(
                issuer, signer=ec.generate_private_key(ec.SECP256R1()), headers={"alg": "ES256"}
            ),
            "header not JSON": forged(b"not json"),
            "header JSON, not an object": forged(b"[1, 2]"),
            "kid not a string": forged(json.dumps({"alg": "RS256", "kid": {"a": 1}}).encode()),
            # Over the authorizer's 8 KiB, under the 10 KB of headers API Gateway (and the runtime) take
            "8.6 KB token": forged(json.dumps({"alg": "RS256", "kid": idp.kid, "pad": "x" * 6_300}).encode()),
        }
        assert 8 * 1024 < len(hostile["8.6 KB token"]) < 9 * 1024
        with gateway.client() as http:
            for name, token in hostile.items():
                response = http.get("/api/v1/whoami/token", headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 401, (name, response.status_code, response.text)
                assert response.headers["content-type"] == "application/problem+json", name
    finally:
        idp.close()
