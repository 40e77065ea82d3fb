"""Calls to upstream services: one pooled httpx client per container, behind the SSRF guard
(every connection goes to an address checked after resolution, pinned against DNS rebinding),
no redirects followed (a 3xx goes back to the caller), no proxies from the environment, and a cap
on the answer's size (a Lambda response carries at most 6 MB)."""

from __future__ import annotations

import threading
import time

import httpx

from functions.routes.logic.proxy_ports import UpstreamAnswer
from gateway_core.errors import UpstreamError
from gateway_core.ssrf import SsrfPolicy
from gateway_core.ssrf_client import guarded_client

__all__ = ["UpstreamAnswer", "UpstreamClient", "upstream_client"]

MAX_RESPONSE_BYTES = 5 * 1024 * 1024


class UpstreamClient:
    def __init__(self, policy: SsrfPolicy | None = None) -> None:
        self.policy = policy or SsrfPolicy.from_env()
        self.client = guarded_client(
            self.policy,
            timeout=httpx.Timeout(10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30.0),
        )

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float) -> UpstreamAnswer:
        """One attempt. Raises httpx.TimeoutException, httpx.TransportError (connection refused,
        reset) or BlockedDestination; an answer of any status is returned."""
        request = self.client.build_request(
            method, url, headers=headers, content=body or None, timeout=httpx.Timeout(timeout)
        )
        started = time.monotonic()
        response = self.client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                # httpx's timeouts bound each read, not the whole answer: a trickle must not
                # outlast the attempt's budget (and API Gateway's 29 s).
                if time.monotonic() - started > timeout:
                    raise httpx.ReadTimeout("the answer took longer than the attempt's budget", request=request)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise UpstreamError(
                        "The upstream's answer is larger than the gateway can return (5 MB).",
                        code="upstream_too_large",
                    )
                chunks.append(chunk)
            return UpstreamAnswer(response.status_code, list(response.headers.multi_items()), b"".join(chunks))
        finally:
            response.close()


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
