"""Fetching an external issuer's JWKS (functions/authorizer/issuers.py) from a real loopback
server: the cache lifetime its answer announces (honoured by the JWKS cache), the SSRF guard on
the URL and the connection, no redirects, and the body's size and Content-Encoding bounded."""

from __future__ import annotations

import json
import socket
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any

import pytest

from functions.authorizer.core import Denied
from functions.authorizer.issuers import JwksFetchFailed, cache_lifetime, fetch_jwks
from functions.authorizer.jwt_token import (
    DEFAULT_LIFETIME_S,
    MIN_LIFETIME_S,
    Issuer,
    JwksCache,
    verify_bearer,
)
from gateway_core.bounded_decode import DecodeRefused
from gateway_core.ssrf import BlockedDestination
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


# -- every fetch goes through the SSRF guard -----------------------------------------------------

REFUSED_JWKS_URLS = [
    "https://169.254.169.254/latest/meta-data/jwks",  # the cloud metadata endpoint
    "http://169.254.169.254/jwks",
    "https://10.0.0.8/jwks",
    "https://192.168.1.1/jwks",
    "https://100.64.0.1/jwks",  # shared address space, used inside clouds
    "https://[fec0::1]/jwks",  # site-local IPv6
    "https://[fd00:ec2::254]/jwks",  # the metadata endpoint over IPv6
    "https://[::ffff:169.254.169.254]/jwks",  # IPv4-mapped
    "https://2852039166/jwks",  # 169.254.169.254 as one decimal number
    "https://0251.0376.0251.0376/jwks",  # ... in octal
    "https://0xa9.0xfe.0xa9.0xfe/jwks",  # ... in hex
    "https://169.254.43518/jwks",  # ... in the two-part form
    "https://metadata.google.internal/jwks",
    "https://localhost/jwks",
]


@pytest.mark.parametrize("url", REFUSED_JWKS_URLS)
def test_a_jwks_url_the_ssrf_policy_refuses_is_never_fetched(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    # Whatever the stored configuration says (an issuer registered before the rule, say)
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8")
    with pytest.raises(JwksFetchFailed, match="JWKS URL is refused"):
        fetch_jwks(lambda: None, url)


def test_loopback_is_refused_unless_the_operator_allowlisted_it(
    idp: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment without an allowlist (the AWS default)
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "")
    with pytest.raises(JwksFetchFailed, match="JWKS URL is refused"):
        fetch_jwks(lambda: None, idp.url)
    assert idp.fetches == 0
    # And with loopback allowlisted (the local runtime), the same URL is fetched
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8")
    assert fetch_jwks(lambda: None, idp.url).document == {"keys": idp.keys}
    assert idp.fetches == 1


def test_a_public_name_that_resolves_to_a_refused_address_is_never_connected(
    idp: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a name that passes the URL check but resolves to loopback (DNS rebinding, or a
    # partner's name taken over), in a deployment that allows plaintext but no private range
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "")
    monkeypatch.setenv("UPSTREAM_REQUIRE_HTTPS", "false")
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "jwks.partner.example":
            return real_getaddrinfo("127.0.0.1", port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    port = idp.url.split(":")[2].split("/")[0]

    # Then the guarded connection refuses it after resolving, and no request reaches the server
    with pytest.raises(BlockedDestination):
        fetch_jwks(lambda: None, f"http://jwks.partner.example:{port}/jwks")
    assert idp.fetches == 0


def test_a_redirect_is_not_followed(idp: JwksServer) -> None:
    elsewhere = JwksServer()
    try:
        idp.status = 302
        idp.headers = {"Location": elsewhere.url}
        with pytest.raises(JwksFetchFailed, match="302"):
            fetch_jwks(lambda: None, idp.url)
        assert elsewhere.fetches == 0
    finally:
        elsewhere.close()


# -- the body: raw bytes capped, Content-Encoding decoded under a small cap ---------------------


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data, 9)


@pytest.fixture(scope="module")
def gzip_gzip_bomb() -> bytes:
    """64 MiB of JSON whitespace, gzipped twice: a few KB on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * (1024 * 1024)
    inner = b"".join(packer.compress(chunk) for _ in range(64)) + packer.flush()
    return _gzip(inner)


def test_a_stacked_gzip_bomb_is_refused_with_bounded_memory(idp: JwksServer, gzip_gzip_bomb: bytes) -> None:
    idp.raw_body = gzip_gzip_bomb
    idp.headers = {"Content-Encoding": "gzip, gzip"}
    assert len(gzip_gzip_bomb) < 64 * 1024

    tracemalloc.start()
    try:
        with pytest.raises(DecodeRefused) as refused:
            fetch_jwks(lambda: None, idp.url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert refused.value.code == "too_large"
    # Decoded whole, the body is 64 MiB; decoding stops at the 1 MiB cap
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    ("encode", "content_encoding"),
    [
        (lambda b: _gzip(_gzip(_gzip(b))), "gzip, gzip, gzip"),
        (lambda b: _deflate(_deflate(_deflate(b))), "deflate, deflate, deflate"),
        (lambda b: _gzip(_deflate(_gzip(b))), "gzip,deflate,gzip"),
    ],
)
def test_too_many_content_codings_are_refused(
    idp: JwksServer, encode: Callable[[bytes], bytes], content_encoding: str
) -> None:
    idp.raw_body = encode(json.dumps({"keys": idp.keys}).encode())
    idp.headers = {"Content-Encoding": content_encoding}
    with pytest.raises(DecodeRefused) as refused:
        fetch_jwks(lambda: None, idp.url)
    assert refused.value.code == "too_many_layers"


@pytest.mark.parametrize(
    ("encode", "content_encoding"),
    [
        (_gzip, "gzip"),
        (_deflate, "deflate"),
        (lambda b: _gzip(_deflate(b)), "deflate, gzip"),
        (lambda b: b, "identity"),
    ],
)
def test_an_encoded_jwks_within_the_limits_is_decoded(
    idp: JwksServer, encode: Callable[[bytes], bytes], content_encoding: str
) -> None:
    idp.raw_body = encode(json.dumps({"keys": idp.keys}).encode())
    idp.headers = {"Content-Encoding": content_encoding}
    assert fetch_jwks(lambda: None, idp.url).document == {"keys": idp.keys}


def test_an_answer_over_the_raw_cap_is_refused(idp: JwksServer) -> None:
    idp.raw_body = json.dumps({"keys": idp.keys, "padding": "x" * (300 * 1024)}).encode()
    with pytest.raises(JwksFetchFailed, match="larger"):
        fetch_jwks(lambda: None, idp.url)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"keys"', b"not json", b"\xff\xfe"])
def test_an_answer_that_is_not_a_json_object_is_refused(idp: JwksServer, body: bytes) -> None:
    idp.raw_body = body
    with pytest.raises((JwksFetchFailed, ValueError)):
        fetch_jwks(lambda: None, idp.url)
