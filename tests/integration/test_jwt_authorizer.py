"""The JWT authorizer's entry point on moto: our KMS-signed tokens (current and previous signing
key), the client behind them, certificate binding, and an external issuer whose JWKS a real
HTTP server on loopback serves."""

from __future__ import annotations

import importlib
import time
import zlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from functions.authorizer.core import Denied
from functions.routes.dal.certificates_store import DynamoCertificateStore
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.dal.signing import KmsSigner
from functions.routes.logic import certificates
from functions.routes.logic.certificates import Certificate
from functions.routes.logic.oauth import access_token_claims
from gateway_core.audit import Actor
from gateway_core.cert_binding import pem_x5t_s256
from gateway_core.clock import utc_now
from gateway_core.issuer_keys import issuer_id, issuer_key
from tests.certificates import make_certificate
from tests.integration.conftest import create_data_table
from tests.integration.helpers import REGION
from tests.jwks_server import JwksServer
from tests.unit.factories import make_client

TABLE = "gateway-jwt-authorizer"
ISSUER = "https://gateway.bank.example/prod"
AUDIENCE = "finance-gateway"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/v1/whoami/token"
ADMIN = Actor("admin", "api_key", "k0", "req-0")


class Kms:
    def __init__(self) -> None:
        kms = boto3.client("kms", region_name=REGION)
        self.previous = KmsSigner(kms, self._key(kms))
        self.current = KmsSigner(kms, self._key(kms))

    @staticmethod
    def _key(kms: Any) -> str:
        return str(kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"])


@pytest.fixture
def kms(aws: None, monkeypatch: pytest.MonkeyPatch) -> Kms:
    create_data_table(TABLE)
    keys = Kms()
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("TOKEN_ISSUER", ISSUER)
    monkeypatch.setenv("TOKEN_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("TOKEN_SIGNING_KEY_ID", keys.current.key_id)
    monkeypatch.setenv("TOKEN_VERIFY_KEY_IDS", f"{keys.current.key_id},{keys.previous.key_id}")
    return keys


@pytest.fixture
def handler(kms: Kms) -> ModuleType:
    # A fresh container: the module-level JWKS, issuer and client caches start empty.
    import functions.authorizer.jwt_handler as module

    return importlib.reload(module)


def put_client(**overrides: Any) -> None:
    values: dict[str, Any] = {
        "client_id": "cl_pay",
        "name": "payer",
        "allowed_scopes": ["banking:read", "payments:write"],
        "tier": "enterprise",
        **overrides,
    }
    client = make_client(**values)
    DynamoClientStore(boto3.client("dynamodb", region_name=REGION), TABLE).create(client, ADMIN)


def our_token(signer: KmsSigner, *, scopes: list[str] | None = None, **extra: Any) -> str:
    client = make_client(client_id="cl_pay", tier="enterprise")
    claims = access_token_claims(
        client, scopes or ["banking:read", "payments:write"], issuer=ISSUER, audience=AUDIENCE, now=utc_now()
    )
    return signer.sign({**claims, **extra})


def event(token: str, *, source_ip: str = "203.0.113.7", cert_pem: str | None = None) -> dict[str, Any]:
    identity: dict[str, Any] = {"sourceIp": source_ip}
    if cert_pem is not None:
        identity["clientCert"] = {"clientCertPem": cert_pem}
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {"Authorization": f"Bearer {token}"},
        "requestContext": {"identity": identity},
    }


def refused(handler: ModuleType, request: dict[str, Any]) -> str:
    with pytest.raises(Denied) as raised:
        handler.lambda_handler(request, None)
    assert str(raised.value) == "Unauthorized"
    return raised.value.reason


def test_given_our_token_when_authorized_then_allow_with_the_clients_tier_and_scopes(
    handler: ModuleType, kms: Kms
) -> None:
    put_client()

    result = handler.lambda_handler(event(our_token(kms.current)), None)

    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["context"]["client_id"] == "cl_pay"
    assert result["context"]["credential_kind"] == "jwt"
    assert result["context"]["scopes"] == "banking:read payments:write"
    assert result["context"]["tier"] == "enterprise"
    assert result["context"]["cert_thumbprint"] == ""


def test_given_a_token_signed_by_the_previous_key_when_authorized_then_it_still_verifies(
    handler: ModuleType, kms: Kms
) -> None:
    # Given the signing key was rotated after this token was issued
    put_client()
    token = our_token(kms.previous)

    # Then the previous key (still in TOKEN_VERIFY_KEY_IDS and the JWKS) verifies it
    assert handler.lambda_handler(event(token), None)["context"]["client_id"] == "cl_pay"


def test_given_a_key_outside_the_verify_set_when_authorized_then_401_unknown_kid(
    handler: ModuleType, kms: Kms, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the key two generations back has left the verify set
    put_client()
    token = our_token(kms.previous)
    monkeypatch.setenv("TOKEN_VERIFY_KEY_IDS", kms.current.key_id)
    fresh = importlib.reload(handler)

    assert refused(fresh, event(token)) == "unknown_kid"


def test_given_scopes_narrowed_after_issuance_when_authorized_then_the_token_carries_only_what_remains(
    handler: ModuleType, kms: Kms
) -> None:
    put_client(allowed_scopes=["banking:read"])

    result = handler.lambda_handler(event(our_token(kms.current)), None)

    assert result["context"]["scopes"] == "banking:read"


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        ({"status": "suspended"}, "client_not_active"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "client_expired"),
        ({"ip_allowlist": ["10.0.0.0/8"]}, "ip_not_allowed"),
    ],
)
def test_given_a_client_that_may_not_call_now_when_authorized_then_deny_with_the_reason(
    handler: ModuleType, kms: Kms, client: dict[str, Any], reason: str
) -> None:
    put_client(**client)

    result = handler.lambda_handler(event(our_token(kms.current)), None)

    assert result["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert result["context"] == {"reason": reason}


def test_given_refused_tokens_when_authorized_then_401_with_the_reason(handler: ModuleType, kms: Kms) -> None:
    put_client()
    now = int(time.time())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"iss": ISSUER, "sub": "cl_pay", "aud": AUDIENCE, "iat": now, "exp": now + 600},
        stranger,
        algorithm="RS256",
        headers={"kid": kms.current.public_jwk()["kid"], "typ": "at+jwt"},
    )
    assert refused(handler, event(forged)) == "bad_signature"
    assert refused(handler, event(our_token(kms.current, exp=now - 120))) == "token_expired"
    assert refused(handler, event(our_token(kms.current, nbf=now + 120))) == "token_not_yet_valid"
    assert refused(handler, event(our_token(kms.current, aud="someone-else"))) == "wrong_audience"
    assert refused(handler, event(our_token(kms.current, sub="cl_gone"))) == "unknown_client"


