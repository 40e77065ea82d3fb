"""The SSRF guard: upstream URLs checked when a route is written, and every connection checked
after resolution (so names resolving to internal addresses, or re-resolving to them, are refused).

Only loopback is ever resolved or connected to; other names are answered by a fake resolver."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from urllib3.exceptions import NewConnectionError

from functions.routes.dal.upstream import UpstreamClient
from functions.routes.logic.proxy_ports import UpstreamConnectFailed, UpstreamRequestInvalid
from gateway_core import ssrf, ssrf_client
from gateway_core.errors import UpstreamError
from gateway_core.ssrf import BlockedDestination, SsrfPolicy, validate_upstream_url
from gateway_core.ssrf_client import GuardedPoolManager, guarded_pool_manager

LAX = SsrfPolicy(require_https=False)  # so that http:// cases fail for the address, not the scheme
STRICT = SsrfPolicy()
LOOPBACK = SsrfPolicy(allow_networks=(ip_network("127.0.0.0/8"),))


# --- validate_upstream_url ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.example.com",
        "file:///etc/passwd",
        "gopher://api.example.com",
        "ws://api.example.com",
        "api.example.com/v1",
    ],
)
def test_refuses_other_schemes(url: str) -> None:
    with pytest.raises(ValueError, match="http or https"):
        validate_upstream_url(url, LAX)


@pytest.mark.parametrize(
    "url", ["https://user:secret@api.example.com", "https://user@api.example.com", "https://:secret@api.example.com"]
)
def test_refuses_credentials_in_the_url(url: str) -> None:
    with pytest.raises(ValueError, match="no credentials"):
        validate_upstream_url(url, LAX)


@pytest.mark.parametrize(
    "url", ["https://api.example.com/v1?key=1", "https://api.example.com/v1#part", "https://api.example.com?x"]
)
def test_refuses_a_query_or_fragment(url: str) -> None:
    with pytest.raises(ValueError, match="no query or fragment"):
        validate_upstream_url(url, LAX)


@pytest.mark.parametrize("url", ["https://", "https:///v1", "https://:443/v1", "http://"])
def test_refuses_a_missing_host(url: str) -> None:
    with pytest.raises(ValueError, match="needs a host"):
        validate_upstream_url(url, LAX)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com:99999",
        "https://api.example.com:65536",
        "https://api.example.com:abc",
        "https://api.example.com:-1",
    ],
)
def test_refuses_bad_ports(url: str) -> None:
    with pytest.raises(ValueError, match="not a URL"):
        validate_upstream_url(url, LAX)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",  # loopback
        "127.255.0.9",
        "10.0.0.1",  # private
        "172.16.5.4",
        "192.168.1.1",
        "169.254.10.20",  # link-local
        "169.254.169.254",  # the metadata endpoint
        "100.64.0.1",  # shared address space (carrier NAT)
        "100.127.255.254",
        "224.0.0.1",  # multicast
        "239.255.255.250",
        "0.0.0.0",  # noqa: S104 - unspecified, as a destination
        "240.0.0.1",  # reserved
        "[::1]",  # IPv6 loopback
        "[::]",  # unspecified
        "[fe80::1]",  # link-local
        "[fc00::1]",  # unique local
        "[fd12:3456::1]",
        "[fd00:ec2::254]",  # the IPv6 metadata endpoint
        "[ff02::1]",  # multicast
        "[::ffff:127.0.0.1]",  # IPv4-mapped loopback
        "[::ffff:169.254.169.254]",  # IPv4-mapped metadata
        "[::ffff:10.0.0.1]",
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    ],
)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_refuses_internal_address_literals(scheme: str, host: str) -> None:
    with pytest.raises(ValueError, match="private, loopback, link-local or metadata"):
        validate_upstream_url(f"{scheme}://{host}:8080/v1", LAX)
    with pytest.raises(ValueError, match="private, loopback, link-local or metadata"):
        validate_upstream_url(f"{scheme}://{host}", STRICT)


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "169.254.43518"])
def test_refuses_non_canonical_ipv4_literals(host: str) -> None:
    # Every resolver (inet_aton) reads these as 127.0.0.1 / 169.254.169.254: refused as spelled,
    # even where the address they mean is allowlisted.
    for policy in (STRICT, LOOPBACK):
        with pytest.raises(ValueError, match="not a canonical IPv4 address"):
            validate_upstream_url(f"https://{host}/v1", policy)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "localhost.",
        "localhost.localdomain",
        "foo.localhost",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "x.internal",
        "ip-10-0-0-1.ec2.internal",
        "printer.local",
    ],
)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_refuses_names_of_this_host_or_its_network(scheme: str, host: str) -> None:
    with pytest.raises(ValueError, match="names this host or its private network"):
        validate_upstream_url(f"{scheme}://{host}/v1", LAX)
    with pytest.raises(ValueError, match="names this host or its private network"):
        validate_upstream_url(f"{scheme}://{host}/v1", LOOPBACK)


@pytest.mark.parametrize("url", ["http://api.example.com", "http://api.example.com:8080/v1", "http://93.184.216.34"])
def test_refuses_plain_http_to_public_hosts_when_https_is_required(url: str) -> None:
    with pytest.raises(ValueError, match="over https"):
        validate_upstream_url(url, STRICT)
    validate_upstream_url(url, LAX)  # allowed when the operator turned the requirement off


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com",
        "https://api.example.com/",
        "https://api.example.com:8443/v1/base",
        "https://API.Example.COM./v1",
        "HTTPS://api.example.com",
        "https://93.184.216.34",
        "https://8.8.8.8:443/dns",
        "https://[2606:4700:4700::1111]/v1",
        "https://internal-looking.example.com",
    ],
)
def test_accepts_https_public_hosts(url: str) -> None:
    validate_upstream_url(url, STRICT)
    validate_upstream_url(url, LOOPBACK)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1", "http://127.0.0.1:8080/v1", "http://127.9.9.9:1", "https://127.0.0.1"]
)
def test_accepts_allowlisted_literals_over_http(url: str) -> None:
    validate_upstream_url(url, LOOPBACK)
    with pytest.raises(ValueError, match="loopback"):
        validate_upstream_url(url, STRICT)


def test_an_allowlist_opens_only_its_own_range() -> None:
    policy = SsrfPolicy(allow_networks=(ip_network("10.0.0.0/8"), ip_network("fd12::/16")))

    validate_upstream_url("http://10.20.30.40:8080", policy)
    validate_upstream_url("http://[fd12::5]:8080", policy)
    for url in ["http://169.254.169.254", "http://127.0.0.1", "http://192.168.0.1", "http://[fd00:ec2::254]"]:
        with pytest.raises(ValueError, match="private, loopback"):
            validate_upstream_url(url, policy)


def test_policy_permits_and_allowlisted() -> None:
    assert LOOPBACK.allowlisted(ip_address("127.0.0.1")) is True
    assert LOOPBACK.allowlisted(ip_address("::1")) is False  # an IPv4 range never matches IPv6
    assert LOOPBACK.permits(ip_address("127.0.0.1")) is True
    assert LOOPBACK.permits(ip_address("::ffff:127.0.0.1")) is False
    assert LOOPBACK.permits(ip_address("10.0.0.1")) is False
    assert STRICT.permits(ip_address("127.0.0.1")) is False
    assert STRICT.permits(ip_address("169.254.169.254")) is False
    assert STRICT.permits(ip_address("100.100.100.100")) is False
    assert STRICT.permits(ip_address("93.184.216.34")) is True
    assert STRICT.permits(ip_address("2606:4700:4700::1111")) is True


# --- SsrfPolicy.from_env -----------------------------------------------------------------------


def test_from_env_defaults_to_no_allowlist_and_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSTREAM_ALLOW_CIDRS", raising=False)
    monkeypatch.delenv("UPSTREAM_REQUIRE_HTTPS", raising=False)

    assert SsrfPolicy.from_env() == SsrfPolicy(allow_networks=(), require_https=True)


def test_from_env_reads_the_allowlist_and_the_https_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8, 10.1.2.3/16 ,::1/128,")
    monkeypatch.setenv("UPSTREAM_REQUIRE_HTTPS", "false")

    policy = SsrfPolicy.from_env()

    assert policy.allow_networks == (ip_network("127.0.0.0/8"), ip_network("10.1.0.0/16"), ip_network("::1/128"))
    assert policy.require_https is False
    validate_upstream_url("http://10.1.200.1:8080", policy)
    validate_upstream_url("http://api.example.com", policy)
    with pytest.raises(ValueError, match="private"):
        validate_upstream_url("http://10.2.0.1", policy)


def test_from_env_keeps_https_required_unless_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "")
    monkeypatch.setenv("UPSTREAM_REQUIRE_HTTPS", "true")

    policy = SsrfPolicy.from_env()

    assert policy.allow_networks == ()
    assert policy.require_https is True


def test_from_env_refuses_a_malformed_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8,not-a-cidr")

    with pytest.raises(ValueError, match="not-a-cidr"):
        SsrfPolicy.from_env()


# --- the guarded pool manager against a real loopback server ------------------------------------


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections: list[tuple[str, int]] = []
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.lock = threading.Lock()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.lock:
            self.connections.append(client_address)
        return True

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append((self.path, self.headers.get("Host", "")))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"hello from upstream"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it
        pass


@pytest.fixture
def upstream() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def client() -> Iterator[Callable[[SsrfPolicy], GuardedPoolManager]]:
    """One guarded pool manager per policy for the module."""
    made: dict[SsrfPolicy, GuardedPoolManager] = {}

    def for_policy(policy: SsrfPolicy) -> GuardedPoolManager:
        if policy not in made:
            made[policy] = guarded_pool_manager(policy, timeout=2.0, maxsize=4)
        return made[policy]

    yield for_policy
    for made_client in made.values():
        made_client.clear()


def assert_nothing_reached(upstream: Recorder) -> None:
    """The server accepts connections in order: once a request made after the refused one has
    been answered, a connection from the refused one would already have been recorded."""
    probe = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=2)
    try:
        probe.request("GET", "/after")
        assert probe.getresponse().status == 200
    finally:
        probe.close()
    assert len(upstream.connections) == 1
    assert [path for path, _ in upstream.requests] == ["/after"]


class FakeDns:
    """Names under .test answer from `answers` (one answer list per lookup, the last repeating) and
    count their lookups; anything else (loopback literals) goes to the real resolver, which needs
    no network for them."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: dict[str, int] = {}
        self.real = socket.getaddrinfo

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not name.endswith(".test"):
            return self.real(host, port, *args, **kwargs)
        if name not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        count = self.lookups.get(name, 0)
        self.lookups[name] = count + 1
        answer = self.answers[name][min(count, len(self.answers[name]) - 1)]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0)))
            for a in answer
        ]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    dns = FakeDns()
    monkeypatch.setattr(ssrf_client.socket, "getaddrinfo", dns.getaddrinfo)
    return dns


