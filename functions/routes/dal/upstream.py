"""Calls to upstream services: one pooled urllib3 pool manager per container, behind the SSRF guard
(every connection goes to an address checked after resolution, pinned against DNS rebinding),
no redirects followed (a 3xx goes back to the caller), no proxies from the environment, no
retries (the proxy decides those), and a cap on the answer's size (a Lambda response carries at
most 6 MB). The answer is read raw, capped, and its Content-Encoding decoded as it arrives by
gateway_core.bounded_decode under the same cap, so a decompression bomb (stacked `gzip, gzip`
included) costs what the cap allows, not what it expands to. urllib3's failures become the
port's (functions/routes/logic/proxy_ports.py)."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout  # urllib3's own, not the builtin
from urllib3.util.timeout import Timeout

from functions.routes.logic.proxy_ports import (
    UpstreamAnswer,
    UpstreamConnectFailed,
    UpstreamRequestInvalid,
    UpstreamTimedOut,
    UpstreamTransportFailed,
)
from gateway_core.bounded_decode import BoundedDecoder, DecodeRefused
from gateway_core.errors import UpstreamError
from gateway_core.ssrf import BlockedDestination, SsrfPolicy, canonical_host
from gateway_core.ssrf_client import guarded_pool_manager

__all__ = ["UpstreamAnswer", "UpstreamClient", "upstream_client"]

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024


class UpstreamClient:
    def __init__(self, policy: SsrfPolicy | None = None) -> None:
        self.policy = policy or SsrfPolicy.from_env()
        self.pools = guarded_pool_manager(self.policy, timeout=10.0, maxsize=50)

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float) -> UpstreamAnswer:
        """One attempt. Raises UpstreamTimedOut, UpstreamConnectFailed, UpstreamRequestInvalid,
        UpstreamTransportFailed, BlockedDestination or UpstreamError (upstream_too_large); an
        answer of any status is returned."""
        started = time.monotonic()
        url = _guarded_url(url)
        try:
            response = self.pools.urlopen(
                method,
                url,
                body=body or None,
                headers=headers,
                timeout=Timeout(connect=timeout, read=timeout),
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,  # decoded by _read, under the cap
            )
        except ValueError as error:  # a header, the method or the URL refused before sending
            raise UpstreamRequestInvalid(str(error)) from error
        except HTTPError as error:
            raise _failure(error) from error
        try:
            return UpstreamAnswer(
                response.status,
                [(name.lower(), value) for name, value in response.headers.iteritems()],
                _read(response, started, timeout),
            )
        except DecodeRefused as error:
            response.close()  # the rest of the answer is not read: the connection is not reused
            if error.code == "too_large":
                raise _too_large() from error
            # Not a transport failure: the upstream answered, with something the gateway cannot read.
            raise UpstreamError(
                f"The upstream's answer could not be decoded: {error.detail}.", code="upstream_undecodable"
            ) from error
        except HTTPError as error:
            raise _failure(error) from error
        finally:
            response.release_conn()  # back to the pool when read to the end; closed otherwise


def _guarded_url(url: str) -> str:
    """The URL with its host as the guard checks it (ASCII, IDNA-encoded); a host with no
    canonical spelling (`0177.0.0.1`, `127.1`, fullwidth digits) is a blocked destination: it
    comes from a route, not from the caller, and is never sent."""
    parts = urlsplit(url)
    try:
        host, address = canonical_host(parts.hostname or "")
        port = parts.port
    except ValueError as error:
        raise BlockedDestination(f"The upstream host is not a canonical name or address: {error}") from error
    if parts.hostname == host:
        return url
    netloc = (f"[{host}]" if address is not None and address.version == 6 else host) + (
        f":{port}" if port is not None else ""
    )
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _too_large() -> UpstreamError:
    return UpstreamError(
        "The upstream's answer is larger than the gateway can return (5 MB).", code="upstream_too_large"
    )


def _read(response: Any, started: float, timeout: float) -> bytes:
    """The decoded body, one receive at a time, so that the whole answer, not each read, is
    bounded by the attempt's budget: a trickle must not outlast it (nor API Gateway's 29 s).
    Both the raw and the decoded size are capped; DecodeRefused when the codings cannot be
    decoded within the cap (or at all)."""
    decoder = BoundedDecoder(response.headers.get("content-encoding", ""), MAX_RESPONSE_BYTES)
    size = 0
    while True:
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            response.close()  # a connection in the middle of an answer is not reused
            raise UpstreamTimedOut("the answer took longer than the attempt's budget")
        sock = getattr(response.connection, "sock", None)
        if sock is not None:
            sock.settimeout(left)  # the next receive waits no longer than the budget left
        chunk = response.read1(READ_CHUNK_BYTES)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            response.close()
            raise _too_large()
        decoder.feed(chunk)
    return decoder.finish()


def _failure(error: HTTPError) -> Exception:
    """urllib3's failure as the port's. NewConnectionError first: it subclasses the connect
    timeout (a refused connection, a name that does not resolve, a refused TLS handshake)."""
    if isinstance(error, NewConnectionError):
        return UpstreamConnectFailed(str(error))
    if isinstance(error, Urllib3Timeout):
        return UpstreamTimedOut(str(error))
    return UpstreamTransportFailed(str(error))


_shared: dict[tuple[tuple[str, ...], bool], UpstreamClient] = {}
_lock = threading.Lock()


def upstream_client() -> UpstreamClient:
    """One client per container and policy (connections are reused across invocations)."""
    policy = SsrfPolicy.from_env()
    key = (tuple(str(n) for n in policy.allow_networks), policy.require_https)
    with _lock:
        client = _shared.get(key)
        if client is None:
            client = _shared[key] = UpstreamClient(policy)
    return client