def register_certificate(common_name: str, client_id: str = "cl_pay") -> tuple[str, str]:
    """A certificate registered to the client as the admin API does it: its PEM and fingerprint."""
    pem, fingerprint = make_certificate(common_name)
    store = DynamoCertificateStore(boto3.client("dynamodb", region_name=REGION), TABLE)
    certificates.register(store, DynamoClientStore(store.dynamodb, TABLE), client_id, pem, ADMIN, utc_now())
    return pem, fingerprint


def revoke_certificate(fingerprint: str, client_id: str = "cl_pay") -> None:
    store = DynamoCertificateStore(boto3.client("dynamodb", region_name=REGION), TABLE)
    certificates.revoke(store, client_id, fingerprint, ADMIN, utc_now())


def bound_token(signer: KmsSigner, pem: str) -> str:
    return our_token(signer, cnf={"x5t#S256": pem_x5t_s256(pem)})


def test_given_a_certificate_bound_token_when_authorized_then_the_certificate_must_match(
    handler: ModuleType, kms: Kms
) -> None:
    put_client()
    pem, _ = register_certificate("payments.bank.example")
    other, _ = register_certificate("thief.example")
    token = our_token(kms.current, cnf={"x5t#S256": pem_x5t_s256(pem)})

    assert refused(handler, event(token)) == "certificate_required"
    assert refused(handler, event(token, cert_pem=other)) == "certificate_mismatch"
    result = handler.lambda_handler(event(token, cert_pem=pem), None)
    assert result["context"]["cert_thumbprint"] == pem_x5t_s256(pem)


# -- revoking a certificate ends the tokens bound to it (RFC 8705) ------------------------------