Clients = Callable[[SsrfPolicy], GuardedPoolManager]


def test_an_allowlisted_loopback_upstream_is_reached(upstream: Recorder, client: Clients) -> None:
    response = client(LOOPBACK).request("GET", f"http://127.0.0.1:{upstream.port}/v1/orders")

    assert response.status == 200
    assert response.data.decode() == "hello from upstream"
    assert upstream.requests == [("/v1/orders", f"127.0.0.1:{upstream.port}")]


def test_a_loopback_literal_is_blocked_without_the_allowlist(upstream: Recorder, client: Clients) -> None:
    with pytest.raises(BlockedDestination) as caught:
        client(STRICT).request("GET", f"http://127.0.0.1:{upstream.port}/v1/orders")

    assert isinstance(caught.value, UpstreamError)
    assert caught.value.status == 502
    assert caught.value.code == "upstream_blocked"
    assert_nothing_reached(upstream)


def test_an_ipv4_mapped_loopback_literal_is_blocked(upstream: Recorder, client: Clients) -> None:
    with pytest.raises(BlockedDestination):
        client(LOOPBACK).request("GET", f"http://[::ffff:127.0.0.1]:{upstream.port}/v1")

    assert_nothing_reached(upstream)


def test_a_name_resolving_to_loopback_is_blocked_without_the_allowlist(upstream: Recorder, client: Clients) -> None:
    with pytest.raises(BlockedDestination) as caught:
        client(STRICT).request("GET", f"http://localhost:{upstream.port}/v1")

    assert caught.value.status == 502
    assert caught.value.code == "upstream_blocked"
    assert_nothing_reached(upstream)


