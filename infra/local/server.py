"""HTTP front of the local API Gateway: a threading server on loopback.

What API Gateway's front door does before a request reaches the API, done here too (README,
"Local versus AWS"): the request line and header values together are at most 10,240 bytes (431,
or 414 for a longer request line); the body is framed by one valid Content-Length or by chunked
transfer coding, never both (400 otherwise, at once, without waiting for a body); a client that
takes more than 10 s to send its request line and headers, or 30 s for its body, is cut off (408
for a body). Every refusal here is API Gateway's own JSON error, `{"message": ...}`, never the
standard library's HTML page, and a response is never written with a header HTTP cannot carry:
such a response becomes a 502 rather than a dropped connection.
"""

from __future__ import annotations

import io
import json
import logging
import re
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import socket
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from infra.local.apigateway import MAX_REQUEST_BYTES, HttpRequest, HttpResponse, RestApiDataPlane, valid_header

log = logging.getLogger("local.http")

# API Gateway's quotas for a REST API: "Total combined size of request line and header values"
# and the URL of a regional API, 10,240 bytes each.
MAX_HEADER_BYTES = 10_240
MAX_REQUEST_LINE_BYTES = 10_240
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
_LENGTH = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(;[^\r\n]*)?\r?\n")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
MAX_TRAILER_LINES = 32


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _DeadlineReader(io.RawIOBase):
    """The connection's bytes, every read bounded by the time left until `deadline`: a client
    that trickles a byte at a time cannot hold a thread longer than its phase allows."""

    def __init__(self, connection: socket) -> None:
        self.connection = connection
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the client took too long")
            self.connection.settimeout(left)
        return self.connection.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server: GatewayHttpServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        # The wait for the next request on a kept-alive connection counts as header time too.
        self._reader.deadline = time.monotonic() + self.server.header_timeout_s
        super().handle_one_request()

    def parse_request(self) -> bool:
        if len(getattr(self, "raw_requestline", b"")) > MAX_REQUEST_LINE_BYTES:
            self.command, self.request_version, self.requestline = "", "HTTP/1.1", ""
            self.send_error(414, f"The request line is longer than {MAX_REQUEST_LINE_BYTES} bytes")
            return False
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(400, "HTTP/0.9 is not supported")
            return False
        size = len(self.requestline) + sum(len(value) for value in self.headers.values())
        if size > MAX_HEADER_BYTES:
            self.send_error(431, f"The request line and headers are larger than {MAX_HEADER_BYTES} bytes")
            return False
        if not _TOKEN.fullmatch(self.command):
            self.send_error(400, "Invalid method")
            return False
        # Every method token goes to the API, spelled as sent: which ones a resource serves is
        # the API's to say (API Gateway's answer for the others is a gateway response, never the
        # standard library's 501). The standard library looks up do_<method> next.
        setattr(self, "do_" + self.command, self._serve)
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """API Gateway's JSON error instead of the standard library's HTML page; the connection
        is closed after it (the request may not have been read to its end)."""
        reason = self.responses.get(code, ("Error", ""))[0]
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"  # else the status line and headers are left out
        body = json.dumps({"message": message or reason}).encode()
        self.log_message("refused %d: %s", code, message or reason)
        self.close_connection = True
        self.send_response(code, reason)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self) -> None:
        self._reader.deadline = time.monotonic() + self.server.body_timeout_s
        try:
            body, too_large = self._body()
        except _Refused as refused:
            self.send_error(refused.status, refused.message)
            return
        except TimeoutError:
            self.send_error(408, "The request body took too long")
            return
        except ConnectionError:
            self.close_connection = True  # the client left mid-body: nobody to answer
            return
        finally:
            # Reads wait for the next request's deadline; writes may take as long as a body may.
            self._reader.deadline = None
            self.connection.settimeout(self.server.body_timeout_s)
        if too_large:
            self.close_connection = True  # answered without reading the rest of the body
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            client_cert=self._client_cert(),
            too_large=too_large,
        )
        data_plane = self.server.data_plane
        assert data_plane is not None, "requests are served only once the data plane is set"
        self._write(data_plane.handle(request))

    def _write(self, response: HttpResponse) -> None:
        headers = [
            (name, value)
            for name, value in response.headers
            if name.lower() not in ("content-length", "connection", "transfer-encoding")
        ]
        invalid = [name for name, value in headers if not valid_header(name, value)]
        if invalid:
            # Written as it is, the connection would drop mid-response (or a header would split).
            log.warning("a response with invalid headers %s became a 502", [n[:64] for n in invalid])
            body = json.dumps({"message": "Internal server error"}).encode()
            response = HttpResponse(502, [("Content-Type", "application/json")], body)
            headers = list(response.headers)
        self.send_response(response.status)
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _body(self) -> tuple[bytes, bool]:
        """The request body and whether it is over API Gateway's limit (then unread), framed as
        RFC 9112 section 6 says; a framing that could be read two ways is refused."""
        lengths = self.headers.get_all("Content-Length") or []
        codings = self.headers.get_all("Transfer-Encoding") or []
        if lengths and codings:
            raise _Refused(400, "Content-Length and Transfer-Encoding together")
        if codings:
            names = [c.strip().lower() for value in codings for c in value.split(",") if c.strip()]
            if names != ["chunked"]:
                if all(_TOKEN.fullmatch(n) for n in names) and names and names[-1] == "chunked":
                    raise _Refused(501, f"Transfer-Encoding {', '.join(names)} is not supported")
                raise _Refused(400, "Invalid Transfer-Encoding")
            return self._chunked()
        if not lengths:
            return b"", False
        values = {part.strip() for value in lengths for part in value.split(",")}
        if len(values) != 1 or not _LENGTH.fullmatch(next(iter(values))):
            raise _Refused(400, "Invalid Content-Length")
        length = int(next(iter(values)))
        if length > MAX_REQUEST_BYTES:
            return b"", True
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("the client closed the connection mid-body")
        return body, False

    def _chunked(self) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            match = _CHUNK_SIZE.fullmatch(line)
            if not match:
                if not line:
                    raise ConnectionError("the client closed the connection mid-body")
                raise _Refused(400, "Invalid chunked body")
            length = int(match.group(1), 16)
            if length == 0:
                break
            size += length
            if size > MAX_REQUEST_BYTES:
                return b"", True
            chunk = self.rfile.read(length)
            if len(chunk) < length:
                raise ConnectionError("the client closed the connection mid-body")
            chunks.append(chunk)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _Refused(400, "Invalid chunked body")
        for _ in range(MAX_TRAILER_LINES):  # trailer fields are read and dropped, as API Gateway does
            if self.rfile.readline(MAX_HEADER_BYTES) in (b"\r\n", b"\n", b""):
                return b"".join(chunks), False
        raise _Refused(400, "Too many trailer fields")

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

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug(format, *args)


class GatewayHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    header_timeout_s = HEADER_TIMEOUT_S
    body_timeout_s = BODY_TIMEOUT_S

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
        request.settimeout(self.header_timeout_s)  # a client that never finishes its handshake
        try:
            wrapped: socket = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.info("TLS handshake refused from %s: %s", client_address[0], error)
            return
        super().finish_request(wrapped, client_address)
