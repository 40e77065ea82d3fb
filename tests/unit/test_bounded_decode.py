"""Decoding under a hard output cap: ordinary bodies decode exactly, every kind of bomb (one layer,
stacked layers of either coding, many gzip members, many layers) is refused at the cap with
memory near the cap, and broken data is refused, never half-returned."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from gateway_core.bounded_decode import BoundedDecoder, DecodeRefused, decode_body, encodings_of

LIMIT = 5 * 1024 * 1024
MIB = 1024 * 1024


def _gzip_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        yield packer.compress(chunk)
    yield packer.flush()


def _deflate(data: bytes, raw: bool = False) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _zeros(total: int) -> Iterator[bytes]:
    block = bytes(MIB)
    for _ in range(total // MIB):
        yield block


@pytest.fixture(scope="module")
def stacked_gzip_gib() -> bytes:
    """1 GiB of zeros, gzipped twice: about 1 MiB after the first layer, a few KB after the second."""
    inner = b"".join(_gzip_stream(_zeros(1024 * MIB)))
    return gzip.compress(inner, 9)


def test_plain_codings_decode_exactly() -> None:
    body = b'{"amount": "12.50"}' * 1000
    assert decode_body(gzip.compress(body), "gzip", LIMIT) == body
    assert decode_body(gzip.compress(body), "x-gzip", LIMIT) == body
    assert decode_body(_deflate(body), "deflate", LIMIT) == body
    assert decode_body(_deflate(body, raw=True), "deflate", LIMIT) == body  # servers that send raw deflate
    assert decode_body(body, "", LIMIT) == body
    assert decode_body(body, "identity", LIMIT) == body
    assert decode_body(gzip.compress(_deflate(body)), "deflate, gzip", LIMIT) == body
    assert decode_body(b"", "gzip", LIMIT) == b""


def test_chunks_of_any_size_decode_the_same() -> None:
    body = bytes(range(256)) * 4000
    wire = gzip.compress(gzip.compress(body))
    for size in (1, 7, 4096):
        chunks = [wire[i : i + size] for i in range(0, len(wire), size)]
        assert decode_body(chunks, "gzip, gzip", LIMIT) == body


def test_concatenated_gzip_members_are_one_body() -> None:
    assert decode_body(gzip.compress(b"first ") + gzip.compress(b"second"), "gzip", LIMIT) == b"first second"


def test_a_body_exactly_at_the_cap_passes_and_one_byte_more_is_refused() -> None:
    assert len(decode_body(gzip.compress(bytes(1000)), "gzip", 1000)) == 1000
    with pytest.raises(DecodeRefused) as refused:
        decode_body(gzip.compress(bytes(1001)), "gzip", 1000)
    assert refused.value.code == "too_large"


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", lambda: b"".join(_gzip_stream(_zeros(64 * MIB)))),
        ("deflate", lambda: _deflate(bytes(64 * MIB))),
        ("deflate, deflate", lambda: _deflate(_deflate(bytes(64 * MIB)))),
        ("gzip, gzip", lambda: gzip.compress(b"".join(_gzip_stream(_zeros(64 * MIB))))),
        # Many small gzip members, each under the cap, together over it.
        ("gzip", lambda: gzip.compress(bytes(MIB)) * 64),
    ],
    ids=["gzip", "deflate", "deflate-deflate", "gzip-gzip", "gzip-members"],
)
def test_every_bomb_shape_is_refused_at_the_cap(encoding: str, wire: object) -> None:
    data = wire()  # type: ignore[operator]
    with pytest.raises(DecodeRefused) as refused:
        decode_body(data, encoding, LIMIT)
    assert refused.value.code == "too_large"


def test_a_stacked_gzip_gigabyte_costs_less_than_20_mib(stacked_gzip_gib: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(DecodeRefused) as refused:
            decode_body(
                [stacked_gzip_gib[i : i + 65536] for i in range(0, len(stacked_gzip_gib), 65536)], "gzip, gzip", LIMIT
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.code == "too_large"
    assert peak < 20 * MIB, peak


def test_more_layers_than_allowed_are_refused_before_decoding() -> None:
    with pytest.raises(DecodeRefused) as refused:
        BoundedDecoder("gzip, gzip, gzip", LIMIT)
    assert refused.value.code == "too_many_layers"
    with pytest.raises(DecodeRefused):
        BoundedDecoder("gzip," * 50, LIMIT)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br", "x-custom"])
def test_codings_we_do_not_decode_are_refused(encoding: str) -> None:
    with pytest.raises(DecodeRefused) as refused:
        decode_body(b"whatever", encoding, LIMIT)
    assert refused.value.code == "unsupported_encoding"


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", gzip.compress(b"hello world" * 100)[:-12]),  # truncated
        ("gzip", b"not gzip at all"),
        ("deflate", b"\x78\x9c garbage"),
        ("gzip", gzip.compress(b"ok") + b"trailing junk"),
        ("gzip, gzip", gzip.compress(b"only one layer")),
    ],
)
def test_broken_data_is_refused_as_corrupt(encoding: str, wire: bytes) -> None:
    with pytest.raises(DecodeRefused) as refused:
        decode_body(wire, encoding, LIMIT)
    assert refused.value.code == "corrupt"


def test_encodings_are_read_as_a_list_in_order() -> None:
    assert encodings_of(" GZIP , identity,deflate ") == ["gzip", "deflate"]
    assert encodings_of("") == []