def test_a_non_canonical_loopback_literal_is_blocked_at_connection(upstream: Recorder, client: Clients) -> None:
    with pytest.raises(BlockedDestination):
        client(STRICT).request("GET", f"http://127.1:{upstream.port}/v1")

    assert_nothing_reached(upstream)


def test_a_name_is_resolved_once_and_the_checked_address_is_connected_to(
    upstream: Recorder, client: Clients, fake_dns: FakeDns
) -> None:
    # A name resolving to an allowlisted address is reached, and DNS rebinding gets nowhere: any
    # later answer points where nothing listens, but the socket connects to the checked address.
    fake_dns.answers["rebind.test"] = [["127.0.0.1"], ["127.0.0.2"]]

    response = client(LOOPBACK).request("GET", f"http://rebind.test:{upstream.port}/v1")

    assert response.status == 200
    assert upstream.requests == [("/v1", f"rebind.test:{upstream.port}")]
    assert fake_dns.lookups == {"rebind.test": 1}


def test_a_name_with_any_internal_answer_is_blocked(upstream: Recorder, client: Clients, fake_dns: FakeDns) -> None:
    fake_dns.answers["mixed.test"] = [["127.0.0.1", "10.0.0.7"]]

    with pytest.raises(BlockedDestination):
        client(LOOPBACK).request("GET", f"http://mixed.test:{upstream.port}/v1")

    assert_nothing_reached(upstream)


