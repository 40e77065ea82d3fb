"""Bearer JWT verification (functions/authorizer/jwt_token.py): RFC 8725 refusals, clock skew,
JWKS caching for the issuer's cache lifetime (bounded), a rate-limited refetch on unknown kids and
last-good keys for a bounded time when the issuer is down."""

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
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import RSAAlgorithm

from functions.authorizer.core import Denied
from functions.authorizer.jwt_token import (
    DEFAULT_LIFETIME_S,
    MAX_LIFETIME_S,
    MAX_STALE_S,
    MIN_LIFETIME_S,
    Issuer,
    JwksCache,
    JwksDocument,
    verify_bearer,
)

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
        self.lifetime_s: float | None = None  # what its caching headers say (None: nothing)
        self.document: dict[str, Any] | None = None  # served instead of the keys when set

    def fetch(self, url: str) -> JwksDocument:
        self.calls += 1
        assert url == JWKS_URL
        if self.failing:
            raise ConnectionError("issuer down")
        document = self.document or {"keys": [k.jwk for k in self.keys]}
        return JwksDocument(document, lifetime_s=self.lifetime_s)


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


@pytest.mark.parametrize(
    ("said", "refetched_after"),
    [
        (120.0, 120.0),  # Cache-Control: max-age=120
        (None, DEFAULT_LIFETIME_S),  # no caching headers
        (0.0, MIN_LIFETIME_S),  # no-store / no-cache / max-age=0: never below the floor
        (5.0, MIN_LIFETIME_S),
        (10.0**9, MAX_LIFETIME_S),  # a year-long max-age is capped
    ],
)
def test_a_key_removed_from_the_jwks_stops_verifying_when_the_issuers_cache_lifetime_ends(
    setup: Any, key_a: Keys, said: float | None, refetched_after: float
) -> None:
    issuers, cache, server, clock = setup
    server.lifetime_s = said
    verify_bearer(f"Bearer {key_a.token()}", issuers, cache)
    # Given the issuer rotated key A out of its JWKS (no unknown kid will ever ask for a refetch)
    key_b = Keys("kid-b")
    server.keys = [key_b]

    # While the lifetime lasts, the cached set answers without a fetch
    clock.now += refetched_after - 1
    assert verify_bearer(f"Bearer {key_a.token()}", issuers, cache).client_id == "cl_1"
    assert server.calls == 1
    # Once it has passed, the next token refetches on schedule and key A is refused
    clock.now += 1
    assert _reason(f"Bearer {key_a.token()}", issuers, cache) == "unknown_kid"
    assert server.calls == 2
    assert verify_bearer(f"Bearer {key_b.token()}", issuers, cache).client_id == "cl_1"
    assert server.calls == 2


def test_a_failing_refetch_serves_the_last_good_keys_for_a_bounded_time_then_refuses(setup: Any, key_a: Keys) -> None:
    issuers, cache, server, clock = setup
    server.lifetime_s = 120.0
    verify_bearer(f"Bearer {key_a.token()}", issuers, cache)
    server.failing = True

    # Past the lifetime the refetch fails: the last good keys still verify, and the failing
    # issuer is asked at most once a minute, however many tokens arrive
    clock.now += 121
    for _ in range(5):
        assert verify_bearer(f"Bearer {key_a.token()}", issuers, cache).client_id == "cl_1"
    assert server.calls == 2
    clock.now += 60
    verify_bearer(f"Bearer {key_a.token()}", issuers, cache)
    assert server.calls == 3

    # Up to MAX_STALE_S past the lifetime; after that nothing verifies until a fetch succeeds
    clock.now = 1000.0 + 120 + MAX_STALE_S - 1
    assert verify_bearer(f"Bearer {key_a.token()}", issuers, cache).client_id == "cl_1"
    clock.now = 1000.0 + 120 + MAX_STALE_S
    assert _reason(f"Bearer {key_a.token()}", issuers, cache) == "jwks_unavailable"
    server.failing = False
    clock.now += 60
    assert verify_bearer(f"Bearer {key_a.token()}", issuers, cache).client_id == "cl_1"


def test_an_issuer_never_reached_refuses_with_jwks_unavailable(setup: Any, key_a: Keys) -> None:
    issuers, cache, server, _ = setup
    server.failing = True
    assert _reason(f"Bearer {key_a.token()}", issuers, cache) == "jwks_unavailable"
    assert _reason(f"Bearer {key_a.token()}", issuers, cache) == "jwks_unavailable"
    assert server.calls == 1  # the next attempt waits for the refetch interval


