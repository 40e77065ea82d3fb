"""HTTP front of the local API Gateway: a threading server on loopback."""

from __future__ import annotations

import logging
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import socket
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from infra.local.apigateway import MAX_REQUEST_BYTES, HttpRequest, RestApiDataPlane

log = logging.getLogger("local.http")


class _Handler(BaseHTTPRequestHandler):
    server: GatewayHttpServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        too_large = length > MAX_REQUEST_BYTES
        if too_large:
            self.close_connection = True  # answer without reading the oversized body
        request = HttpRequest(
            method=self.command.upper(),
            target=self.path,
            headers=list(self.headers.items()),
            body=b"" if too_large or not length else self.rfile.read(length),
            source_ip=self.client_address[0],
            client_cert=self._client_cert(),
            too_large=too_large,
        )
        data_plane = self.server.data_plane
        assert data_plane is not None, "requests are served only once the data plane is set"
        response = data_plane.handle(request)
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _client_cert(self) -> dict[str, Any] | None:
        """The verified client certificate, as API Gateway puts it in requestContext.identity."""
        if not isinstance(self.connection, ssl.SSLSocket):
            return None
        der = self.connection.getpeercert(binary_form=True)
        if not der:
            return None
        certificate = x509.load_der_x509_certificate(der)
        serial = format(certificate.serial_number, "x")
        serial = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)) if len(serial) % 2 == 0 else serial
        stamp = "%b %d %H:%M:%S %Y GMT"
        return {
            "clientCertPem": certificate.public_bytes(Encoding.PEM).decode(),
            "subjectDN": certificate.subject.rfc4514_string(),
            "issuerDN": certificate.issuer.rfc4514_string(),
            "serialNumber": serial,
            "validity": {
                "notBefore": certificate.not_valid_before_utc.strftime(stamp),
                "notAfter": certificate.not_valid_after_utc.strftime(stamp),
            },
        }

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug(format, *args)


class GatewayHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, data_plane: RestApiDataPlane | None) -> None:
        self.data_plane = data_plane
        super().__init__((host, port), _Handler)


class MtlsGatewayHttpServer(GatewayHttpServer):
    """HTTPS with a required client certificate verified against the local CA, as an API Gateway
    custom domain with mutual TLS and a truststore. The handshake runs in the request's thread."""

    def __init__(
        self, host: str, port: int, data_plane: RestApiDataPlane | None, *, cert: str, key: str, ca: str
    ) -> None:
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(cert, key)
        self.tls.load_verify_locations(ca)
        self.tls.verify_mode = ssl.CERT_REQUIRED
        super().__init__(host, port, data_plane)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            wrapped: socket = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.info("TLS handshake refused from %s: %s", client_address[0], error)
            return
        super().finish_request(wrapped, client_address)