@pytest.mark.parametrize(
    "answer", ["169.254.169.254", "100.64.1.1", "fd00:ec2::254", "::ffff:127.0.0.1", "192.168.0.10"]
)
def test_a_name_resolving_to_an_internal_address_is_blocked(
    upstream: Recorder, client: Clients, fake_dns: FakeDns, answer: str
) -> None:
    fake_dns.answers["sneaky.test"] = [[answer]]

    with pytest.raises(BlockedDestination):
        client(LOOPBACK).request("GET", f"http://sneaky.test:{upstream.port}/v1")

    assert_nothing_reached(upstream)


def test_a_name_that_does_not_resolve_is_a_connect_error(client: Clients, fake_dns: FakeDns) -> None:
    with pytest.raises(NewConnectionError, match=r"cannot resolve nowhere\.test"):
        client(LOOPBACK).request("GET", "http://nowhere.test:8080/v1")


def test_redirects_are_not_followed(upstream: Recorder, client: Clients) -> None:
    # Even when a call asks to follow redirects (urllib3's default): the guard's manager never does.
    response = client(LOOPBACK).request("GET", f"http://127.0.0.1:{upstream.port}/redirect", redirect=True)

    assert response.status == 302
    assert response.headers["Location"] == "/elsewhere"
    assert [path for path, _ in upstream.requests] == ["/redirect"]


def test_the_guarded_client_ignores_proxy_settings(upstream: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    # An environment proxy would bypass the per-connection check (the proxy connects for us). The
    # "proxy" is a second loopback recorder; the client is built after the variables are set.
    proxy = Recorder()
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)

        with guarded_pool_manager(LOOPBACK, timeout=2.0) as guarded:
            response = guarded.request("GET", f"http://127.0.0.1:{upstream.port}/v1")
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)

    assert response.status == 200
    assert [path for path, _ in upstream.requests] == ["/v1"]
    assert proxy.connections == []


# --- TLS through the guard: the socket goes to the checked address, TLS names the host ----------