def test_a_jwks_answer_without_a_key_list_keeps_the_last_good_keys(setup: Any, key_a: Keys) -> None:
    issuers, cache, server, clock = setup
    verify_bearer(f"Bearer {key_a.token()}", issuers, cache)
    server.document = {"keys": "nope"}
    clock.now += DEFAULT_LIFETIME_S
    assert verify_bearer(f"Bearer {key_a.token()}", issuers, cache).client_id == "cl_1"
    assert server.calls == 2  # it was fetched, and refused


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
        cache = JwksCache(lambda url: JwksDocument({"keys": [signer.public_jwk()]}))
        issuers = {ISS: Issuer(ISS, JWKS_URL, (AUD,), ("RS256",), required_typ="at+jwt")}
        principal = verify_bearer(f"Bearer {token}", issuers, cache)
    assert principal.client_id == "cl_9"
    assert principal.scopes == ("data:read",)


# -- the key decides the algorithm (RFC 8725 3.1); nothing an untrusted token holds crashes ------

MULTI_ISS = "https://idp.multi.example"
ALL_ALGORITHMS = ("RS256", "PS256", "ES256", "ES384", "EdDSA")


class AnyKey:
    """A signing key of any type with its public JWK under `kid`."""

    def __init__(self, kid: str, private: Any, **jwk_extra: Any) -> None:
        from jwt.algorithms import ECAlgorithm, OKPAlgorithm

        self.kid = kid
        self.private = private
        public = private.public_key()
        if isinstance(private, rsa.RSAPrivateKey):
            as_jwk = RSAAlgorithm.to_jwk(public)
        elif isinstance(private, ec.EllipticCurvePrivateKey):
            as_jwk = ECAlgorithm.to_jwk(public)
        else:
            as_jwk = OKPAlgorithm.to_jwk(public)
        self.jwk = {**json.loads(as_jwk), "kid": kid, **jwk_extra}

    def token(self, algorithm: str, *, kid: str | None = None, signer: Any = None) -> str:
        now = int(time.time())
        claims = {"iss": MULTI_ISS, "sub": "svc-1", "aud": AUD, "iat": now, "exp": now + 600}
        return jwt.encode(claims, signer or self.private, algorithm=algorithm, headers={"kid": kid or self.kid})


