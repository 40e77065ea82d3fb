"""The SSRF guard on every connection to an upstream (gateway_core.ssrf is the policy): a urllib3
pool manager whose connections resolve the name, check every address it resolves to, and connect
to an address that passed, never resolving again. TLS still names the URL's host (SNI, and the
certificate must match the host name, not the address). It follows no redirect and retries
nothing, whatever a call asks, and reads no proxy settings from the environment (urllib3 uses a
proxy only through a ProxyManager). botocore loads urllib3 already, so the data
plane's cold start pays almost nothing for it."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from typing import Any

from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection
from urllib3.util.ssl_ import create_urllib3_context
from urllib3.util.ssl_match_hostname import CertificateError
from urllib3.util.timeout import Timeout

from gateway_core.ssrf import BlockedDestination, SsrfPolicy, canonical_host

# An idle pooled connection older than this is closed rather than reused: upstreams and load
# balancers drop idle connections (often at 60 s), and a request on one they just dropped fails.
KEEPALIVE_EXPIRY_S = 30.0


def _checked_socket(conn: HTTPConnection, policy: SsrfPolicy) -> socket.socket:
    """Resolves the connection's host once, refuses it if any address is not permitted, then
    connects to a checked address (the next one if a connection is refused)."""
    host = conn._dns_host  # the URL's host: no brackets, no trailing dot
    try:
        _, literal = canonical_host(host)
    except ValueError as error:
        # A spelling resolvers read in more than one way (`0177.0.0.1`, `127.1`) is never resolved.
        raise BlockedDestination(f"The upstream host is not a canonical name or address: {error}") from error
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = socket.getaddrinfo(host, conn.port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise NewConnectionError(conn, f"cannot resolve {host}: {error}") from error
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found))
    refused = [a for a in addresses if not policy.permits(a)]
    if refused or not addresses:
        # Any bad answer refuses the name: a resolver mixing addresses must not win a race.
        raise BlockedDestination(f"The upstream {host} resolves to an address the gateway may not call.")
    last: Exception | None = None
    for address in addresses:
        try:
            # A numeric address: create_connection does not resolve a name again.
            return urllib3_connection.create_connection(
                (str(address), conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as error:
            raise ConnectTimeoutError(
                conn, f"Connection to {host} timed out. (connect timeout={conn.timeout})"
            ) from error
        except OSError as error:
            last = NewConnectionError(conn, f"Failed to establish a new connection to {host}: {error}")
            last.__cause__ = error
    assert last is not None
    raise last


class _GuardedConnect:
    """Every new socket goes to an address the policy checked (both connection classes)."""

    def __init__(self, *args: Any, policy: SsrfPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.idle_since: float | None = None

    def _new_conn(self) -> socket.socket:
        return _checked_socket(self, self.policy)  # type: ignore[arg-type]  # mixed into HTTP(S)Connection


class GuardedHTTPConnection(_GuardedConnect, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnect, HTTPSConnection):
    def connect(self) -> None:
        try:
            super().connect()
        except (ssl.SSLError, CertificateError) as error:
            # The handshake or the certificate failed: nothing was sent, as when the connection
            # is refused (a timeout stays a timeout).
            raise NewConnectionError(self, f"TLS with {self.host} failed: {error}") from error


def _expired(conn: Any) -> bool:
    idle_since = getattr(conn, "idle_since", None)
    return idle_since is not None and time.monotonic() - idle_since > KEEPALIVE_EXPIRY_S


class _ExpiringKeepAlive:
    """Pooled connections idle for longer than KEEPALIVE_EXPIRY_S reconnect (through the guard)."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        if _expired(conn):
            conn.close()  # reconnects on its next request
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn.idle_since = time.monotonic()
        super()._put_conn(conn)  # type: ignore[misc]


class GuardedHTTPConnectionPool(_ExpiringKeepAlive, HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(_ExpiringKeepAlive, HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedPoolManager(PoolManager):
    """Keep-alive pools per scheme, host and port whose every connection passes the guard."""

    def __init__(self, policy: SsrfPolicy, *, timeout: float, num_pools: int = 50, maxsize: int = 50) -> None:
        # block=False: a burst beyond maxsize opens extra connections, which are not kept.
        super().__init__(num_pools=num_pools, maxsize=maxsize, block=False, retries=False, timeout=Timeout(timeout))
        self.policy = policy
        self.pool_classes_by_scheme = {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}
        self._tls: ssl.SSLContext | None = None

    def urlopen(  # type: ignore[override]  # as PoolManager's own
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> BaseHTTPResponse:
        """No redirect is followed (a 3xx is the answer) and nothing is retried, whatever is asked."""
        kw["retries"] = False
        return super().urlopen(method, url, redirect=False, **kw)

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context["policy"] = self.policy  # handed to each connection (not part of the pool's key)
        if scheme == "https":
            context["ssl_context"] = self.tls_context()
        return super()._new_pool(scheme, host, port, context)

    def tls_context(self) -> ssl.SSLContext:
        """Certificates required and host names checked; the CA bundle is loaded once, on the
        first HTTPS pool (certifi's, as the SDKs use, else the system's)."""
        if self._tls is None:
            context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
            try:
                import certifi
            except ImportError:  # pragma: no cover - certifi ships in the dependency layer
                context.load_default_certs()
            else:
                context.load_verify_locations(certifi.where())
            self._tls = context
        return self._tls


def guarded_pool_manager(policy: SsrfPolicy, *, timeout: float, maxsize: int = 50) -> GuardedPoolManager:
    """A pool manager whose every connection passes the guard (urlopen with preload_content=False
    reads an answer in chunks)."""
    return GuardedPoolManager(policy, timeout=timeout, maxsize=maxsize)
