"""The SSRF guard for upstream calls: admins may route to public services, never to the gateway's
own network, loopback, link-local or the cloud metadata endpoint, unless an operator allowlists
an address range (context `upstreamAllowCidrs`; the local runtime allowlists loopback).

Checked twice: when a route is written (`validate_upstream_url`: hosts spelled canonically,
literal addresses, names that always mean this host, plaintext to public hosts), and on every
connection (`guarded_pool_manager` in
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
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from gateway_core.errors import UpstreamError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The IANA special-purpose address registries (IPv4 and IPv6): every range that is not globally
# reachable, or is deprecated, or exists only to be translated, spelled out here rather than left
# to what this Python's `ipaddress` flags (3.11 misses site-local fec0::/10, most of 192.0.0.0/24,
# 3fff::/20). The flags are still consulted too. IPv4-mapped and IPv4-compatible addresses fall in
# ::/8: a URL names an IPv4 host in IPv4. NAT64 (64:ff9b::/96) and 6to4 (2002::/16) are judged by
# the IPv4 address they carry, so a NAT64 network still reaches public IPv4 services.
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/8",
        "64:ff9b:1::/48",
        "100::/64",
        "100:0:0:1::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "metadata", "metadata.google.internal", "instance-data")
_LOCAL_SUFFIXES = (".localhost", ".internal", ".local")


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
        embedded = address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _internal(embedded)
        blocked: tuple[IpNetwork, ...] = _BLOCKED_V6
    else:
        blocked = _BLOCKED_V4
    return (
        any(address in network for network in blocked)
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


# A host that ends in a number is an IPv4 address to URL parsers and resolvers (WHATWG URL,
# inet_aton): `127.1`, `0x7f.1`, `2130706433`, `0177.0.0.1` all mean 127.0.0.1. Only the one
# canonical spelling, four decimal numbers without leading zeros, is accepted, so no check can
# read an address differently from the resolver that connects to it.
_ENDS_IN_NUMBER = re.compile(r"(^|\.)(\d+|0x[0-9a-f]*)\Z")
_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_CANONICAL_V4 = re.compile(rf"^{_OCTET}(\.{_OCTET}){{3}}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def canonical_host(host: str) -> tuple[str, IpAddress | None]:
    """The host as it must be spelled (lower case, ASCII after IDNA, no trailing dot) and the
    address it names literally (None for a name); ValueError saying why for anything else:
    numeric hosts other than the canonical dotted quad, IPv6 literals with a zone or that do not
    parse, names with no ASCII (IDNA) form or that are not valid DNS names. Brackets are optional."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in bare:
        if "%" in bare:
            raise ValueError(f"{host} is not a canonical IPv6 address: zone identifiers are not allowed")
        try:
            return bare.lower(), ipaddress.IPv6Address(bare)
        except ValueError as error:
            raise ValueError(f"{host} is not a canonical IPv6 address") from error
    if not bare.isascii():
        try:
            ascii_form = bare.encode("idna").decode("ascii").lower()
            spelled = ascii_form.encode("ascii").decode("idna")
        except UnicodeError as error:
            raise ValueError(f"{host!r} is not a valid host name: it has no ASCII (IDNA) form") from error
        if spelled != bare.lower():
            # IDNA maps look-alikes to ASCII (fullwidth digits to digits, fullwidth letters spelling
            # localhost to localhost) and drops invisible characters: only a name that is its own
            # IDNA form is one.
            raise ValueError(f"{host!r} is not a canonical host name: IDNA reads it as {ascii_form!r}")
    else:
        ascii_form = bare.lower()
    name = ascii_form[:-1] if ascii_form.endswith(".") else ascii_form
    if _ENDS_IN_NUMBER.search(name):
        if not _CANONICAL_V4.fullmatch(name):
            raise ValueError(
                f"{host!r} is not a canonical IPv4 address: write it as four decimal numbers (e.g. 192.0.2.10)"
            )
        return name, ipaddress.IPv4Address(name)
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid host name")
    if any(label.startswith("xn--") for label in labels):
        try:
            name.encode("ascii").decode("idna")  # a punycode label must decode
        except UnicodeError as error:
            raise ValueError(f"{host!r} is not a valid host name: a punycode label does not decode") from error
    return name, None


def local_name(name: str) -> bool:
    """Whether a (canonical) host name always means this host or its private network."""
    return name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES)


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
    if not parts.hostname:
        raise ValueError("an upstream URL needs a host")
    if "[" in parts.netloc and ":" not in parts.hostname:
        raise ValueError(f"[{parts.hostname}] is not a canonical IPv6 address")
    host, address = canonical_host(parts.hostname)
    if address is not None:
        if policy.allowlisted(address):
            return
        if _internal(address):
            raise ValueError(f"{host} is a private, loopback, link-local or metadata address")
    elif local_name(host):
        raise ValueError(f"{host} names this host or its private network")
    if policy.require_https and parts.scheme != "https":
        raise ValueError("upstreams are called over https (plain http only to allowlisted addresses)")


# Schemes whose URLs always have an authority, which browsers find even without `//` and with
# `\` for `/` (WHATWG URL, "special" schemes).
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")


def points_inside(reference: str) -> bool:
    """Whether a URL or reference an upstream hands to callers (a redirect's Location) points at a
    host the caller must not be sent to: an internal address whatever the allowlist (it lets the
    gateway in, not callers), a name of this host or its network, or a host with no canonical
    spelling; parsed as a browser would (WHATWG: tabs and newlines dropped, `\\` read as `/`,
    `http:host` has an authority, the host percent-decoded). A relative reference without an
    authority resolves against the URL the caller asked for, the gateway's, so it is not inside."""
    text = _TAB_OR_NEWLINE.sub("", reference).strip("".join(map(chr, range(0x21))))  # C0 controls and space
    scheme = _SCHEME.match(text)
    if scheme is not None and scheme.group(1).lower() in _SPECIAL_SCHEMES:
        authority = text[scheme.end() :].replace("\\", "/").lstrip("/")
    else:
        rest = text[scheme.end() :] if scheme is not None else text.replace("\\", "/")
        if not rest.startswith("//"):
            return False  # no authority: nowhere but where the caller already is
        authority = rest[2:]
    authority = re.split(r"[/?#]", authority, maxsplit=1)[0].rsplit("@", 1)[-1]
    if authority.startswith("["):
        host = authority[: authority.find("]") + 1] if "]" in authority else authority
    else:
        host = authority.split(":", 1)[0]
    try:
        name, address = canonical_host(unquote(host))
    except ValueError:
        return True  # no canonical spelling: no telling where a client ends up
    return _internal(address) if address is not None else local_name(name)
