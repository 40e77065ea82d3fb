"""The SSRF guard on every connection to an upstream (gateway_core.ssrf is the policy): an httpx
client whose connections resolve the name, check every address it resolves to, and connect to an
address that passed, never resolving again."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from gateway_core.ssrf import BlockedDestination, SsrfPolicy, literal_address


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves, checks, then connects to a checked address (never re-resolving)."""

    def __init__(self, policy: SsrfPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as error:
                raise httpcore.ConnectError(f"cannot resolve {host}") from error
            addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found))
        refused = [a for a in addresses if not self.policy.permits(a)]
        if refused or not addresses:
            # Any bad answer refuses the name: a resolver mixing addresses must not win a race.
            raise BlockedDestination(f"The upstream {host} resolves to an address the gateway may not call.")
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                last = error
        assert last is not None
        raise last


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: SsrfPolicy, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx has no public hook for the network backend; its pool takes one. Same settings.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


def guarded_client(policy: SsrfPolicy, *, timeout: httpx.Timeout, limits: httpx.Limits) -> httpx.Client:
    """An httpx client whose every connection passes the guard; no redirects, no env proxies."""
    return httpx.Client(
        transport=_GuardedTransport(policy, limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
