"""The SSRF guard for upstream calls: admins may route to public services, never to the gateway's
own network, loopback, link-local or the cloud metadata endpoint, unless an operator allowlists
an address range (context `upstreamAllowCidrs`; the local runtime allowlists loopback).

Checked twice: when a route is written (`validate_upstream_url`: literal addresses, names that
always mean this host, plaintext to public hosts), and on every connection (`guarded_client`): the
host name is resolved, every address it resolves to is checked, and the socket connects to an
address that passed, so a name that resolves to a private address, or re-resolves to one after
the check (DNS rebinding), never reaches it. TLS still verifies the certificate for the name.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from gateway_core.errors import UpstreamError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Beyond what `ipaddress` flags as private/loopback/link-local/reserved: shared address space
# (carrier NAT, used inside clouds), and the metadata endpoints by name.
_EXTRA_BLOCKED = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("fd00:ec2::/32"))
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "metadata", "metadata.google.internal", "instance-data")


class BlockedDestination(UpstreamError):
    """A connection the guard refused (the upstream resolved to an address that is not allowed)."""

    status = 502
    code = "upstream_blocked"


@dataclass(frozen=True)
class SsrfPolicy:
    allow_networks: tuple[IpNetwork, ...] = ()
    require_https: bool = True  # plaintext only to allowlisted addresses

    @classmethod
    def from_env(cls) -> SsrfPolicy:
        raw = os.environ.get("UPSTREAM_ALLOW_CIDRS", "")
        networks = tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())
        return cls(allow_networks=networks, require_https=os.environ.get("UPSTREAM_REQUIRE_HTTPS", "true") != "false")

    def allowlisted(self, address: IpAddress) -> bool:
        return any(address in network for network in self.allow_networks if network.version == address.version)

    def permits(self, address: IpAddress) -> bool:
        """Whether a connection to this address may be made."""
        if self.allowlisted(address):
            return True
        return not _internal(address)


def _internal(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is None and address in _NAT64:
            mapped = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if mapped is not None:
            return _internal(mapped)
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or any(address in network for network in _EXTRA_BLOCKED if network.version == address.version)
    )


_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$", re.I)
# NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _literal(host: str) -> IpAddress | None:
    """The address a host names literally, including the forms resolvers also read as IPv4
    (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`), which `ipaddress` does not."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host) and not host.endswith("."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def validate_upstream_url(url: str, policy: SsrfPolicy) -> None:
    """ValueError (a 422 at the API) unless `url` is a base URL the proxy may call."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError as error:
        raise ValueError(f"not a URL: {url}") from error
    if port == 0:
        raise ValueError("port 0 is not a port to call")
    if parts.scheme not in ("http", "https"):
        raise ValueError("upstream URLs are http or https")
    if parts.username is not None or parts.password is not None:
        raise ValueError("upstream URLs carry no credentials; add them as header rules")
    if parts.query or parts.fragment:
        raise ValueError("an upstream URL is a base URL: no query or fragment")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise ValueError("an upstream URL needs a host")
    address = _literal(host)
    if address is not None:
        if policy.allowlisted(address):
            return
        if _internal(address):
            raise ValueError(f"{host} is a private, loopback, link-local or metadata address")
    elif host in _LOCAL_NAMES or host.endswith((".localhost", ".internal", ".local")):
        raise ValueError(f"{host} names this host or its private network")
    if policy.require_https and parts.scheme != "https":
        raise ValueError("upstreams are called over https (plain http only to allowlisted addresses)")


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
        literal = _literal(host)
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
