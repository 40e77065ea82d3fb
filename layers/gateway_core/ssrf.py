"""The SSRF guard for upstream calls: admins may route to public services, never to the gateway's
own network, loopback, link-local or the cloud metadata endpoint, unless an operator allowlists
an address range (context `upstreamAllowCidrs`; the local runtime allowlists loopback).

Checked twice: when a route is written (`validate_upstream_url`: literal addresses, names that
always mean this host, plaintext to public hosts), and on every connection (`guarded_pool_manager` in
ssrf_client.py): the host name is resolved, every address it resolves to is checked, and the
socket connects to an address that passed, so a name that resolves to a private address, or
re-resolves to one after the check (DNS rebinding), never reaches it. TLS still verifies the
certificate for the name. This module is the policy (stdlib only: the management API validates
routes with it without loading an HTTP client); the connections are ssrf_client.py's.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from typing import NamedTuple
from urllib.parse import urlsplit

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


class SsrfPolicy(NamedTuple):
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


def literal_address(host: str) -> IpAddress | None:
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
    address = literal_address(host)
    if address is not None:
        if policy.allowlisted(address):
            return
        if _internal(address):
            raise ValueError(f"{host} is a private, loopback, link-local or metadata address")
    elif host in _LOCAL_NAMES or host.endswith((".localhost", ".internal", ".local")):
        raise ValueError(f"{host} names this host or its private network")
    if policy.require_https and parts.scheme != "https":
        raise ValueError("upstreams are called over https (plain http only to allowlisted addresses)")
