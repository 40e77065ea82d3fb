"""Token request parsing and scope narrowing (functions/routes/logic/oauth.py), RFC 6749."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

import pytest

from functions.routes.logic.catalog import RateLimits
from functions.routes.logic.certificates import Certificate
from functions.routes.logic.clients import Client
from functions.routes.logic.oauth import (
    OAuthError,
    TokenRequest,
    access_token_claims,
    authenticate,
    certificate_confirmation,
    granted_scopes,
    parse_token_request,
)
from gateway_core.cert_binding import pem_x5t_s256
from gateway_core.clock import iso
from gateway_core.secrets_hashing import hash_secret
from tests.certificates import make_certificate
from tests.unit.factories import make_client

FORM = "application/x-www-form-urlencoded"


def _basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _client(**overrides: object) -> Client:
    return make_client(**{**overrides})


def _error(content_type: str, body: str, authorization: str | None) -> OAuthError:
    with pytest.raises(OAuthError) as raised:
        parse_token_request(content_type, body, authorization)
    return raised.value


def test_basic_credentials_are_form_decoded() -> None:
    request = parse_token_request(FORM, "grant_type=client_credentials", _basic("cl_1", "s:e cr+et"))
    assert (request.client_id, request.client_secret, request.auth_method) == (
        "cl_1",
        "s:e cr+et",
        "client_secret_basic",
    )


def test_post_credentials_and_scope() -> None:
    request = parse_token_request(
        FORM, "grant_type=client_credentials&client_id=cl_1&client_secret=s&scope=data%3Aread", None
    )
    assert (request.client_id, request.client_secret, request.scope, request.auth_method) == (
        "cl_1",
        "s",
        "data:read",
        "client_secret_post",
    )


@pytest.mark.parametrize(
    ("content_type", "body", "authorization", "code", "status"),
    [
        ("application/json", '{"grant_type":"client_credentials"}', None, "invalid_request", 400),
        (
            FORM,
            "grant_type=client_credentials&client_id=cl_1&client_secret=s",
            _basic("cl_1", "s"),
            "invalid_request",
            400,
        ),
        (FORM, "grant_type=client_credentials", None, "invalid_client", 401),
        (FORM, "grant_type=client_credentials&client_id=cl_1", None, "invalid_client", 401),
        (FORM, "grant_type=client_credentials", "Basic !!!notbase64", "invalid_client", 401),
        (
            FORM,
            "grant_type=client_credentials",
            "Basic " + base64.b64encode(b"no-colon").decode(),
            "invalid_client",
            401,
        ),
        (FORM, "client_id=cl_1&client_secret=s", None, "invalid_request", 400),
        (FORM, "grant_type=a&grant_type=b&client_id=cl_1&client_secret=s", None, "invalid_request", 400),
    ],
)
def test_malformed_requests_get_the_rfc_6749_error(
    content_type: str, body: str, authorization: str | None, code: str, status: int
) -> None:
    error = _error(content_type, body, authorization)
    assert (error.error, error.status) == (code, status)


def test_scopes_default_to_all_allowed_and_narrow_on_request() -> None:
    client = _client()
    assert granted_scopes(client, None) == ["banking:read", "data:read"]
    assert granted_scopes(client, "  ") == ["banking:read", "data:read"]
    assert granted_scopes(client, "data:read") == ["data:read"]
    with pytest.raises(OAuthError) as raised:
        granted_scopes(client, "data:read admin")
    assert raised.value.error == "invalid_scope"


def test_claims_last_one_hour_and_carry_what_the_authorizer_needs() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    claims = access_token_claims(
        _client(rate_limits=RateLimits(1, 2, 3)), ["data:read"], issuer="https://i", audience="aud", now=now
    )
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"] == int(now.timestamp())
    assert (claims["iss"], claims["aud"], claims["sub"], claims["client_id"]) == ("https://i", "aud", "cl_1", "cl_1")
    assert (claims["scope"], claims["tier"]) == ("data:read", "basic")
    assert "cnf" not in claims
    bound = access_token_claims(_client(), [], issuer="i", audience="a", now=now, cnf={"x5t#S256": "abc"})
    assert bound["cnf"] == {"x5t#S256": "abc"}


# -- RFC 8705: client certificates at the token endpoint ----------------------------------------


class _Certificates:
    """An in-memory certificate registry (the CertificateStore protocol, reads only)."""

    def __init__(self, *certificates: Certificate) -> None:
        self.by_fingerprint = {c.fingerprint: c for c in certificates}

    def get(self, fingerprint: str) -> Certificate | None:
        return self.by_fingerprint.get(fingerprint)

    def create(self, certificate: Certificate, actor: object) -> None:
        raise AssertionError("read only")

    def list_for_client(self, client_id: str) -> list[Certificate]:
        raise AssertionError("read only")

    def replace(self, before: Certificate, after: Certificate, action: str, actor: object) -> None:
        raise AssertionError("read only")


def _registered(pem: str, fingerprint: str, **overrides: object) -> Certificate:
    values: dict[str, object] = {
        "fingerprint": fingerprint,
        "client_id": "cl_1",
        "subject": "CN=x",
        "issuer": "CN=x",
        "serial_number": "1",
        "not_before": "2026-01-01T00:00:00.000Z",
        "not_after": "2027-01-01T00:00:00.000Z",
        "status": "active",
        "created_at": "2026-01-01T00:00:00.000Z",
        "revoked_at": None,
    }
    values.update(overrides)
    return Certificate(**values)  # type: ignore[arg-type]


NOW = datetime(2026, 11, 23, tzinfo=UTC)


def test_a_client_id_with_a_certificate_and_no_secret_is_tls_client_auth() -> None:
    request = parse_token_request(FORM, "grant_type=client_credentials&client_id=cl_1", None, has_certificate=True)
    assert (request.client_id, request.client_secret, request.auth_method) == ("cl_1", "", "tls_client_auth")


def test_a_registered_active_certificate_binds_the_token_by_its_sha256_thumbprint() -> None:
    pem, fingerprint = make_certificate("pay.example")
    confirmation = certificate_confirmation(_Certificates(_registered(pem, fingerprint)), _client(), pem, NOW)
    assert confirmation == {"x5t#S256": pem_x5t_s256(pem)}


@pytest.mark.parametrize(
    "overrides",
    [{"client_id": "cl_other"}, {"status": "revoked"}, {"not_after": "2026-02-01T00:00:00.000Z"}, None],
    ids=["another-clients", "revoked", "expired", "unregistered"],
)
def test_a_certificate_that_cannot_bind_is_refused_rather_than_ignored(overrides: dict[str, object] | None) -> None:
    pem, fingerprint = make_certificate("pay.example")
    registry = _Certificates() if overrides is None else _Certificates(_registered(pem, fingerprint, **overrides))
    with pytest.raises(OAuthError) as raised:
        certificate_confirmation(registry, _client(), pem, NOW)
    assert (raised.value.error, raised.value.status) == ("invalid_client", 401)


# -- client secret rotation: the previous secret works until its grace ends ---------------------

OLD_SECRET, NEW_SECRET = "gs_test_the-old-secret", "gs_test_the-new-secret"
ROTATED_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
GRACE_END = ROTATED_AT + timedelta(hours=24)


class _Clients:
    def __init__(self, client: Client) -> None:
        self.client = client

    def get(self, client_id: str) -> Client | None:
        return self.client if client_id == self.client.client_id else None


def _rotated_client(**overrides: object) -> Client:
    values: dict[str, object] = {
        "client_id": "cl_1",
        "secret_hash": hash_secret(NEW_SECRET),
        "previous_secret_hash": hash_secret(OLD_SECRET),
        "grace_until": iso(GRACE_END),
    }
    return make_client(**{**values, **overrides})


def _authenticate(client: Client, secret: str, now: datetime) -> Client:
    request = TokenRequest("client_credentials", client.client_id, secret, None, "client_secret_basic")
    return authenticate(_Clients(client), request, now)[0]


@pytest.mark.parametrize(
    "now",
    [ROTATED_AT, ROTATED_AT + timedelta(hours=23, minutes=59), GRACE_END - timedelta(milliseconds=1)],
)
def test_during_the_grace_both_the_new_and_the_previous_secret_authenticate(now: datetime) -> None:
    client = _rotated_client()
    assert _authenticate(client, NEW_SECRET, now) == client
    assert _authenticate(client, OLD_SECRET, now) == client


@pytest.mark.parametrize("now", [GRACE_END, GRACE_END + timedelta(seconds=1), GRACE_END + timedelta(days=40)])
def test_from_the_end_of_the_grace_only_the_new_secret_authenticates(now: datetime) -> None:
    client = _rotated_client()
    assert _authenticate(client, NEW_SECRET, now) == client
    with pytest.raises(OAuthError) as refused:
        _authenticate(client, OLD_SECRET, now)
    assert (refused.value.error, refused.value.status) == ("invalid_client", 401)


@pytest.mark.parametrize(
    "overrides",
    [
        {"previous_secret_hash": None, "grace_until": None},  # rotated without grace
        {"grace_until": None},  # a hash without an end never works
        {"previous_secret_hash": None},
    ],
)
def test_without_a_complete_grace_record_the_previous_secret_is_refused(overrides: dict[str, object]) -> None:
    client = _rotated_client(**overrides)
    with pytest.raises(OAuthError) as refused:
        _authenticate(client, OLD_SECRET, ROTATED_AT)
    assert refused.value.error == "invalid_client"
    assert _authenticate(client, NEW_SECRET, ROTATED_AT) == client


def test_during_the_grace_a_wrong_secret_is_still_refused() -> None:
    with pytest.raises(OAuthError) as refused:
        _authenticate(_rotated_client(), "gs_test_neither", ROTATED_AT)
    assert refused.value.error == "invalid_client"
