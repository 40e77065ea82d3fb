"""Fetching an external issuer's JWKS (functions/authorizer/issuers.py): the cache lifetime its
answer announces, read from a real loopback server and honoured by the JWKS cache."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import formatdate

import pytest

from functions.authorizer.core import Denied
from functions.authorizer.issuers import cache_lifetime, fetch_jwks
from functions.authorizer.jwt_token import (
    DEFAULT_LIFETIME_S,
    MIN_LIFETIME_S,
    Issuer,
    JwksCache,
    verify_bearer,
)
from tests.jwks_server import JwksServer

NOW = 1_800_000_000.0
IDP = "https://idp.partner.example"


def _date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "lifetime"),
    [
        ({"Cache-Control": "max-age=120"}, 120.0),
        ({"Cache-Control": "public, max-age=3600, must-revalidate"}, 3600.0),
        ({"Cache-Control": 'max-age="90"'}, 90.0),
        ({"Cache-Control": "MAX-AGE=45"}, 45.0),
        ({"Cache-Control": "max-age=600", "Age": "100"}, 500.0),  # a CDN held it for 100 s already
        ({"Cache-Control": "no-store"}, 0.0),
        ({"Cache-Control": "no-cache, max-age=600"}, 0.0),
        ({"Cache-Control": 'no-cache="Set-Cookie", max-age=600'}, 0.0),
        ({"Cache-Control": "max-age=abc"}, 0.0),  # invalid: stale at once
        ({"Cache-Control": "max-age=-5"}, 0.0),
        ({"Cache-Control": "max-age=" + "9" * 5000}, 0.0),  # no int() of 5,000 digits
        ({"Cache-Control": "max-age=600", "Expires": _date(NOW + 60)}, 600.0),  # max-age wins
        ({"Expires": _date(NOW + 900), "Date": _date(NOW - 100)}, 1000.0),  # relative to Date
        ({"Expires": _date(NOW + 900)}, 900.0),  # no Date: relative to now
        ({"Expires": "0"}, 0.0),  # invalid Expires: already expired
        ({"Expires": "yesterday"}, 0.0),
        ({"Cache-Control": "public"}, None),
        ({}, None),
    ],
)
def test_the_cache_lifetime_an_answer_announces(headers: dict[str, str], lifetime: float | None) -> None:
    assert cache_lifetime(headers, NOW) == lifetime


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def idp(monkeypatch: pytest.MonkeyPatch) -> Iterator[JwksServer]:
    # The local runtime's allowlist: the SSRF guard lets the fetch reach loopback.
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8")
    server = JwksServer()
    yield server
    server.close()


def _verifier(idp: JwksServer, clock: Clock) -> tuple[dict[str, Issuer], JwksCache]:
    issuers = {IDP: Issuer(IDP, idp.url, ("bank-api",), ("RS256",))}
    return issuers, JwksCache(lambda url: fetch_jwks(lambda: None, url), clock=clock)


@pytest.mark.parametrize(
    ("cache_headers", "lifetime"),
    [
        ({"Cache-Control": "max-age=600"}, 600.0),
        ({"Cache-Control": "no-store"}, MIN_LIFETIME_S),
        ({"Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, MIN_LIFETIME_S),
        ({}, DEFAULT_LIFETIME_S),
    ],
)
def test_a_key_the_issuer_removed_stops_verifying_once_its_announced_lifetime_ends(
    idp: JwksServer, cache_headers: dict[str, str], lifetime: float
) -> None:
    # Given the issuer's JWKS announces how long it may be kept
    idp.headers = cache_headers
    clock = Clock()
    issuers, cache = _verifier(idp, clock)
    old_token = idp.token(IDP)
    assert verify_bearer(f"Bearer {old_token}", issuers, cache).client_id == "svc-42"

    # When it removes the key (a compromise), and no token names an unknown kid
    idp.keys = [JwksServer.public_jwk(idp.private, "idp-key-2")]

    # Then tokens of the removed key verify only until the lifetime ends, with no fetch before
    clock.now += lifetime - 1
    assert verify_bearer(f"Bearer {old_token}", issuers, cache).client_id == "svc-42"
    assert idp.fetches == 1
    clock.now += 1
    with pytest.raises(Denied) as refused:
        verify_bearer(f"Bearer {old_token}", issuers, cache)
    assert refused.value.reason == "unknown_kid"
    assert idp.fetches == 2
