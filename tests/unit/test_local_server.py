"""infra.local.server: the local API Gateway's front door over real loopback sockets, with a
recording stand-in for the data plane behind it. What API Gateway refuses before a request
reaches the API is refused here too, with API Gateway's JSON error, at once; slow clients are
cut off; and a response is never written with a header HTTP cannot carry."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from infra.local import server as server_module
from infra.local.apigateway import HttpRequest, HttpResponse
from infra.local.server import MAX_HEADER_BYTES, MAX_REQUEST_LINE_BYTES, GatewayHttpServer

# How long a test waits for an answer before calling it a hang (never a timing assertion).
PATIENCE_S = 10.0


@dataclass
class Recorder:
    """Stands in for the data plane: records each request, answers with `answer`."""

    requests: list[HttpRequest] = field(default_factory=list)
    answer: HttpResponse = field(default_factory=lambda: HttpResponse(200, [("Content-Type", "text/plain")], b"ok"))

    def handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if request.too_large:
            return HttpResponse(413, [("Content-Type", "application/json")], b'{"message":"Request Too Long"}')
        return self.answer


@dataclass
class Front:
    server: GatewayHttpServer
    plane: Recorder

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def connect(self) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=PATIENCE_S)
        return connection

    def exchange(self, raw: bytes) -> Answer:
        with self.connect() as connection:
            connection.sendall(raw)
            return read_answer(connection)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after the answer

    def json(self) -> Any:
        return json.loads(self.body)


def read_answer(connection: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without an answer after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Answer(status, headers, rest[:length], closed=headers.get("connection") == "close")


@pytest.fixture
def front() -> Iterator[Front]:
    plane = Recorder()
    server = GatewayHttpServer("127.0.0.1", 0, cast(Any, plane))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Front(server, plane)
    server.shutdown()
    server.server_close()


def request(target: str = "/items", headers: dict[str, str] | None = None, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _api_gateway_error(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.json()) == {"message"}
    assert b"<html" not in answer.body.lower()


# -- request line and headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "a" * 100_000},  # longer than the standard library reads a line
        {"Authorization": "Bearer " + "a" * MAX_HEADER_BYTES},
        {f"X-Part-{i}": "b" * 400 for i in range(30)},  # many headers, none long
        {f"X-N-{i}": "c" for i in range(150)},  # more headers than the standard library takes
    ],
    ids=["100 KB token", "10 KB token", "30 x 400 bytes", "150 headers"],
)
def test_request_headers_past_api_gateways_limit_are_a_json_431(front: Front, headers: dict[str, str]) -> None:
    answer = front.exchange(request(headers=headers))

    _api_gateway_error(answer, 431)
    assert answer.closed
    assert front.plane.requests == []


def test_request_line_and_header_values_up_to_the_limit_are_served(front: Front) -> None:
    # Given a request whose line and header values come to exactly the limit
    line = "GET /items HTTP/1.1"
    host = "127.0.0.1"
    filler = "x" * (MAX_HEADER_BYTES - len(line) - len(host))
    raw = f"{line}\r\nHost: {host}\r\nX-Fill: {filler}\r\n\r\n".encode()

    # Then it is served, and one byte more is refused
    assert front.exchange(raw).status == 200
    _api_gateway_error(front.exchange(raw.replace(b"X-Fill: ", b"X-Fill: y")), 431)


def test_a_request_line_past_the_url_limit_is_a_json_414(front: Front) -> None:
    answer = front.exchange(request(target="/items?q=" + "z" * MAX_REQUEST_LINE_BYTES))

    _api_gateway_error(answer, 414)
    assert front.plane.requests == []


@pytest.mark.parametrize(
    "raw",
    [b"GARBAGE\r\n\r\n", b"GET /items HTTP/9.9\r\n\r\n"],
    ids=["bad request line", "unsupported version"],
)
def test_the_standard_librarys_own_refusals_are_json_too(front: Front, raw: bytes) -> None:
    answer = front.exchange(raw)

    assert 400 <= answer.status < 600
    assert answer.headers["content-type"] == "application/json"
    assert "message" in answer.json()


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("TRACE", "/items"),
        ("CONNECT", "127.0.0.1:443"),
        ("PROPFIND", "/items"),
        ("BREW", "/pot"),
        ("M-SEARCH", "*"),
        ("get", "/items"),
        ("Delete", "/items"),
        ("ANY", "/items"),
    ],
)
def test_every_method_name_reaches_the_api_as_sent(front: Front, method: str, target: str) -> None:
    # Given any method token (the API decides what it serves, as API Gateway does)
    front.plane.answer = HttpResponse(404, [("Content-Type", "application/problem+json")], b'{"code":"x"}')

    # When it is sent
    answer = front.exchange(request(target=target, method=method))

    # Then the API's answer goes out, never the standard library's 501
    assert answer.status == 404
    assert answer.headers["content-type"] == "application/problem+json"
    (seen,) = front.plane.requests
    assert (seen.method, seen.target) == (method, target)


@pytest.mark.parametrize("method", ["G(T", "GET;", "G@T", 'GE"T', "G\u00e9T", "GET,POST"])
def test_a_method_that_is_not_a_token_is_a_json_400(front: Front, method: str) -> None:
    answer = front.exchange(request(method=method))

    _api_gateway_error(answer, 400)
    assert front.plane.requests == []


# -- body framing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framing", "status"),
    [
        ([("Content-Length", "-1")], 400),
        ([("Content-Length", "abc")], 400),
        ([("Content-Length", "1e3")], 400),
        ([("Content-Length", "+5")], 400),
        ([("Content-Length", "0x10")], 400),
        ([("Content-Length", "")], 400),
        ([("Content-Length", "5 5")], 400),
        ([("Content-Length", "99999999999999999999999")], 400),
        ([("Content-Length", "5"), ("Content-Length", "6")], 400),
        ([("Content-Length", "5, 6")], 400),
        ([("Content-Length", "5"), ("Transfer-Encoding", "chunked")], 400),
        ([("Transfer-Encoding", "chunked"), ("Content-Length", "5")], 400),
        ([("Transfer-Encoding", "gzip")], 400),
        ([("Transfer-Encoding", "chunked, gzip")], 400),
        ([("Transfer-Encoding", "gzip, chunked")], 501),
        ([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], 501),
    ],
)
def test_a_body_framing_that_can_be_read_two_ways_is_refused_at_once(
    front: Front, framing: list[tuple[str, str]], status: int
) -> None:
    # Given a server that would wait long for a body
    front.server.body_timeout_s = 60.0
    raw = b"POST /items HTTP/1.1\r\nHost: x\r\n" + b"".join(f"{n}: {v}\r\n".encode() for n, v in framing) + b"\r\n"

    # When only the headers are sent, no body: the answer comes without one (a hang fails here)
    answer = front.exchange(raw)

    # Then API Gateway's JSON error, the connection closed, and nothing reached the API
    _api_gateway_error(answer, status)
    assert answer.closed
    assert front.plane.requests == []


def test_a_repeated_identical_content_length_frames_the_body(front: Front) -> None:
    raw = b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"

    assert front.exchange(raw).status == 200
    assert front.plane.requests[0].body == b"hello"


def test_a_chunked_body_reaches_the_api_whole(front: Front) -> None:
    raw = (
        b"POST /items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )

    assert front.exchange(raw).status == 200
    assert front.plane.requests[0].body == b"hello world"


@pytest.mark.parametrize(
    "chunks",
    [b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n", b"1" * 40 + b"\r\n"],
    ids=["not hex", "no CRLF after the data", "negative", "size too long"],
)
def test_a_malformed_chunked_body_is_a_400(front: Front, chunks: bytes) -> None:
    raw = b"POST /items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks

    _api_gateway_error(front.exchange(raw), 400)
    assert front.plane.requests == []


def test_bodies_over_the_limit_are_not_read_by_either_framing(front: Front, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_REQUEST_BYTES", 100)
    by_length = b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" + b"a" * 101
    chunked = b"POST /items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b"a" * 64 + b"\r\n"
    chunked += b"40\r\n" + b"a" * 64 + b"\r\n0\r\n\r\n"

    for raw in (by_length, chunked):
        answer = front.exchange(raw)
        assert (answer.status, answer.closed) == (413, True)
    assert [r.too_large for r in front.plane.requests] == [True, True]


# -- slow clients ------------------------------------------------------------------------------------


def _closed_by_server(connection: socket.socket) -> bytes:
    """What the server sends until it closes the connection (a hang fails the test)."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass  # closed with data of ours unread: a reset, which is a close too
    return received