def _server_certificate(*names: str) -> tuple[bytes, bytes]:
    """A self-signed server certificate (PEM) for `names`, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


class TlsRecorder(Recorder):
    """The recorder over TLS, noting the server name each client asked for (SNI)."""

    def __init__(self, certificate: bytes, key: bytes, directory: Path) -> None:
        super().__init__()
        (directory / "cert.pem").write_bytes(certificate)
        (directory / "key.pem").write_bytes(key)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(directory / "cert.pem"), str(directory / "key.pem"))
        self.server_names: list[str | None] = []
        self.context.sni_callback = self._note_server_name

    def _note_server_name(self, _socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        self.server_names.append(name)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


@pytest.fixture
def tls_upstream(tmp_path: Path) -> Iterator[tuple[TlsRecorder, bytes]]:
    certificate, key = _server_certificate("upstream.test")
    server = TlsRecorder(certificate, key, tmp_path)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server, certificate
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_tls_goes_to_the_checked_address_and_verifies_the_host_name(
    tls_upstream: tuple[TlsRecorder, bytes], fake_dns: FakeDns
) -> None:
    server, certificate = tls_upstream
    fake_dns.answers["upstream.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    fake_dns.answers["other.test"] = [["127.0.0.1"]]
    with guarded_pool_manager(LOOPBACK, timeout=2.0) as guarded:
        guarded.tls_context().load_verify_locations(cadata=certificate.decode())

        response = guarded.request("GET", f"https://upstream.test:{server.port}/v1")
        assert response.status == 200
        assert server.server_names == ["upstream.test"]  # SNI names the host, not the address
        assert server.requests == [("/v1", f"upstream.test:{server.port}")]
        assert fake_dns.lookups["upstream.test"] == 1

        # A name the certificate does not carry is refused, though it resolves to the same address.
        with pytest.raises(NewConnectionError, match=r"TLS with other\.test failed: .*[Hh]ostname mismatch"):
            guarded.request("GET", f"https://other.test:{server.port}/v1")
    assert server.requests == [("/v1", f"upstream.test:{server.port}")]


def test_an_untrusted_certificate_is_refused(tls_upstream: tuple[TlsRecorder, bytes], fake_dns: FakeDns) -> None:
    server, _ = tls_upstream
    fake_dns.answers["upstream.test"] = [["127.0.0.1"]]
    with (
        guarded_pool_manager(LOOPBACK, timeout=2.0) as guarded,
        pytest.raises(NewConnectionError, match="certificate verify failed"),
    ):
        guarded.request("GET", f"https://upstream.test:{server.port}/v1")
    assert server.requests == []


# --- the upstream adapter over the guard: failures as the proxy's port names them --------------


def test_the_adapter_reports_a_blocked_name_before_connecting(upstream: Recorder, fake_dns: FakeDns) -> None:
    fake_dns.answers["sneaky.test"] = [["169.254.169.254"]]

    with pytest.raises(BlockedDestination):
        UpstreamClient(LOOPBACK).send("GET", f"http://sneaky.test:{upstream.port}/v1", {}, b"", 2.0)

    assert_nothing_reached(upstream)


def test_the_adapter_reports_a_name_that_does_not_resolve_as_a_failed_connection(fake_dns: FakeDns) -> None:
    with pytest.raises(UpstreamConnectFailed, match=r"cannot resolve nowhere\.test"):
        UpstreamClient(LOOPBACK).send("GET", "http://nowhere.test:8080/v1", {}, b"", 2.0)


def test_the_adapter_reports_a_refused_connection_as_a_failed_connection() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(UpstreamConnectFailed):
            UpstreamClient(LOOPBACK).send("GET", f"http://127.0.0.1:{port}/v1", {}, b"", 2.0)


def test_the_adapter_reports_a_header_it_cannot_send_as_an_invalid_request(upstream: Recorder) -> None:
    with pytest.raises(UpstreamRequestInvalid):
        UpstreamClient(LOOPBACK).send(
            "GET", f"http://127.0.0.1:{upstream.port}/v1", {"x-bad": "one\r\nInjected: two"}, b"", 2.0
        )
    assert_nothing_reached(upstream)


def test_the_adapter_does_not_follow_redirects(upstream: Recorder) -> None:
    answer = UpstreamClient(LOOPBACK).send("GET", f"http://127.0.0.1:{upstream.port}/redirect", {}, b"", 2.0)

    assert answer.status == 302
    assert ("location", "/elsewhere") in answer.headers
    assert [path for path, _ in upstream.requests] == ["/redirect"]


# --- the whole family of special-purpose ranges (IANA registries for IPv4 and IPv6) --------------

SPECIAL_PURPOSE = [
    "0.1.2.3",  # "this network" 0.0.0.0/8
    "100.64.0.1",  # shared address space
    "192.0.0.9",  # IETF protocol assignments 192.0.0.0/24 (not only the /29 Python 3.11 flags)
    "192.0.0.255",
    "192.0.2.1",  # documentation
    "192.88.99.1",  # deprecated 6to4 relay anycast
    "198.18.0.1",  # benchmarking 198.18.0.0/15
    "198.19.255.254",
    "203.0.113.9",
    "240.0.0.1",  # reserved 240.0.0.0/4
    "255.255.255.255",
    "[::]",  # unspecified ::/128
    "[::1]",
    "[::127.0.0.1]",  # IPv4-compatible (deprecated)
    "[::ffff:8.8.8.8]",  # IPv4-mapped, even of a public address: a URL names IPv4 hosts in IPv4
    "[::ffff:0:a00:1]",  # IPv4-translated
    "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[64:ff9b:1::808:808]",  # local-use NAT64 (RFC 8215), whatever it embeds
    "[100::1]",  # discard-only
    "[100:0:0:1::1]",  # dummy prefix
    "[2001::1]",  # Teredo 2001::/32
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
    "[2001:2::1]",  # benchmarking
    "[2001:db8::1]",  # documentation
    "[2002:a00:1::]",  # 6to4 of 10.0.0.1
    "[2002:a9fe:a9fe::]",  # 6to4 of the metadata endpoint
    "[3fff::1]",  # documentation (RFC 9637)
    "[5f00::1]",  # SRv6 SIDs
    "[fc00::1]",  # unique local fc00::/7
    "[fdff:ffff::1]",
    "[fe80::1]",  # link-local
    "[fec0::1]",  # site-local (deprecated, still routed inside some networks)
    "[feff::1]",
    "[ff02::1]",  # multicast
    "[ff0e::1]",
]


@pytest.mark.parametrize("host", SPECIAL_PURPOSE)
def test_every_special_purpose_range_is_refused_at_route_creation(host: str) -> None:
    for policy in (LAX, LOOPBACK):
        with pytest.raises(ValueError, match="private, loopback, link-local or metadata"):
            validate_upstream_url(f"http://{host}:8080/v1", policy)


@pytest.mark.parametrize("host", SPECIAL_PURPOSE)
def test_every_special_purpose_range_is_refused_at_connection(host: str) -> None:
    address = ip_address(host.strip("[]"))
    assert not STRICT.permits(address)
    assert not LOOPBACK.permits(address)


@pytest.mark.parametrize(
    "host", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "64:ff9b::808:808", "2a00:1450:4001::200e"]
)
def test_public_addresses_and_nat64_of_public_ones_stay_permitted(host: str) -> None:
    assert STRICT.permits(ip_address(host))


# --- hosts must be spelled canonically: one spelling per address, ASCII after IDNA -----------------


def fullwidth(text: str, dots: bool = True) -> str:
    """`text` in the fullwidth forms (U+FF01..U+FF5E) IDNA maps back to ASCII."""
    return "".join(c if c == "." and not dots else chr(ord(c) + 0xFEE0) for c in text)


NOT_CANONICAL = [
    fullwidth("127.0.0.1", dots=False),  # 127.0.0.1 to IDNA
    fullwidth("127.0.0.1"),  # fullwidth full stops separate labels too
    fullwidth("0177") + ".0.0.1",
    "0177.0.0.1",  # octal
    "2130706433",  # decimal
    "0x7f000001",  # hexadecimal
    "0x7f.1",
    "127.1",  # short forms
    "127.0.1",
    "127.000.000.001",  # leading zeros (octal to some resolvers)
    "93.184.216.034",  # a public address, still ambiguous
    "8.8.8.08",
    "1.2.3.4.5",
    "api.example.123",  # a name cannot end in a number: resolvers read it as an address
    "256.1.1.1",
]


@pytest.mark.parametrize("host", NOT_CANONICAL)
def test_hosts_that_are_not_canonical_are_refused_whatever_the_allowlist(host: str) -> None:
    for policy in (LAX, LOOPBACK, SsrfPolicy(allow_networks=(ip_network("0.0.0.0/0"),), require_https=False)):
        with pytest.raises(ValueError, match="canonical"):
            validate_upstream_url(f"http://{host}:8080/v1", policy)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        (fullwidth("localhost"), "not a canonical host name: IDNA reads it as 'localhost'"),
        (fullwidth("LOCALHOST"), "not a canonical host name"),
        ("metadata.google." + fullwidth("internal"), "not a canonical host name"),
        ("straße.example", "not a canonical host name"),  # IDNA 2003 and 2008 disagree on ß
        ("exa mple.com", "not a valid host name"),
        ("bad..example.com", "not a valid host name"),
        ("-bad.example.com", "not a valid host name"),
        ("x" * 64 + ".example.com", "not a valid host name"),
        ("a\u200bb.example.com", "not a canonical host name"),  # IDNA drops a zero-width space
        ("xn--.example.com", "not a valid host name"),
    ],
)
def test_names_are_checked_in_their_idna_form(host: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_upstream_url(f"https://{host}/v1", LOOPBACK)


@pytest.mark.parametrize(
    "url", ["https://bücher.example/v1", "https://xn--bcher-kva.example", "https://api_v2.example.com"]
)
def test_international_names_are_accepted_when_they_have_an_ascii_form(url: str) -> None:
    validate_upstream_url(url, STRICT)


@pytest.mark.parametrize("host", ["[fe80::1%25eth0]", "[::1%251]", "[1::2::3]", "[v1.x]"])
def test_ipv6_literals_must_be_plain_addresses(host: str) -> None:
    with pytest.raises(ValueError, match=r"not a URL|canonical|private"):
        validate_upstream_url(f"http://{host}:8080/v1", LOOPBACK)


@pytest.mark.parametrize("host", [fullwidth("127.0.0.1"), "0177.0.0.1", "2130706433", "0x7f.1", "127.1", "127.000.0.1"])
def test_a_host_that_is_not_canonical_is_a_blocked_destination_at_call_time(host: str, upstream: Recorder) -> None:
    # A route stored before the rule existed still reaches the adapter: it is refused as a blocked
    # destination (a 502 at the proxy), never sent, and never a crash.
    with pytest.raises(BlockedDestination, match="canonical"):
        UpstreamClient(LOOPBACK).send("GET", f"http://{host}:{upstream.port}/v1", {}, b"", 2.0)
    assert_nothing_reached(upstream)


def test_the_route_model_refuses_hosts_that_are_not_canonical(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from functions.routes.logic.route_spec import RouteSpec

    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8,::1/128")
    monkeypatch.setenv("UPSTREAM_REQUIRE_HTTPS", "false")
    spec = {"gateway_id": "gw_1", "name": "n", "method": "GET", "path": "/x"}
    RouteSpec.model_validate({**spec, "targets": [{"url": "http://127.0.0.1:8080"}]})
    for host in NOT_CANONICAL:
        with pytest.raises(ValidationError, match="canonical"):
            RouteSpec.model_validate({**spec, "targets": [{"url": f"http://{host}:8080"}]})


def test_an_international_name_is_called_by_its_ascii_form(upstream: Recorder, fake_dns: FakeDns) -> None:
    fake_dns.answers["xn--bcher-kva.test"] = [["127.0.0.1"]]

    answer = UpstreamClient(LOOPBACK).send("GET", f"http://bücher.test:{upstream.port}/v1", {}, b"", 2.0)

    assert answer.status == 200
    assert upstream.requests == [("/v1", f"xn--bcher-kva.test:{upstream.port}")]


# --- where an upstream's redirect may send the caller ------------------------------------------

INSIDE_REFERENCES = [
    "http://10.0.0.5/admin",
    "http://169.254.169.254/latest/meta-data/",
    "https://127.0.0.1:8443/",
    "http://[::1]/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fec0::1]/",
    "http://0177.0.0.1/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://" + fullwidth("127.0.0.1", dots=False) + "/",
    "http://%31%32%37.0.0.1/",  # browsers percent-decode the host
    "http://localhost:8080/",
    "http://LOCALHOST/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://db.internal/",
    "http://printer.local/",
    "https://user:pass@10.0.0.5/",
    "https://partner.example@10.0.0.5/",  # the host is after the @
    "//169.254.169.254/latest",  # network-path reference
    "/\\169.254.169.254/latest",  # browsers read '\' as '/'
    "\\\\169.254.169.254\\latest",
    "/\t/169.254.169.254/",  # tabs and newlines are removed before parsing
    "/\n/10.0.0.1/",
    "  http://10.0.0.1/",
    "http:10.0.0.1/",  # a special scheme without slashes still has an authority
    "http:/10.0.0.1/",
    "http:\\\\10.0.0.1\\",
    "HTTP://10.0.0.1/",
    "ws://127.0.0.1:9000/",
    "gopher://127.0.0.1:6379/_INFO",
    "http://[::1/",  # not parseable: not handed out either
    "http://exa mple.com/",
]


@pytest.mark.parametrize("reference", INSIDE_REFERENCES, ids=repr)
def test_references_to_internal_hosts_are_recognised_in_any_spelling(reference: str) -> None:
    assert ssrf.points_inside(reference)


@pytest.mark.parametrize(
    "reference",
    [
        "/orders/5",
        "orders/5",
        "../orders/5",
        "?page=2",
        "#top",
        "",
        "https://partner.example/callback?code=abc",
        "https://93.184.216.34/x",
        "http://[2606:4700:4700::1111]/",
        "com.bank.app:/oauth/callback?code=1",  # a mobile app's redirect: no host at all
        "mailto:ops@partner.example",
    ],
)
def test_references_to_public_hosts_or_none_are_not_inside(reference: str) -> None:
    assert not ssrf.points_inside(reference)
