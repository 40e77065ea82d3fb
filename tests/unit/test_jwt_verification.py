"""Bearer JWT verification (functions/authorizer/jwt_token.py): RFC 8725 refusals, clock skew,
JWKS caching with a rate-limited refetch and last-good keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from functions.authorizer.core import Denied
from functions.authorizer.jwt_token import Issuer, JwksCache, verify_bearer

ISS = "https://gateway.example/prod"
JWKS_URL = f"{ISS}/.well-known/jwks.json"
AUD = "finance-gateway"


class Keys:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = {
            **json.loads(RSAAlgorithm.to_jwk(self.private.public_key())),
            "kid": kid,
            "alg": "RS256",
            "use": "sig",
        }

    def token(self, claims: dict[str, Any] | None = None, **header: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISS,
            "sub": "cl_1",
            "aud": AUD,
            "iat": now,
            "exp": now + 3600,
            "scope": "data:read banking:read",
            "tier": "basic",
            "jti": "j1",
            **(claims or {}),
        }
        headers = {"kid": self.kid, "typ": "at+jwt", **header}
        return jwt.encode(payload, self.private, algorithm="RS256", headers=headers)


class FakeIssuerServer:
    """What the JWKS endpoint returns; can be switched to fail."""

    def __init__(self, *keys: Keys) -> None:
        self.keys = list(keys)
        self.failing = False
        self.calls = 0

    def fetch(self, url: str) -> dict[str, Any]:
        self.calls += 1
        assert url == JWKS_URL
        if self.failing:
            raise ConnectionError("issuer down")
        return {"keys": [k.jwk for k in self.keys]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key_a() -> Keys:
    return Keys("kid-a")


@pytest.fixture
def setup(key_a: Keys) -> tuple[dict[str, Issuer], JwksCache, FakeIssuerServer, Clock]:
    server = FakeIssuerServer(key_a)
    clock = Clock()
    issuers = {ISS: Issuer(ISS, JWKS_URL, (AUD,), ("RS256",), required_typ="at+jwt")}
    return issuers, JwksCache(server.fetch, clock=clock), server, clock


def _reason(authorization: str, issuers: dict[str, Issuer], cache: JwksCache) -> str:
    with pytest.raises(Denied) as refused:
        verify_bearer(authorization, issuers, cache)
    assert str(refused.value) == "Unauthorized"
    return refused.value.reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_a_valid_token_yields_the_client_its_scopes_and_tier(setup: Any, key_a: Keys) -> None:
    issuers, cache, _, _ = setup
    principal = verify_bearer(f"Bearer {key_a.token()}", issuers, cache)
    assert principal.client_id == "cl_1"
    assert principal.credential_kind == "jwt"
    assert principal.scopes == ("data:read", "banking:read")
    assert principal.tier == "basic"


def test_alg_none_is_refused(setup: Any) -> None:
    issuers, cache, _, _ = setup
    claims = {"iss": ISS, "sub": "x", "aud": AUD, "exp": int(time.time()) + 60, "iat": 0}
    token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]  # PyJWT takes None for "none"
    assert _reason(f"Bearer {token}", issuers, cache) == "alg_none"


def test_hs256_signed_with_our_public_key_is_refused(setup: Any, key_a: Keys) -> None:
    # The classic confusion: HMAC keyed with the RSA public key, which anyone can fetch.
    issuers, cache, _, _ = setup
    public_pem = key_a.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": "kid-a"}).encode())
    payload = _b64(
        json.dumps({"iss": ISS, "sub": "evil", "aud": AUD, "iat": 0, "exp": int(time.time()) + 600}).encode()
    )
    signature = _b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert _reason(f"Bearer {header}.{payload}.{signature}", issuers, cache) == "alg_not_allowed"


def test_wrong_audience_unknown_issuer_and_wrong_type_are_refused(setup: Any, key_a: Keys) -> None:
    issuers, cache, _, _ = setup
    assert _reason(f"Bearer {key_a.token({'aud': 'someone-else'})}", issuers, cache) == "wrong_audience"
    assert _reason(f"Bearer {key_a.token({'iss': 'https://evil.example'})}", issuers, cache) == "unknown_issuer"
    assert _reason(f"Bearer {key_a.token(typ='JWT')}", issuers, cache) == "wrong_token_type"


def test_expiry_and_not_before_allow_sixty_seconds_of_skew(setup: Any, key_a: Keys) -> None:
    issuers, cache, _, _ = setup
    now = int(time.time())
    assert verify_bearer(f"Bearer {key_a.token({'exp': now - 30})}", issuers, cache).client_id == "cl_1"
    assert _reason(f"Bearer {key_a.token({'exp': now - 120})}", issuers, cache) == "token_expired"
    assert verify_bearer(f"Bearer {key_a.token({'nbf': now + 30})}", issuers, cache).client_id == "cl_1"
    assert _reason(f"Bearer {key_a.token({'nbf': now + 120})}", issuers, cache) == "token_not_yet_valid"


def test_tampered_and_malformed_tokens_are_refused(setup: Any, key_a: Keys) -> None:
    issuers, cache, _, _ = setup
    header, payload, signature = key_a.token().split(".")
    forged = _b64(json.dumps({**json.loads(base64.urlsafe_b64decode(payload + "==")), "scope": "admin"}).encode())
    assert _reason(f"Bearer {header}.{forged}.{signature}", issuers, cache) == "bad_signature"
    assert _reason("Bearer not.a.jwt", issuers, cache) == "malformed_token"
    assert _reason(f"Basic {key_a.token()}", issuers, cache) == "not_a_bearer_token"


def test_unknown_kid_refetches_at_most_once_a_minute(setup: Any, key_a: Keys) -> None:
    issuers, cache, server, clock = setup
    verify_bearer(f"Bearer {key_a.token()}", issuers, cache)
    assert server.calls == 1
    stranger = Keys("kid-unknown")
    assert _reason(f"Bearer {stranger.token()}", issuers, cache) == "unknown_kid"
    assert _reason(f"Bearer {stranger.token()}", issuers, cache) == "unknown_kid"
    assert server.calls == 1  # the first fetch was just now: no refetch yet
    clock.now += 61
    server.keys.append(stranger)  # the issuer rotated its keys
    assert verify_bearer(f"Bearer {stranger.token()}", issuers, cache).client_id == "cl_1"
    assert server.calls == 2


def test_last_good_keys_survive_a_failing_jwks_endpoint(setup: Any, key_a: Keys) -> None:
    issuers, cache, server, clock = setup
    verify_bearer(f"Bearer {key_a.token()}", issuers, cache)
    server.failing = True
    clock.now += 120
    newcomer = Keys("kid-new")
    assert _reason(f"Bearer {newcomer.token()}", issuers, cache) == "unknown_kid"  # fetch failed
    assert verify_bearer(f"Bearer {key_a.token()}", issuers, cache).client_id == "cl_1"


def test_issuers_cannot_be_configured_with_shared_secret_or_no_algorithms() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        Issuer(ISS, JWKS_URL, (AUD,), ("HS256",))
    with pytest.raises(ValueError, match="unsupported"):
        Issuer(ISS, JWKS_URL, (AUD,), ())


def test_a_token_issued_by_our_kms_signer_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issuance (routes) and verification (authorizer) agree: KMS-signed at+jwt, kid from the JWKS.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    import boto3
    from moto import mock_aws

    from functions.routes.dal.signing import KmsSigner

    with mock_aws():
        kms = boto3.client("kms")
        key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        signer = KmsSigner(kms, key_id)
        now = int(time.time())
        token = signer.sign(
            {"iss": ISS, "sub": "cl_9", "aud": AUD, "iat": now, "exp": now + 3600, "scope": "data:read"}
        )
        cache = JwksCache(lambda url: {"keys": [signer.public_jwk()]})
        issuers = {ISS: Issuer(ISS, JWKS_URL, (AUD,), ("RS256",), required_typ="at+jwt")}
        principal = verify_bearer(f"Bearer {token}", issuers, cache)
    assert principal.client_id == "cl_9"
    assert principal.scopes == ("data:read",)