def _trickle(connection: socket.socket, data: bytes) -> None:
    """A byte at a time, each well within any per-read timeout; stops once the server answers or
    closes (writing on would have the answer lost to a reset)."""
    try:
        for byte in data:
            if select.select([connection], [], [], 0)[0]:
                return
            connection.sendall(bytes([byte]))
            time.sleep(0.05)
    except OSError:
        pass  # the server closed the connection while we were still sending


def test_a_client_that_trickles_its_headers_is_cut_off(front: Front) -> None:
    front.server.header_timeout_s = 0.5
    with front.connect() as connection:
        _trickle(connection, b"GET /items HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 1000)
        assert b"200" not in _closed_by_server(connection)
    assert front.plane.requests == []


def test_a_client_that_trickles_its_body_gets_a_408_and_is_cut_off(front: Front) -> None:
    front.server.body_timeout_s = 0.5
    with front.connect() as connection:
        connection.sendall(b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        _trickle(connection, b"b" * 1000)
        answer = read_answer(connection)
    _api_gateway_error(answer, 408)
    assert front.plane.requests == []


def test_an_idle_kept_alive_connection_is_closed(front: Front) -> None:
    front.server.header_timeout_s = 0.5
    with front.connect() as connection:
        connection.sendall(request())
        assert read_answer(connection).status == 200
        assert _closed_by_server(connection) == b""


# -- responses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Name", "line\u2028separator"),
        ("X-Name", "split\r\nSet-Cookie: stolen=1"),
        ("X-Name", "lf\nonly"),
        ("X-Name", "nul\x00byte"),
        ("X-Name", "emoji \U0001f4b6"),
        ("Bad Name", "value"),
        ("X-Colon:", "value"),
        ("", "value"),
    ],
)
def test_a_response_header_http_cannot_carry_becomes_a_502_not_a_dropped_connection(
    front: Front, name: str, value: str
) -> None:
    front.plane.answer = HttpResponse(200, [("Content-Type", "text/plain"), (name, value)], b"body")

    answer = front.exchange(request())

    _api_gateway_error(answer, 502)
    assert b"stolen" not in answer.body
    assert "set-cookie" not in answer.headers


def test_header_values_http_allows_are_written_as_they_are(front: Front) -> None:
    front.plane.answer = HttpResponse(200, [("X-Latin", "caf\u00e9\tau lait"), ("X-Empty", "")], b"")

    answer = front.exchange(request())

    assert answer.status == 200
    assert answer.headers["x-latin"] == "caf\u00e9\tau lait"
