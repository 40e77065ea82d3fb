"""Webhook receivers for tests: real HTTP servers on loopback that webhook deliveries are sent to.

Each path answers as the test scripted it with `Receiver.behave` (succeed, fail the first N, always
fail, answer slowly, 410, 429 with Retry-After, fail at random with a seed); a path never scripted
answers 204. Every request is recorded on arrival, before it is answered, so a test can wait for
it with `wait_for` even when the sender gives up on the answer (a timeout).

    with Receiver() as receiver:
        receiver.behave("/hooks", fail_first=2, status=500)
        ...deliver to receiver.url_for("/hooks")...
        [first, second, third] = receiver.wait_for(3, "/hooks")
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tests.upstreams import _Handler, _Server

NO_BODY_STATUSES = frozenset({204, 304})


class Headers(dict[str, str]):
    """A request's headers, looked up in any case: names are stored lower-cased, and repeated
    headers are joined with ", " (RFC 9110). A plain dict otherwise, so it goes wherever a
    dict of headers is expected (the standardwebhooks verifier takes one)."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@dataclass(frozen=True)
class Received:
    """One request as it arrived, with the status it was (or was to be) answered with."""

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    monotonic: float  # time.monotonic() on arrival: for gaps between attempts
    wall: float  # time.time() on arrival: to compare with webhook-timestamp
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Script:
    """How one path answers; `seen` counts the requests it has decided so far."""

    status: int
    ok_status: int
    body: bytes
    content_type: str
    fail_first: int | None
    fail_rate: float | None
    delay: float
    retry_after: str | None
    rng: random.Random
    seen: int = 0

    def decide(self) -> int:
        self.seen += 1
        if self.fail_first is not None:
            return self.status if self.seen <= self.fail_first else self.ok_status
        if self.fail_rate is not None:
            return self.status if self.rng.random() < self.fail_rate else self.ok_status
        return self.status


_DEFAULT = _Script(204, 204, b"", "", None, None, 0.0, None, random.Random(0))


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    content_type: str
    delay: float
    headers: dict[str, str] = field(default_factory=dict)


class _QuietServer(_Server):
    """A sender that timed out hangs up mid-answer; that is the point of a slow path, not an error to print."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _ReceiverHandler(_Handler):
    """The upstreams' handler (body reading, keep-alive, no logging) with the receiver's dispatch."""

    receiver: Receiver

    def _dispatch(self) -> None:
        monotonic, wall = time.monotonic(), time.time()
        body = self._read_body()
        headers = Headers()
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        answer = self.receiver._arrived(self.command, self.path, headers, body, monotonic, wall)
        # Waiting on the closing event, not sleeping: close() must not hang behind a slow path.
        if answer.delay and self.receiver._closing.wait(answer.delay):
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.status not in NO_BODY_STATUSES:
                if answer.body:
                    self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.body and self.command != "HEAD" and answer.status not in NO_BODY_STATUSES:
                self.wfile.write(answer.body)
        except OSError:
            # The sender gave up waiting (its timeout) and closed the connection.
            self.close_connection = True


class Receiver:
    """A webhook endpoint on an ephemeral loopback port; a context manager that closes it on exit."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._received: list[Received] = []
        self._scripts: dict[str, _Script] = {}
        self._closing = threading.Event()
        owner = self

        class Handler(_ReceiverHandler):
            receiver = owner

        self.server = _QuietServer(Handler)
        # A short poll interval keeps close() quick: shutdown() waits for the loop's next poll.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url_for(self, path: str) -> str:
        return self.url + path

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()  # slow paths stop waiting and answer nothing
        self.server.shutdown()
        self.server.close_connections()
        self.server.server_close()

    def behave(
        self,
        path: str,
        *,
        status: int = 204,
        body: bytes | str = b"",
        content_type: str = "application/json",
        fail_first: int | None = None,
        fail_rate: float | None = None,
        seed: int = 0,
        ok_status: int = 204,
        delay: float = 0.0,
        retry_after: int | str | None = None,
    ) -> None:
        """Script how `path` answers from now on (its count starts over):

        - by default every request gets `status` (204; 200 with a body; 410; 500 for always failing);
        - `fail_first=N`: the first N get `status`, later ones `ok_status`;
        - `fail_rate=p`: each gets `status` with probability p (a Random seeded with `seed`, drawn in
          arrival order), else `ok_status`;
        - `delay`: seconds to wait before answering, for every request (a sender's timeout);
        - `retry_after`: a `Retry-After` header on the answers with `status` (say 429 or 503).
        """
        if not path.startswith("/"):
            raise ValueError(f"a path starts with '/': {path!r}")
        if (fail_first is not None and fail_first < 0) or delay < 0:
            raise ValueError("fail_first and delay must be >= 0")
        if fail_rate is not None and not 0.0 <= fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        if fail_first is not None and fail_rate is not None:
            raise ValueError("fail_first and fail_rate do not combine: pick one")
        script = _Script(
            status=status,
            ok_status=ok_status,
            body=body.encode() if isinstance(body, str) else body,
            content_type=content_type,
            fail_first=fail_first,
            fail_rate=fail_rate,
            delay=delay,
            retry_after=None if retry_after is None else str(retry_after),
            rng=random.Random(seed),
        )
        with self._condition:
            self._scripts[path] = script

    @property
    def requests(self) -> list[Received]:
        """Every request so far, in arrival order."""
        with self._condition:
            return list(self._received)

    def requests_for(self, path: str) -> list[Received]:
        """The requests to `path` (query string aside), in arrival order."""
        with self._condition:
            return self._matching(path)

    def wait_for(self, count: int, path: str | None = None, timeout: float = 5.0) -> list[Received]:
        """Blocks until at least `count` requests (to `path`, or to any path) have arrived, and returns
        them all; fails the test with what did arrive after `timeout` seconds."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self._matching(path)) >= count, timeout):
                got = [f"{r.method} {r.path} -> {r.status}" for r in self._received]
                where = f" to {path}" if path is not None else ""
                raise AssertionError(f"expected {count} requests{where} within {timeout}s; received {got}")
            return self._matching(path)

    def _matching(self, path: str | None) -> list[Received]:
        return [r for r in self._received if path is None or r.path == path]

    def _arrived(
        self, method: str, target: str, headers: Headers, body: bytes, monotonic: float, wall: float
    ) -> _Answer:
        parts = urlsplit(target)
        with self._condition:
            # Decided under the lock, on arrival: fail_first and seeded failures follow arrival order.
            script = self._scripts.get(parts.path, _DEFAULT)
            status = script.decide() if script is not _DEFAULT else _DEFAULT.status
            self._received.append(Received(method, parts.path, parts.query, headers, body, monotonic, wall, status))
            self._condition.notify_all()
        extra = (
            {"Retry-After": script.retry_after} if script.retry_after is not None and status == script.status else {}
        )
        return _Answer(status, script.body, script.content_type, script.delay, extra)
