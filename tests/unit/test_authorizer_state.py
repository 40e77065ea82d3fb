"""What the authorizers keep per container and how they read certificates: client states and
issuer configurations with a TTL (misses too), the own issuer from settings, and the stdlib-only
certificate thumbprint that must agree with `cryptography`'s."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from functions.authorizer.client_state import ClientState, ClientStateCache, check_client
from functions.authorizer.core import Denied, Forbidden
from functions.authorizer.issuers import IssuerDirectory, own_issuer
from gateway_core.cert_binding import NotACertificate, der_from_pem, fingerprint_hex, pem_x5t_s256
from gateway_core.issuer_keys import issuer_id, issuer_key
from gateway_core.settings import load_settings
from tests.certificates import make_certificate

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeDynamo:
    """get_item only, counting reads, answering from a dict of items keyed by PK."""

    def __init__(self, items: dict[str, dict[str, Any]] | None = None) -> None:
        self.items = items or {}
        self.reads = 0

    def get_item(self, **request: Any) -> dict[str, Any]:
        self.reads += 1
        item = self.items.get(request["Key"]["PK"]["S"])
        return {"Item": item} if item else {}


def client_item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "client_id": {"S": "cl_1"},
        "status": {"S": "active"},
        "tier": {"S": "basic"},
        "allowed_scopes": {"L": [{"S": "banking:read"}]},
        "ip_allowlist": {"L": []},
    }
    item.update(overrides)
    return item


# -- certificates ---------------------------------------------------------------------------


def test_the_stdlib_thumbprint_matches_the_x509_one() -> None:
    pem, fingerprint = make_certificate("pay.example")
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)

    assert fingerprint_hex(der_from_pem(pem)) == fingerprint
    assert pem_x5t_s256(pem) == base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


@pytest.mark.parametrize(
    "pem",
    ["", "not a pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"],
    ids=["empty", "text", "not-der"],
)
def test_what_is_not_a_certificate_has_no_thumbprint(pem: str) -> None:
    assert pem_x5t_s256(pem) == ""
    with pytest.raises(NotACertificate):
        der_from_pem(pem)


# -- client states --------------------------------------------------------------------------


def test_client_states_are_read_once_per_ttl_and_misses_are_cached_too() -> None:
    clock, dynamo = Clock(), FakeDynamo({"CLIENT#cl_1": client_item()})
    cache = ClientStateCache(ttl_s=30, clock=clock)

    first = cache.get(dynamo, "t", "cl_1")
    cache.get(dynamo, "t", "cl_1")
    assert cache.get(dynamo, "t", "cl_gone") is None
    assert cache.get(dynamo, "t", "cl_gone") is None
    assert dynamo.reads == 2
    assert first is not None
    assert (first.tier, first.allowed_scopes) == ("basic", ("banking:read",))

    # When the TTL has passed and the client was suspended meanwhile
    dynamo.items["CLIENT#cl_1"] = client_item(status={"S": "suspended"})
    clock.now += 31
    again = cache.get(dynamo, "t", "cl_1")
    assert again is not None
    assert again.status == "suspended"
    assert dynamo.reads == 3


def test_client_checks_refuse_with_the_right_kind() -> None:
    active = ClientState("cl_1", "active", None, ("10.0.0.0/8", "2001:db8::/32"), "basic", ())

    assert check_client(active, "cl_1", "10.1.2.3", NOW) is active
    assert check_client(active, "cl_1", "2001:db8::7", NOW) is active
    with pytest.raises(Denied):
        check_client(None, "cl_1", "10.1.2.3", NOW)
    for state, source, reason in (
        (replace(active, status="suspended"), "10.1.2.3", "client_not_active"),
        (replace(active, expires_at="2026-11-23T11:59:59Z"), "10.1.2.3", "client_expired"),
        (active, "192.0.2.1", "ip_not_allowed"),
    ):
        with pytest.raises(Forbidden) as refused:
            check_client(state, "cl_1", source, NOW)
        assert refused.value.reason == reason


# -- issuers --------------------------------------------------------------------------------


def issuer_item(iss: str, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        **issuer_key(issuer_id(iss)),
        "issuer_id": {"S": issuer_id(iss)},
        "issuer": {"S": iss},
        "jwks_url": {"S": "https://idp.example/jwks"},
        "audiences": {"L": [{"S": "bank-api"}]},
        "algorithms": {"L": [{"S": "ES256"}]},
        "allowed_scopes": {"L": [{"S": "data:read"}]},
        "tier": {"S": "professional"},
        "status": {"S": "active"},
    }
    item.update(overrides)
    return item


def test_the_own_issuer_comes_from_settings_and_needs_no_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_ISSUER", "https://gw.example/prod")
    monkeypatch.setenv("TOKEN_SIGNING_KEY_ID", "arn:key/new")
    monkeypatch.setenv("TOKEN_VERIFY_KEY_IDS", "arn:key/new,arn:key/old")
    own = own_issuer(load_settings())
    assert own is not None
    dynamo = FakeDynamo()

    found = IssuerDirectory(ttl_s=30).find(dynamo, "t", own, "https://gw.example/prod")

    assert found is own
    assert (own.jwks_url, own.required_typ, own.own) == ("kms:arn:key/new,arn:key/old", "at+jwt", True)
    assert dynamo.reads == 0


def test_external_issuers_are_cached_per_ttl_and_disabled_ones_are_unknown() -> None:
    iss = "https://idp.example"
    clock = Clock()
    dynamo = FakeDynamo({f"ISSUER#{issuer_id(iss)}": issuer_item(iss)})
    directory = IssuerDirectory(ttl_s=30, clock=clock)

    found = directory.find(dynamo, "t", None, iss)
    directory.find(dynamo, "t", None, iss)
    assert found is not None
    assert (found.algorithms, found.allowed_scopes, found.tier) == (("ES256",), ("data:read",), "professional")
    assert dynamo.reads == 1

    dynamo.items[f"ISSUER#{issuer_id(iss)}"] = issuer_item(iss, status={"S": "disabled"})
    clock.now += 31
    assert directory.find(dynamo, "t", None, iss) is None


def test_an_id_collision_cannot_lend_another_issuers_configuration() -> None:
    # Ids are hash prefixes: the stored issuer URL must equal the token's `iss` exactly.
    iss = "https://idp.example"
    dynamo = FakeDynamo({f"ISSUER#{issuer_id(iss)}": issuer_item("https://someone-else.example")})

    assert IssuerDirectory(ttl_s=30).find(dynamo, "t", None, iss) is None
