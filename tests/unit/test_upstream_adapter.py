"""The upstream adapter (functions/routes/dal/upstream.py) against real loopback servers: an
answer's Content-Encoding is decoded as it is read, under the response cap, whatever the upstream
stacks or claims; what cannot be decoded within the limits is a 502 problem, never a crash."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from ipaddress import ip_network

import pytest

from functions.routes.dal.upstream import MAX_RESPONSE_BYTES, UpstreamClient
from functions.routes.logic.proxy_ports import UpstreamAnswer
from gateway_core.errors import UpstreamError
from gateway_core.ssrf import SsrfPolicy
from tests.upstreams import Reply, ScriptedUpstream, encoded, zeros_bomb

LOOPBACK = SsrfPolicy(allow_networks=(ip_network("127.0.0.0/8"),), require_https=False)
BODY = b'{"amount":"1234.50","currency":"EUR"}' * 50
MIB = 1 << 20


def reply(body: bytes, content_encoding: str) -> Reply:
    return Reply(200, body, "application/json", {"Content-Encoding": content_encoding})


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream()
    yield server
    server.close()


def call(upstream: ScriptedUpstream, path: str, method: str = "GET") -> UpstreamAnswer:
    return UpstreamClient(LOOPBACK).send(method, upstream.url + path, {}, b"", 5.0)


@pytest.mark.parametrize(
    "codings",
    [("gzip",), ("deflate",), ("gzip", "gzip"), ("deflate", "gzip"), ("gzip", "deflate"), ()],
    ids=lambda c: ", ".join(c) or "identity",
)
def test_answers_in_one_or_two_codings_are_decoded(upstream: ScriptedUpstream, codings: tuple[str, ...]) -> None:
    upstream.replies["/x"] = reply(encoded(BODY, *codings), ", ".join(codings) or "identity")
    answer = call(upstream, "/x")
    assert (answer.status, answer.body) == (200, BODY)


def test_raw_deflate_and_codings_in_two_headers_are_decoded(upstream: ScriptedUpstream) -> None:
    import zlib

    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    upstream.replies["/raw"] = reply(raw.compress(BODY) + raw.flush(), "deflate")
    assert call(upstream, "/raw").body == BODY


def test_an_empty_encoded_answer_is_empty(upstream: ScriptedUpstream) -> None:
    upstream.replies["/empty"] = Reply(204, b"", "application/json", {"Content-Encoding": "gzip"})
    upstream.replies["/head"] = reply(encoded(BODY, "gzip"), "gzip")
    assert call(upstream, "/empty").body == b""
    assert call(upstream, "/head", "HEAD").body == b""


@pytest.mark.parametrize(
    "codings",
    [("gzip",), ("deflate",), ("gzip", "gzip"), ("deflate", "deflate"), ("gzip", "deflate")],
    ids=", ".join,
)
def test_a_decompression_bomb_is_502_too_large_and_costs_little_memory(
    upstream: ScriptedUpstream, codings: tuple[str, ...]
) -> None:
    # 64 MiB of zeros, a dozen times the cap: tens of KB on the wire, a few hundred bytes stacked.
    upstream.replies["/bomb"] = reply(zeros_bomb(64 * MIB, *codings), ", ".join(codings))
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamError) as refused:
            call(upstream, "/bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (refused.value.status, refused.value.code) == (502, "upstream_too_large")
    assert peak < MAX_RESPONSE_BYTES + 8 * MIB  # the decoded cap and a few read buffers, not the bomb


def test_an_answer_just_under_the_cap_is_decoded_whole(upstream: ScriptedUpstream) -> None:
    body = b"a" * (MAX_RESPONSE_BYTES - 10)
    upstream.replies["/big"] = reply(encoded(body, "gzip", "gzip"), "gzip, gzip")
    assert call(upstream, "/big").body == body


@pytest.mark.parametrize(
    ("body", "content_encoding"),
    [
        (b"this is not gzip at all", "gzip"),
        (encoded(BODY, "gzip")[:-20], "gzip"),  # truncated
        (encoded(BODY, "gzip"), "deflate"),  # another coding than it says
        (encoded(BODY, "gzip"), "gzip, gzip"),  # fewer layers than it says
        (encoded(BODY, "gzip", "gzip", "gzip"), "gzip, gzip, gzip"),  # more layers than anyone needs
        (BODY, "br"),  # never advertised, cannot be decoded here
        (BODY, "zstd"),
        (BODY, "compress"),
        (BODY, "gzip;q=1"),
    ],
    ids=["not-gzip", "truncated", "mislabelled", "missing-layer", "three-layers", "br", "zstd", "compress", "junk"],
)
def test_an_answer_that_cannot_be_decoded_is_502_undecodable(
    upstream: ScriptedUpstream, body: bytes, content_encoding: str
) -> None:
    upstream.replies["/bad"] = reply(body, content_encoding)
    with pytest.raises(UpstreamError) as refused:
        call(upstream, "/bad")
    assert (refused.value.status, refused.value.code) == (502, "upstream_undecodable")
    # The connection is not reused mid-answer: the next call is answered normally.
    upstream.replies["/ok"] = reply(encoded(BODY, "gzip"), "gzip")
    assert call(upstream, "/ok").body == BODY


def test_a_raw_answer_over_the_cap_is_refused_before_it_is_decoded(upstream: ScriptedUpstream) -> None:
    import os

    noise = os.urandom(MAX_RESPONSE_BYTES + 1024)  # random bytes do not compress
    upstream.replies["/noise"] = reply(encoded(noise, "gzip"), "gzip")
    with pytest.raises(UpstreamError) as refused:
        call(upstream, "/noise")
    assert refused.value.code == "upstream_too_large"