def test_given_bound_tokens_when_their_certificate_is_revoked_then_every_one_of_them_is_refused(
    handler: ModuleType, kms: Kms
) -> None:
    # Given two tokens bound to one certificate (say one by secret over mTLS, one by the
    # certificate alone), both accepted
    put_client()
    pem, fingerprint = register_certificate("payments.bank.example")
    first, second = bound_token(kms.current, pem), bound_token(kms.previous, pem)
    for token in (first, second):
        assert handler.lambda_handler(event(token, cert_pem=pem), None)["context"]["client_id"] == "cl_pay"

    # When the certificate is revoked (the certificate itself is refused from now on)
    revoke_certificate(fingerprint)

    # Then the same warm container refuses both tokens on their next decision
    assert refused(handler, event(first, cert_pem=pem)) == "certificate_revoked"
    assert refused(handler, event(second, cert_pem=pem)) == "certificate_revoked"


def test_given_a_replaced_certificate_when_the_old_one_is_revoked_then_only_its_tokens_end(
    handler: ModuleType, kms: Kms
) -> None:
    # Given a client that rolled over from certificate A to B, with a token bound to each
    put_client()
    old_pem, old_fingerprint = register_certificate("erp-2025.bank.example")
    new_pem, _ = register_certificate("erp-2026.bank.example")
    old_token, new_token = bound_token(kms.current, old_pem), bound_token(kms.current, new_pem)

    # When A is revoked
    revoke_certificate(old_fingerprint)

    # Then tokens issued with A are refused, and B's keep working
    assert refused(handler, event(old_token, cert_pem=old_pem)) == "certificate_revoked"
    assert handler.lambda_handler(event(new_token, cert_pem=new_pem), None)["context"]["client_id"] == "cl_pay"


def test_given_our_bound_token_when_its_certificate_is_not_registered_to_its_client_then_401(
    handler: ModuleType, kms: Kms
) -> None:
    # Our token endpoint binds only to a certificate registered to the client: anything else
    # means the registration is gone or belongs to someone else
    put_client()
    put_client(client_id="cl_other", name="other")
    stranger, _ = make_certificate("never-registered.example")
    others, _ = register_certificate("other.bank.example", client_id="cl_other")

    assert (
        refused(handler, event(bound_token(kms.current, stranger), cert_pem=stranger)) == "certificate_not_registered"
    )
    assert refused(handler, event(bound_token(kms.current, others), cert_pem=others)) == "certificate_not_registered"


