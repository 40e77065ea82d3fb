"""Upstream services for end-to-end tests: real HTTP servers on loopback that the gateway proxies to."""

from __future__ import annotations

import json
import socket
import threading
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
BANK_NS = "urn:bank:accounts"

# The bank's books, shared by the SOAP and GraphQL services; amounts are strings so they stay exact.
ACCOUNTS = {"ACC-1": ("1234.56", "EUR"), "ACC-2": ("0.10", "EUR")}


@dataclass(frozen=True)
class Request:
    """One request as a handler received it; header names lower-cased."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """What to answer: the body is bytes, already encoded."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    more_headers: list[tuple[str, str]] = field(default_factory=list)  # sent after, names may repeat


def json_reply(status: int, value: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(value, separators=(",", ":")).encode(), "application/json", headers)


class _Server(ThreadingHTTPServer):
    """Tracks open connections so close() also ends idle keep-alive ones, and the upstream is really gone."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self.connections_lock:
                self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_now = list(self.connections)
        for sock in open_now:
            with suppress(OSError):  # the peer may have hung up already
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Reads a whole request, asks its upstream for a Reply, and always sends Content-Length (for keep-alive)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, delayed ACKs stall each keep-alive reply ~40 ms.
    disable_nagle_algorithm = True
    upstream: _Upstream

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        body = self._read_body()
        target = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            # Repeated headers combine as RFC 9110 allows, so none is silently lost from an echo.
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = Request(self.command, target.path, target.query, headers, body)
        try:
            reply = self.upstream.respond(request)
        except Exception as error:
            # A bug in a test server should show as a readable 500, not a dropped connection.
            reply = json_reply(500, {"error": f"upstream crashed: {error!r}"})
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in [*reply.headers.items(), *reply.more_headers]:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def log_message(self, *_: Any) -> None:
        pass


class _Upstream:
    """A server on an ephemeral loopback port, answering from respond() in a daemon thread."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(_Handler):
            upstream = owner

        self.server = _Server(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval keeps close() quick: shutdown() waits for the loop's next poll.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def respond(self, request: Request) -> Reply:
        raise NotImplementedError

    def _counted(self) -> None:
        with self._lock:
            self.count += 1

    def close(self) -> None:
        self.server.shutdown()
        self.server.close_connections()
        self.server.server_close()


def _json_text(body: bytes) -> str | None:
    """The body as JSON text when it is valid JSON, else None."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        text = body.decode("utf-8")
        # NaN and Infinity parse in Python but are not JSON; spliced in they would break the echo.
        json.loads(text, parse_constant=refuse)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        return None
    return text.strip()


class JsonUpstream(_Upstream):
    """A JSON echo service with a health endpoint; it can be told to fail or to report itself unhealthy."""

    HEALTH_PATH = "/health"

    def __init__(self, name: str = "json") -> None:
        self.name = name
        self.health_checks = 0
        self.healthy = True
        self._failures_left = 0
        self._failure_status = 503
        super().__init__()

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next n non-health requests with status; fail_next(0) stops failing."""
        with self._lock:
            self._failures_left = max(n, 0)
            self._failure_status = status

    def respond(self, request: Request) -> Reply:
        named = {"X-Upstream-Name": self.name}
        if request.method == "GET" and request.path == self.HEALTH_PATH:
            with self._lock:
                self.health_checks += 1
            if self.healthy:
                return json_reply(200, {"status": "ok"}, **named)
            return json_reply(503, {"status": "down"}, **named)
        with self._lock:
            self.count += 1
            failing = self._failures_left > 0
            if failing:
                self._failures_left -= 1
            status = self._failure_status
        if failing:
            return json_reply(status, {"error": "induced failure"}, **named)
        echo = {
            "upstream": self.name,
            "method": request.method,
            "path": request.path,
            "query": parse_qs(request.query, keep_blank_values=True),
            "headers": request.headers,
        }
        # The body goes in as the text it arrived as, so numbers like 1234.50 keep their exact spelling.
        raw = _json_text(request.body) if request.body else "null"
        if raw is None:
            raw = json.dumps(request.body.decode("utf-8", errors="replace"))
        text = json.dumps(echo, separators=(",", ":"))[:-1] + ',"body":' + raw + "}"
        return Reply(200, text.encode(), "application/json", named)


class SoapUpstream(_Upstream):
    """A SOAP 1.1 / 1.2 bank account service at /soap with one operation, GetBalance; answers in the caller's version."""

    PATH = "/soap"

    def __init__(self) -> None:
        self.last_request = b""
        self.last_headers: dict[str, str] = {}
        super().__init__()

    def respond(self, request: Request) -> Reply:
        self._counted()
        if request.path != self.PATH:
            return Reply(404, b"Not Found", "text/plain; charset=utf-8")
        if request.method != "POST":
            return Reply(405, b"Method Not Allowed", "text/plain; charset=utf-8", {"Allow": "POST"})
        with self._lock:
            self.last_request = request.body
            self.last_headers = dict(request.headers)  # includes soapaction, which SOAP 1.1 callers send
        # Until the envelope says otherwise, the media type tells the version (1.2 is application/soap+xml).
        version = SOAP12 if request.headers.get("content-type", "").startswith("application/soap+xml") else SOAP11
        try:
            # Only the gateway under test talks to this loopback server, so untrusted XML is not a concern.
            root = ET.fromstring(request.body)  # noqa: S314
        except ET.ParseError as error:
            return self._fault(version, server=True, message=f"Malformed XML: {error}")
        if root.tag not in (f"{{{SOAP11}}}Envelope", f"{{{SOAP12}}}Envelope"):
            return self._fault(version, server=True, message="Not a SOAP envelope")
        version = root.tag[1:].split("}")[0]
        body = root.find(f"{{{version}}}Body")
        operation = body[0] if body is not None and len(body) else None
        if operation is None or operation.tag != f"{{{BANK_NS}}}GetBalance":
            name = operation.tag if operation is not None else "(none)"
            return self._fault(version, server=True, message=f"Unknown operation {name}")
        found = operation.find(f"{{{BANK_NS}}}accountId")
        if found is None:
            found = operation.find("accountId")  # unqualified children are common in document/literal
        account_id = (found.text or "").strip() if found is not None else ""
        if account_id not in ACCOUNTS:
            return self._fault(version, server=False, message=f"Unknown account {account_id}")
        balance, currency = ACCOUNTS[account_id]
        payload = (
            f'<GetBalanceResponse xmlns="{BANK_NS}"><accountId>{escape(account_id)}</accountId>'
            f"<balance>{balance}</balance><currency>{currency}</currency></GetBalanceResponse>"
        )
        return self._envelope(200, version, payload)

    def _fault(self, version: str, *, server: bool, message: str) -> Reply:
        # SOAP sends faults with HTTP 500 whoever is to blame; the fault code says who (Client/Sender or Server/Receiver).
        text = escape(message)
        if version == SOAP12:
            code = "env:Receiver" if server else "env:Sender"
            fault = (
                f"<env:Fault><env:Code><env:Value>{code}</env:Value></env:Code>"
                f'<env:Reason><env:Text xml:lang="en">{text}</env:Text></env:Reason></env:Fault>'
            )
        else:
            code = "soap:Server" if server else "soap:Client"
            fault = f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring></soap:Fault>"
        return self._envelope(500, version, fault)

    @staticmethod
    def _envelope(status: int, version: str, content: str) -> Reply:
        prefix, media = ("env", "application/soap+xml") if version == SOAP12 else ("soap", "text/xml")
        document = (
            f'<?xml version="1.0" encoding="utf-8"?>'
            f'<{prefix}:Envelope xmlns:{prefix}="{version}"><{prefix}:Body>{content}</{prefix}:Body></{prefix}:Envelope>'
        )
        return Reply(status, document.encode("utf-8"), f"{media}; charset=utf-8")


class GraphqlUpstream(_Upstream):
    """A GraphQL service at /graphql that resolves one field, account(id); no real parser, a text match suffices."""

    PATH = "/graphql"

    def __init__(self) -> None:
        self.last_request: dict[str, Any] = {}
        super().__init__()

    def respond(self, request: Request) -> Reply:
        self._counted()
        if request.path != self.PATH:
            return json_reply(404, {"errors": [{"message": f"No GraphQL endpoint at {request.path}"}]})
        if request.method != "POST":
            return json_reply(405, {"errors": [{"message": "Use POST"}]}, Allow="POST")
        try:
            document = json.loads(request.body)
        except ValueError:
            return json_reply(400, {"errors": [{"message": "Request body is not JSON"}]})
        if not isinstance(document, dict) or not isinstance(document.get("query"), str):
            return json_reply(400, {"errors": [{"message": "Request must be a JSON object with a string 'query'"}]})
        with self._lock:
            self.last_request = document
        if "account(" not in document["query"]:
            return json_reply(400, {"errors": [{"message": "Only the account(id) field is served here"}]})
        variables = document.get("variables") or {}
        account_id = variables.get("id") if isinstance(variables, dict) else None
        if not isinstance(account_id, str) or account_id not in ACCOUNTS:
            error = {"message": "Account not found", "path": ["account"], "extensions": {"code": "NOT_FOUND"}}
            return json_reply(200, {"data": {"account": None}, "errors": [error]})
        balance, currency = ACCOUNTS[account_id]
        return json_reply(200, {"data": {"account": {"id": account_id, "balance": balance, "currency": currency}}})


class ScriptedUpstream(_Upstream):
    """Answers each path with the Reply scripted for it (or a function of the request), else a
    JSON echo of what it received; every request is recorded, raw path and headers included."""

    def __init__(self, replies: dict[str, Reply | Callable[[Request], Reply]] | None = None) -> None:
        self.replies = dict(replies or {})
        self.requests: list[Request] = []
        super().__init__()

    def respond(self, request: Request) -> Reply:
        with self._lock:
            self.count += 1
            self.requests.append(request)
        scripted = self.replies.get(request.path)
        if scripted is None:
            return json_reply(200, {"path": request.path, "query": request.query, "headers": request.headers})
        return scripted(request) if callable(scripted) else scripted

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def encoded(body: bytes, *codings: str) -> bytes:
    """`body` with the content codings applied in order (`gzip`, `deflate`)."""
    for coding in codings:
        compressor = zlib.compressobj(9, zlib.DEFLATED, _WBITS[coding])
        body = compressor.compress(body) + compressor.flush()
    return body


@cache
def zeros_bomb(size: int, *codings: str) -> bytes:
    """`size` zero bytes with the codings applied in order, built as a stream (never `size` bytes
    in memory): two layers of gzip over 1 GiB come to about 2 KB."""
    compressors = [zlib.compressobj(9, zlib.DEFLATED, _WBITS[c]) for c in codings]
    out: list[bytes] = []

    def push(index: int, data: bytes) -> None:
        if index == len(compressors):
            out.append(data)
        elif data:
            push(index + 1, compressors[index].compress(data))

    step = bytes(1 << 20)
    for offset in range(0, size, len(step)):
        push(0, step[: min(len(step), size - offset)])
    for index, compressor in enumerate(compressors):
        push(index + 1, compressor.flush())
    return b"".join(out)