@pytest.fixture(scope="module")
def any_keys() -> dict[str, AnyKey]:
    return {
        "rsa": AnyKey("rsa-1", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "rsa-rs256-only": AnyKey("rsa-2", rsa.generate_private_key(public_exponent=65537, key_size=2048), alg="RS256"),
        "rsa-enc": AnyKey("rsa-enc", rsa.generate_private_key(public_exponent=65537, key_size=2048), use="enc"),
        "rsa-wrap": AnyKey(
            "rsa-wrap", rsa.generate_private_key(public_exponent=65537, key_size=2048), key_ops=["wrapKey"]
        ),
        "rsa-weak": AnyKey("rsa-weak", rsa.generate_private_key(public_exponent=65537, key_size=1024)),  # noqa: S505 - the weak key the rule refuses
        "p256": AnyKey("ec-256", ec.generate_private_key(ec.SECP256R1())),
        "p384": AnyKey("ec-384", ec.generate_private_key(ec.SECP384R1())),
        "ed25519": AnyKey("ed-1", ed25519.Ed25519PrivateKey.generate()),
    }


@pytest.fixture
def multi(any_keys: dict[str, AnyKey]) -> tuple[dict[str, Issuer], JwksCache]:
    # An issuer that allows several families: the token's header may name any of them.
    issuers = {MULTI_ISS: Issuer(MULTI_ISS, f"{MULTI_ISS}/jwks", (AUD,), ALL_ALGORITHMS)}
    return issuers, JwksCache(lambda url: JwksDocument({"keys": [k.jwk for k in any_keys.values()]}))


@pytest.mark.parametrize(
    ("header_alg", "kid_of", "signed_by", "reason"),
    [
        # The header names one family, the kid a key of another: refused before PyJWT sees it.
        ("ES256", "rsa", "p256", "alg_key_mismatch"),
        ("RS256", "p256", "rsa", "alg_key_mismatch"),
        ("EdDSA", "rsa", "ed25519", "alg_key_mismatch"),
        ("PS256", "p256", "rsa", "alg_key_mismatch"),
        ("ES384", "p256", "p384", "alg_key_mismatch"),  # right family, wrong curve
        ("RS256", "ed25519", "rsa", "alg_key_mismatch"),
        # The key names its own algorithm: an RSA key published for RS256 does not verify PS256.
        ("PS256", "rsa-rs256-only", "rsa-rs256-only", "alg_key_mismatch"),
        # Keys that are not for verifying signatures.
        ("RS256", "rsa-enc", "rsa-enc", "key_not_for_signing"),
        ("RS256", "rsa-wrap", "rsa-wrap", "key_not_for_signing"),
        ("RS256", "rsa-weak", "rsa-weak", "weak_key"),
    ],
)
def test_a_header_algorithm_the_named_key_does_not_fit_is_refused_not_crashed(
    multi: Any, any_keys: dict[str, AnyKey], header_alg: str, kid_of: str, signed_by: str, reason: str
) -> None:
    issuers, cache = multi
    token = any_keys[signed_by].token(header_alg, kid=any_keys[kid_of].kid)
    assert _reason(f"Bearer {token}", issuers, cache) == reason


def test_each_family_verifies_with_its_own_key(multi: Any, any_keys: dict[str, AnyKey]) -> None:
    # The other side of the rule: the checks do not refuse what fits.
    issuers, cache = multi
    for algorithm, name in (
        ("RS256", "rsa"),
        ("PS256", "rsa"),
        ("ES256", "p256"),
        ("ES384", "p384"),
        ("EdDSA", "ed25519"),
    ):
        assert verify_bearer(f"Bearer {any_keys[name].token(algorithm)}", issuers, cache).client_id == "svc-1"


def test_a_published_private_key_never_verifies(any_keys: dict[str, AnyKey]) -> None:
    # A JWKS that leaks a private RSA key: PyJWT would load it as a private key and fail inside.
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaked = {**json.loads(RSAAlgorithm.to_jwk(private)), "kid": "leaked"}
    leaked.pop("key_ops", None)  # PyJWT marks it "sign"; a careless issuer would not
    issuers = {MULTI_ISS: Issuer(MULTI_ISS, f"{MULTI_ISS}/jwks", (AUD,), ALL_ALGORITHMS)}
    cache = JwksCache(lambda url: JwksDocument({"keys": [leaked]}))
    token = AnyKey("leaked", private).token("RS256")
    assert _reason(f"Bearer {token}", issuers, cache) == "alg_key_mismatch"


def _raw_token(header: bytes, payload: dict[str, Any] | None = None) -> str:
    now = int(time.time())
    body = payload or {"iss": MULTI_ISS, "sub": "svc-1", "aud": AUD, "iat": now, "exp": now + 600}
    return f"{_b64(header)}.{_b64(json.dumps(body).encode())}.{_b64(b'signature')}"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b'{"alg":"none","kid":"rsa-1"}', "alg_none"),
        (b'{"alg":"NoNe","kid":"rsa-1"}', "alg_none"),
        (b'{"kid":"rsa-1"}', "alg_none"),  # no alg at all
        (b'{"alg":"","kid":"rsa-1"}', "alg_none"),
        (b'{"alg":"HS256","kid":"rsa-1"}', "alg_not_allowed"),
        (b'{"alg":["RS256"],"kid":"rsa-1"}', "malformed_token"),
        (b'{"alg":"RS256","kid":{"a":1}}', "malformed_token"),
        (b'{"alg":"RS256"}', "missing_kid"),
        (b"not json at all", "malformed_token"),
        (b'["alg","RS256"]', "malformed_token"),  # JSON, not an object
        (b'"RS256"', "malformed_token"),
        (b"12", "malformed_token"),
        (b"\xff\xfe{", "malformed_token"),  # not UTF-8
        (b'{"alg":"RS256","kid":"rsa-1","crit":["exp"]}', "malformed_token"),  # an extension we do not know
    ],
)
def test_headers_an_attacker_writes_are_refused_with_a_reason(multi: Any, header: bytes, reason: str) -> None:
    issuers, cache = multi
    assert _reason(f"Bearer {_raw_token(header)}", issuers, cache) == reason


@pytest.mark.parametrize("size", [9 * 1024, 100 * 1024])
def test_a_huge_token_is_refused_before_it_is_parsed(multi: Any, size: int) -> None:
    issuers, cache = multi
    huge_header = json.dumps({"alg": "RS256", "kid": "rsa-1", "pad": "x" * size}).encode()
    assert _reason(f"Bearer {_raw_token(huge_header)}", issuers, cache) == "token_too_large"


@pytest.mark.parametrize(
    "payload",
    [
        {"iss": ["https://idp.multi.example"], "sub": "svc-1"},  # iss not a string
        {"iss": {"x": 1}},
    ],
)
def test_payload_fields_of_the_wrong_type_are_refused(multi: Any, payload: dict[str, Any]) -> None:
    issuers, cache = multi
    token = _raw_token(b'{"alg":"RS256","kid":"rsa-1"}', payload)
    assert _reason(f"Bearer {token}", issuers, cache) == "unknown_issuer"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 10**400},  # PyJWT compares Python ints: this passes it, and float() of it overflows
        {"exp": 10**30, "iat": 10**400},
        {"nbf": -(10**400)},
        {"exp": float("inf")},  # written as the JSON extension `Infinity`, which json.loads reads
        {"iat": float("nan")},
    ],
    ids=["exp-huge", "iat-huge", "nbf-huge", "exp-infinity", "iat-nan"],
)
def test_signed_time_claims_that_are_not_finite_numbers_are_refused_not_crashed(
    setup: Any, key_a: Keys, claims: dict[str, Any]
) -> None:
    issuers, cache, _, _ = setup
    reason = _reason(f"Bearer {key_a.token(claims)}", issuers, cache)
    assert reason in {"invalid_token", "malformed_token", "token_not_yet_valid"}