def test_given_a_bound_token_whose_certificate_expired_or_is_not_yet_valid_then_401(
    handler: ModuleType, kms: Kms
) -> None:
    put_client()
    store = DynamoCertificateStore(boto3.client("dynamodb", region_name=REGION), TABLE)
    cases = {
        "certificate_expired": ("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
        "certificate_not_yet_valid": ("2999-01-01T00:00:00Z", "2999-12-31T00:00:00Z"),
    }
    for reason, (not_before, not_after) in cases.items():
        pem, fingerprint = make_certificate(reason)
        stored = Certificate(
            fingerprint=fingerprint,
            client_id="cl_pay",
            subject="CN=x",
            issuer="CN=x",
            serial_number="1",
            not_before=not_before,
            not_after=not_after,
            status="active",
            created_at="2020-01-01T00:00:00Z",
            revoked_at=None,
        )
        store.create(stored, ADMIN)
        assert refused(handler, event(bound_token(kms.current, pem), cert_pem=pem)) == reason


def test_given_an_external_bound_token_when_its_certificate_is_registered_and_revoked_then_401(
    handler: ModuleType, idp: JwksServer
) -> None:
    # A partner's tokens may be bound to certificates we never registered (its issuer vouches
    # for the binding); one we registered and revoked is refused whoever bound a token to it
    put_client()
    put_issuer(idp.url)
    unregistered, _ = make_certificate("partner-unregistered.example")
    registered, fingerprint = register_certificate("partner-registered.example")
    revoke_certificate(fingerprint)

    def token(pem: str) -> str:
        return idp.token(IDP, cnf={"x5t#S256": pem_x5t_s256(pem)})

    assert handler.lambda_handler(event(token(unregistered), cert_pem=unregistered), None)["context"]["client_id"]
    assert refused(handler, event(token(registered), cert_pem=registered)) == "certificate_revoked"


def test_given_an_unbound_token_when_authorized_then_no_certificate_is_read(handler: ModuleType, kms: Kms) -> None:
    # The registry read is for bound tokens only: an unbound token costs what it did
    put_client()
    token = our_token(kms.current)
    handler.lambda_handler(event(token), None)
    assert _count_calls(lambda: handler.lambda_handler(event(token), None), 1) == ["GetItem", "GetItem"]


def test_given_a_bound_token_when_authorized_then_the_certificate_is_read_once_per_decision(
    handler: ModuleType, kms: Kms
) -> None:
    put_client()
    pem, _ = register_certificate("payments.bank.example")
    token = bound_token(kms.current, pem)
    handler.lambda_handler(event(token, cert_pem=pem), None)
    # denylist, certificate, client
    assert _count_calls(lambda: handler.lambda_handler(event(token, cert_pem=pem), None), 1) == ["GetItem"] * 3


def _count_calls(decide: Any, times: int) -> list[str]:
    calls: list[str] = []

    def count(model: Any = None, **_: Any) -> None:
        calls.append(str(model.name))

    from gateway_core import aws as gateway_aws

    for service in ("dynamodb", "kms"):
        gateway_aws.client(service).meta.events.register("before-call.*.*", count)
    for _ in range(times):
        decide()
    return calls


def test_given_a_warm_container_when_deciding_again_then_only_the_current_state_is_read(
    handler: ModuleType, kms: Kms
) -> None:
    # Given a first decision has fetched our public keys from KMS
    put_client()
    token = our_token(kms.current)
    handler.lambda_handler(event(token), None)

    # When the same container decides again (API Gateway did not have it cached)
    calls = _count_calls(lambda: handler.lambda_handler(event(token), None), 5)

    # Then the keys come from the container, and the denylist and client are read fresh, so a
    # change an admin just made (and flushed) cannot be answered from a stale copy
    assert calls == ["GetItem", "GetItem"] * 5


def test_given_a_state_cache_ttl_when_deciding_again_then_no_aws_call_is_made(
    kms: Kms, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operator chose to trade freshness for reads (context denylistCacheSeconds)
    monkeypatch.setenv("DENYLIST_CACHE_SECONDS", "30")
    import functions.authorizer.entry as entry
    import functions.authorizer.jwt_handler as module

    importlib.reload(entry)
    handler = importlib.reload(module)
    put_client()
    token = our_token(kms.current)
    handler.lambda_handler(event(token), None)

    # Then warm decisions reach neither DynamoDB nor KMS
    assert _count_calls(lambda: handler.lambda_handler(event(token), None), 10) == []
    monkeypatch.delenv("DENYLIST_CACHE_SECONDS")
    importlib.reload(entry)
    importlib.reload(module)


# -- an external issuer ----------------------------------------------------------------------


@pytest.fixture
def idp(monkeypatch: pytest.MonkeyPatch) -> Iterator[JwksServer]:
    # The identity provider is on loopback: allowlisted for the SSRF guard, as the local runtime does.
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8")
    server = JwksServer()
    yield server
    server.close()


IDP = "https://idp.partner.example"


def put_issuer(jwks_url: str, *, status: str = "active", algorithms: tuple[str, ...] = ("RS256",)) -> None:
    identifier = issuer_id(IDP)
    item = {
        **issuer_key(identifier),
        "issuer_id": {"S": identifier},
        "issuer": {"S": IDP},
        "jwks_url": {"S": jwks_url},
        "audiences": {"L": [{"S": "bank-api"}]},
        "algorithms": {"L": [{"S": a} for a in algorithms]},
        "allowed_scopes": {"L": [{"S": "banking:read"}]},
        "tier": {"S": "professional"},
        "status": {"S": status},
    }
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=TABLE, Item=item)


def test_given_an_external_issuer_when_its_token_is_authorized_then_the_subject_is_namespaced_and_scopes_narrowed(
    handler: ModuleType, idp: JwksServer
) -> None:
    put_issuer(idp.url)
    token = idp.token(IDP, scope="banking:read payments:write admin")

    context = handler.lambda_handler(event(token), None)["context"]

    assert context["client_id"] == f"{issuer_id(IDP)}:svc-42"
    assert context["scopes"] == "banking:read"
    assert context["tier"] == "professional"
    assert idp.fetches == 1


def test_given_an_external_issuer_when_its_jwks_goes_down_then_the_last_good_keys_still_verify(
    handler: ModuleType, idp: JwksServer
) -> None:
    put_issuer(idp.url)
    handler.lambda_handler(event(idp.token(IDP)), None)
    idp.failing = True

    assert handler.lambda_handler(event(idp.token(IDP)), None)["context"]["client_id"].endswith(":svc-42")


def test_given_a_disabled_or_unknown_issuer_when_authorized_then_401_unknown_issuer(
    handler: ModuleType, idp: JwksServer
) -> None:
    put_issuer(idp.url, status="disabled")

    assert refused(handler, event(idp.token(IDP))) == "unknown_issuer"
    assert refused(handler, event(idp.token("https://elsewhere.example"))) == "unknown_issuer"
    assert idp.fetches == 0


def test_given_an_external_token_with_the_wrong_audience_when_authorized_then_401(
    handler: ModuleType, idp: JwksServer
) -> None:
    put_issuer(idp.url)

    assert refused(handler, event(idp.token(IDP, aud="another-api"))) == "wrong_audience"


def test_given_our_issuer_claimed_by_an_external_key_when_authorized_then_401(
    handler: ModuleType, idp: JwksServer, kms: Kms
) -> None:
    # A partner's key cannot mint tokens in our name: our issuer's keys come only from KMS.
    put_client()
    token = idp.token(ISSUER, aud=AUDIENCE, sub="cl_pay")
    token_header = jwt.get_unverified_header(token)
    assert token_header["kid"] == idp.kid

    assert refused(handler, event(token)) in {"wrong_token_type", "unknown_kid"}


def test_given_an_issuer_allowing_two_families_when_a_header_names_the_other_family_then_401_not_a_crash(
    handler: ModuleType, idp: JwksServer
) -> None:
    # Given an issuer that signs with RSA and EC keys, and a JWKS holding its RSA key
    put_issuer(idp.url, algorithms=("ES256", "PS256", "RS256"))
    ec_key = ec.generate_private_key(ec.SECP256R1())

    # When a token says ES256 but names the RSA key (unauthenticated: anyone can write it)
    es256_on_rsa = idp.token(IDP, signer=ec_key, headers={"alg": "ES256"})

    # Then the authorizer refuses it (401), where PyJWT alone raised TypeError (a 500)
    assert refused(handler, event(es256_on_rsa)) == "alg_key_mismatch"
    # And the key's own family still verifies
    assert handler.lambda_handler(event(idp.token(IDP)), None)["context"]["client_id"].endswith(":svc-42")


@pytest.mark.parametrize("size", [10 * 1024, 100 * 1024])
def test_given_a_huge_bearer_token_when_authorized_then_401_token_too_large(
    handler: ModuleType, idp: JwksServer, size: int
) -> None:
    put_issuer(idp.url)
    huge = idp.token(IDP, padding="x" * size)

    assert refused(handler, event(huge)) == "token_too_large"
    assert idp.fetches == 0  # refused before any of it was decoded


@pytest.mark.parametrize(
    "jwks_url",
    [
        "https://169.254.169.254/latest/meta-data/jwks",
        "http://[::ffff:169.254.169.254]/jwks",
        "https://0xa9fea9fe/jwks",
    ],
)
def test_given_an_issuer_stored_with_a_refused_jwks_url_when_its_token_arrives_then_401_and_no_call(
    handler: ModuleType, idp: JwksServer, jwks_url: str
) -> None:
    # Given an issuer item written before registration checked the URL (or by hand)
    put_issuer(jwks_url)

    # Then the authorizer never calls it, and its tokens are refused
    assert refused(handler, event(idp.token(IDP))) == "jwks_unavailable"


def test_given_a_jwks_server_answering_a_compression_bomb_when_a_token_arrives_then_401(
    handler: ModuleType, idp: JwksServer
) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    inner = b"".join(packer.compress(b" " * (1024 * 1024)) for _ in range(32)) + packer.flush()
    outer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    idp.raw_body = outer.compress(inner) + outer.flush()
    idp.headers = {"Content-Encoding": "gzip, gzip"}
    put_issuer(idp.url)

    assert refused(handler, event(idp.token(IDP))) == "jwks_unavailable"
    assert idp.fetches == 1


@pytest.mark.parametrize("algorithms", [("HS256",), ()])
def test_given_an_issuer_item_the_authorizer_cannot_use_when_its_token_arrives_then_401_not_a_crash(
    handler: ModuleType, idp: JwksServer, algorithms: tuple[str, ...]
) -> None:
    # An item written by hand, or before the accepted algorithms narrowed
    put_issuer(idp.url, algorithms=algorithms)

    assert refused(handler, event(idp.token(IDP))) == "unknown_issuer"
    assert idp.fetches == 0
