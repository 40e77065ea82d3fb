"""A new developer's journey through the local runtime, over real HTTP and HTTPS with real
certificates: register a client, call with a key, get a token and call with it (verified from the
JWKS with PyJWT), register a certificate and call over mTLS, get a certificate-bound token and
see it refused without its certificate; and every forged, expired, revoked or misused
credential refused with the right status."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.local.pki import ensure_pki, issue_client_certificate
from tests.e2e.conftest import RunningGateway, start_gateway, stop_gateway
from tests.e2e.test_product import ADMIN_KEY
from tests.jwks_server import JwksServer

ORIGINS = ("https://app.bank.example", "https://ops.bank.example")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    # Two browser origins are allowed.
    running = start_gateway(
        tmp_path_factory.mktemp("journey"),
        "-c",
        f"corsAllowOrigins={','.join(ORIGINS)}",
        env={"GATEWAY_ADMIN_KEY": ADMIN_KEY},
    )
    yield running
    stop_gateway(running)


def _admin(gateway: RunningGateway) -> httpx.Client:
    return gateway.client(headers={"x-api-key": ADMIN_KEY})


def _register(gateway: RunningGateway, name: str, scopes: list[str]) -> dict[str, Any]:
    with _admin(gateway) as http:
        response = http.post(
            "/api/v1/clients/register",
            json={
                "name": name,
                "client_type": "integration",
                "contact_email": "treasury@bank.example",
                "allowed_scopes": scopes,
                "tier": "enterprise",
            },
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


class Certificate:
    """A client certificate from the local CA that `make local` created, ready for httpx."""

    def __init__(self, gateway: RunningGateway, common_name: str) -> None:
        pki = ensure_pki(gateway.state_dir / "pki")
        self.cert_path, self.key_path = issue_client_certificate(pki, common_name, gateway.state_dir)
        self.pem = self.cert_path.read_text()
        self.context = ssl.create_default_context(cafile=str(pki.ca_cert))
        self.context.load_cert_chain(str(self.cert_path), str(self.key_path))

    def https(self, gateway: RunningGateway) -> httpx.Client:
        return httpx.Client(base_url=gateway.tls_url, verify=self.context, timeout=60)


def _register_certificate(gateway: RunningGateway, client_id: str, certificate: Certificate) -> str:
    with _admin(gateway) as http:
        response = http.post(f"/api/v1/clients/{client_id}/certificates", json={"pem": certificate.pem})
    assert response.status_code == 201, response.text
    return str(response.json()["fingerprint"])


def _token(http: httpx.Client, client: dict[str, Any], **form: str) -> httpx.Response:
    return http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client["client_id"], client["client_secret"]),
    )


def test_key_then_token_then_certificate(gateway: RunningGateway) -> None:
    client = _register(gateway, "Journey Treasury", ["banking:read", "payments:write"])

    # An API key, used, then rotated: both keys work during the grace period.
    with _admin(gateway) as http:
        created = http.post("/api/v1/gateway/keys", json={"client_id": client["client_id"], "name": "erp"}).json()
        rotated = http.post(f"/api/v1/gateway/keys/{created['key_id']}/rotate", json={}).json()
    with gateway.client() as http:
        for key in (created["api_key"], rotated["new_key"]["api_key"]):
            who = http.get("/api/v1/whoami", headers={"x-api-key": key})
            assert (who.status_code, who.json()["credential_kind"]) == (200, "api_key"), who.text
    with _admin(gateway) as http:
        used = http.get(f"/api/v1/gateway/keys/{rotated['new_key']['key_id']}").json()
    assert used["last_used_at"] is not None  # recorded by the authorizer, at most hourly
    with gateway.client() as http:
        # A token by client_credentials, verified as any relying party would, then used.
        issued = _token(http, client, scope="banking:read")
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        signing_key = jwt.PyJWKClient(f"{gateway.base_url}/.well-known/jwks.json").get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token, signing_key.key, algorithms=["RS256"], audience="finance-gateway", issuer=gateway.base_url
        )
        assert "cnf" not in claims
        who = http.get("/api/v1/whoami/token", headers={"Authorization": f"Bearer {token}"})
        assert who.status_code == 200, who.text
        assert who.json() == {
            "client_id": client["client_id"],
            "credential_kind": "jwt",
            "scopes": ["banking:read"],
            "tier": "enterprise",
            "certificate_bound": False,
        }

    # A certificate registered to the client, then a call over mTLS on the TLS port.
    certificate = Certificate(gateway, "journey-erp")
    _register_certificate(gateway, client["client_id"], certificate)
    with certificate.https(gateway) as https:
        who = https.get("/api/v1/whoami/certificate")
    assert who.status_code == 200, who.text
    assert (who.json()["client_id"], who.json()["credential_kind"]) == (client["client_id"], "certificate")
    assert sorted(who.json()["scopes"]) == ["banking:read", "payments:write"]

    # No secret this journey created reached a log line (the runtime captures every function's logs).
    created_secrets = [client["client_secret"], created["api_key"], rotated["new_key"]["api_key"], token]
    logs = "".join(gateway.output)
    assert [s for s in created_secrets if s in logs] == []


def test_a_token_asked_for_over_mtls_is_bound_to_the_certificate(gateway: RunningGateway) -> None:
    client = _register(gateway, "Bound Payments", ["payments:write"])
    certificate, other = Certificate(gateway, "bound-pay"), Certificate(gateway, "bound-other")
    _register_certificate(gateway, client["client_id"], certificate)
    _register_certificate(gateway, client["client_id"], other)

    with certificate.https(gateway) as https:
        metadata = https.get("/.well-known/openid-configuration").json()
        issued = _token(https, client)
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        with_its_certificate = https.get("/api/v1/whoami/token", headers=bearer)
        # RFC 8705 §2: the certificate alone authenticates the client (tls_client_auth).
        by_certificate = https.post(
            "/oauth2/token", data={"grant_type": "client_credentials", "client_id": client["client_id"]}
        )
    assert metadata["tls_client_certificate_bound_access_tokens"] is True
    assert metadata["mtls_endpoint_aliases"]["token_endpoint"] == f"{gateway.tls_url}/oauth2/token"
    assert "tls_client_auth" in metadata["token_endpoint_auth_methods_supported"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims["cnf"]) == {"x5t#S256"}
    assert with_its_certificate.status_code == 200, with_its_certificate.text
    assert with_its_certificate.json()["certificate_bound"] is True
    assert by_certificate.status_code == 200, by_certificate.text

    # The same token without its certificate (plain HTTP), or with another registered one.
    with gateway.client() as http:
        plain = http.get("/api/v1/whoami/token", headers=bearer)
    with other.https(gateway) as https:
        other_certificate = https.get("/api/v1/whoami/token", headers=bearer)
    assert plain.status_code == 401
    assert other_certificate.status_code == 401
    assert plain.headers["content-type"] == "application/problem+json"


def _forged_token(gateway: RunningGateway, client_id: str, kid: str) -> str:
    now = int(time.time())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": gateway.base_url, "sub": client_id, "aud": "finance-gateway", "iat": now, "exp": now + 600}
    return jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})


def test_forged_expired_revoked_and_misused_credentials_are_refused(gateway: RunningGateway) -> None:
    client = _register(gateway, "Refusals Ltd", ["banking:read"])
    certificate = Certificate(gateway, "refusals")
    fingerprint = _register_certificate(gateway, client["client_id"], certificate)
    with gateway.client() as http:
        token = _token(http, client).json()["access_token"]
        kid = jwt.get_unverified_header(token)["kid"]
        header, payload, _ = token.split(".")
        checks = {
            "forged signature": http.get(
                "/api/v1/whoami/token", headers={"Authorization": f"Bearer {_forged_token(gateway, 'cl_x', kid)}"}
            ),
            "tampered token": http.get(
                "/api/v1/whoami/token", headers={"Authorization": f"Bearer {header}.{payload}.AAAA"}
            ),
            "alg none": http.get(
                "/api/v1/whoami/token",
                headers={"Authorization": "Bearer " + jwt.encode({"sub": "x"}, None, algorithm="none")},  # type: ignore[arg-type]
            ),
            "no token": http.get("/api/v1/whoami/token"),
            "unknown key": http.get("/api/v1/whoami", headers={"x-api-key": "gk_live_" + "A" * 43}),
            "no key": http.get("/api/v1/whoami"),
            # A key on a token endpoint and a token on a key endpoint: wrong credential kind.
            "token where a key is expected": http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}),
            "certificate endpoint over plain HTTP": http.get("/api/v1/whoami/certificate"),
        }
    for name, response in checks.items():
        assert response.status_code == 401, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json", name
        assert "Bearer" in response.headers["www-authenticate"], name

    # The admin API takes tokens too (issue 12): a valid one without `admin` is refused by scope,
    # a forged one by the authorizer.
    with gateway.client() as http:
        admin_with_token = http.get("/api/v1/clients", headers={"Authorization": f"Bearer {token}"})
        admin_with_forged = http.get(
            "/api/v1/clients", headers={"Authorization": f"Bearer {_forged_token(gateway, client['client_id'], kid)}"}
        )
    assert (admin_with_token.status_code, admin_with_token.json()["code"]) == (403, "insufficient_scope")
    assert admin_with_forged.status_code == 401
    assert admin_with_forged.headers["content-type"] == "application/problem+json"

    # An unregistered certificate from the same CA, then a revoked one.
    stranger = Certificate(gateway, "stranger")
    with stranger.https(gateway) as https:
        assert https.get("/api/v1/whoami/certificate").status_code == 401
    with _admin(gateway) as http:
        revoked = http.delete(f"/api/v1/clients/{client['client_id']}/certificates/{fingerprint}")
    assert revoked.status_code == 200, revoked.text
    with certificate.https(gateway) as https:
        assert https.get("/api/v1/whoami/certificate").status_code == 401

    # Suspending the client refuses its valid token at once (403 with the reason).
    with _admin(gateway) as http:
        assert http.post(f"/api/v1/clients/{client['client_id']}/suspend").status_code == 200
    with gateway.client() as http:
        refused = http.get("/api/v1/whoami/token", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403
    assert refused.json()["reason"] == "client_not_active"

    secrets = [client["client_secret"], token]
    logs = "".join(gateway.output)
    assert not [s for s in secrets if s in logs], "a secret or token reached the logs"


# -- CORS: preflight and every response, errors included ---------------------------------------


def test_preflight_is_answered_for_a_listed_origin_only(gateway: RunningGateway) -> None:
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key,content-type"}
    with gateway.client() as http:
        allowed = http.options("/api/v1/clients/register", headers={"Origin": ORIGINS[1], **asked})
        foreign = http.options("/api/v1/clients/register", headers={"Origin": "https://evil.example", **asked})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGINS[1]
    assert "X-Api-Key" in allowed.headers["access-control-allow-headers"]
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-max-age"] == "600"
    assert allowed.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in foreign.headers


def test_function_answers_carry_cors_headers_for_a_listed_origin_errors_included(gateway: RunningGateway) -> None:
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        found = http.get("/api/v1/clients", headers={"Origin": ORIGINS[0]})
        missing = http.get("/api/v1/clients/cl_0000", headers={"Origin": ORIGINS[0]})
        foreign = http.get("/api/v1/clients", headers={"Origin": "https://evil.example"})
    assert (found.status_code, found.headers["access-control-allow-origin"]) == (200, ORIGINS[0])
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == ORIGINS[0]
    assert "X-Amzn-RequestId" in missing.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in foreign.headers


def test_gateway_errors_carry_cors_headers_so_a_browser_can_read_them(gateway: RunningGateway) -> None:
    with gateway.client() as http:
        unauthorized = http.get("/api/v1/clients", headers={"Origin": ORIGINS[1]})
        unknown_path = http.get("/api/v1/nowhere", headers={"Origin": ORIGINS[0]})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == ORIGINS[1]
    assert "WWW-Authenticate" in unauthorized.headers["access-control-expose-headers"]
    assert unknown_path.status_code == 404
    assert unknown_path.headers["access-control-allow-origin"] == ORIGINS[0]
    assert unknown_path.headers["vary"] == "Origin"


# -- an external issuer configured by an admin ---------------------------------------------------


def test_an_external_issuers_tokens_are_accepted_namespaced_and_refused_once_disabled(
    gateway: RunningGateway,
) -> None:
    idp = JwksServer()  # the partner's identity provider, on loopback
    issuer = "https://login.partner.example/tenant-7/v2.0"
    try:
        with _admin(gateway) as http:
            created = http.post(
                "/api/v1/gateway/issuers",
                json={
                    "issuer": issuer,
                    "jwks_url": idp.url,
                    "audiences": ["api://bank-gateway"],
                    "allowed_scopes": ["banking:read"],
                    "tier": "professional",
                },
            )
        assert created.status_code == 201, created.text
        identifier = created.json()["issuer_id"]
        token = idp.token(issuer, aud="api://bank-gateway", scope="banking:read admin")
        bearer = {"Authorization": f"Bearer {token}"}
        with gateway.client() as http:
            accepted = http.get("/api/v1/whoami/token", headers=bearer)
            wrong_audience = http.get(
                "/api/v1/whoami/token", headers={"Authorization": f"Bearer {idp.token(issuer, aud='other')}"}
            )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["client_id"] == f"{identifier}:svc-42"
        assert accepted.json()["scopes"] == ["banking:read"]  # never `admin` from a foreign issuer
        assert accepted.json()["tier"] == "professional"
        assert wrong_audience.status_code == 401

        with _admin(gateway) as http:
            etag = http.get(f"/api/v1/gateway/issuers/{identifier}").headers["ETag"]
            disable = http.patch(
                f"/api/v1/gateway/issuers/{identifier}", json={"status": "disabled"}, headers={"If-Match": etag}
            )
            assert disable.status_code == 200, disable.text

        # The change flushed API Gateway's cache and authorizers keep no state: refused at once.
        with gateway.client() as http:
            disabled = http.get("/api/v1/whoami/token", headers=bearer)
        assert disabled.status_code == 401
    finally:
        idp.close()
