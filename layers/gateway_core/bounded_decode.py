"""Content-Encoding decoding under a hard output cap, for every body the product receives from
others (upstream answers, an issuer's JWKS, webhook receivers' answers).

A decompression bomb is small on the wire and huge decoded, and stacking encodings
(`gzip, gzip`) multiplies the ratio: a few KB can hold a GiB. So nothing here decodes a whole
body at once. Each layer is a zlib stream asked for at most `STEP_BYTES` at a time
(`max_length`), its output is pushed straight into the next layer, and the bytes each layer has
produced are counted against the cap, so memory stays near the cap whatever the input claims.
The number of layers is capped too (urllib3 allows 5; nobody legitimately needs more than 2).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

# Encodings we decode. `br` and `zstd` are not among them: the gateway never advertises them, so
# an upstream that sends them anyway is refused rather than passed on undecodable.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
MAX_LAYERS = 2
STEP_BYTES = 64 * 1024


class DecodeRefused(Exception):
    """The body cannot be decoded within the limits. `code` says why: `too_large` (the decoded
    body passes the cap), `too_many_layers`, `unsupported_encoding` or `corrupt`."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def encodings_of(content_encoding: str) -> list[str]:
    """The codings of a Content-Encoding value in the order they were applied, `identity` left
    out, lower case (RFC 9110 section 8.4: a list, applied in order)."""
    return [c for c in (part.strip().lower() for part in content_encoding.split(",")) if c and c != "identity"]


class _Layer:
    """One zlib stream. `deflate` is meant to be zlib-wrapped (RFC 9110) but some servers send
    raw deflate: the first bytes decide which."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self.wbits = _WBITS[coding]
        self.stream: zlib._Decompress | None = None
        self.probed = coding != "deflate"
        self.produced = 0
        self.pending = b""  # a raw-deflate probe needs the first two bytes

    def _open(self, head: bytes) -> None:
        wbits = self.wbits
        if not self.probed:
            # A zlib header: CMF says deflate (low nibble 8) and CMF*256+FLG is a multiple of 31.
            zlib_wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
            wbits = zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS
            self.probed = True
        self.wbits = wbits
        self.stream = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterable[bytes]:
        """Decoded output for `data`, at most STEP_BYTES per piece, lazily."""
        if self.stream is None:
            data = self.pending + data
            if len(data) < 2 and self.coding == "deflate":
                self.pending = data
                return
            self.pending = b""
            self._open(data[:2])
        while True:
            assert self.stream is not None
            if self.stream.eof:
                # What follows the end of the stream: another gzip member (RFC 1952), padding, or junk.
                rest = self.stream.unused_data + data
                if self.coding == "deflate" or not rest.strip(b"\0"):
                    return  # trailing bytes after a deflate stream, or gzip's zero padding, are ignored
                self.stream = zlib.decompressobj(self.wbits)
                data = rest
            if not data:
                return
            try:
                piece = self.stream.decompress(data, STEP_BYTES)
            except zlib.error as error:
                raise DecodeRefused("corrupt", f"the {self.coding} data is corrupt") from error
            data = self.stream.unconsumed_tail
            if piece:
                yield piece

    def finish(self) -> None:
        if self.stream is None:
            if self.pending:
                raise DecodeRefused("corrupt", f"the {self.coding} data is truncated")
            return  # an empty body carries no data in any coding
        if not self.stream.eof:
            raise DecodeRefused("corrupt", f"the {self.coding} data is truncated")


class BoundedDecoder:
    """Decodes one body's Content-Encoding as its chunks arrive; never produces more than
    `limit` bytes from any layer, whatever the input."""

    def __init__(self, content_encoding: str, limit: int, max_layers: int = MAX_LAYERS) -> None:
        codings = encodings_of(content_encoding)
        if len(codings) > max_layers:
            raise DecodeRefused("too_many_layers", f"{len(codings)} content codings (at most {max_layers})")
        unknown = [c for c in codings if c not in _WBITS]
        if unknown:
            raise DecodeRefused("unsupported_encoding", f"unsupported content coding {unknown[0]!r}")
        self.limit = limit
        # Decoding undoes the codings in the reverse order of their application.
        self.layers = [_Layer(c) for c in reversed(codings)]
        self.output: list[bytes] = []
        self.size = 0

    def _push(self, index: int, data: bytes) -> None:
        if index == len(self.layers):
            self.size += len(data)
            if self.size > self.limit:
                raise DecodeRefused("too_large", f"the decoded body is larger than {self.limit} bytes")
            self.output.append(data)
            return
        layer = self.layers[index]
        for piece in layer.feed(data):
            layer.produced += len(piece)
            if layer.produced > self.limit:
                raise DecodeRefused("too_large", f"the decoded body is larger than {self.limit} bytes")
            self._push(index + 1, piece)

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self._push(0, chunk)

    def finish(self) -> bytes:
        """The whole decoded body; raises DecodeRefused("corrupt") when a stream is truncated."""
        for layer in self.layers:
            layer.finish()
        body = b"".join(self.output)
        self.output = [body]
        return body


def decode_body(chunks: bytes | Iterable[bytes], content_encoding: str, limit: int) -> bytes:
    """The decoded body of `chunks` (the raw bytes, or an iterable of raw chunks as they are read
    from the network), or DecodeRefused. The raw size is the caller's to cap."""
    decoder = BoundedDecoder(content_encoding, limit)
    for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
        decoder.feed(chunk)
    return decoder.finish()
