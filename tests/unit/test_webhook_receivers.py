"""The loopback webhook receivers the delivery tests send to (tests/webhook_receivers.py), each
behaviour checked over real HTTP with httpx."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import suppress

import httpx
import pytest
from standardwebhooks import Webhook

from functions.webhooks.logic.signing import new_symmetric_secret, sign
from tests.webhook_receivers import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def statuses(receiver: Receiver, path: str, n: int) -> list[int]:
    with httpx.Client() as client:
        return [client.post(receiver.url_for(path), content=b"{}").status_code for _ in range(n)]


def test_unscripted_paths_answer_204_and_record_the_request(receiver: Receiver) -> None:
    # Given
    body = b'{"type":"key.rotated"}\xff'  # raw bytes kept as sent, even invalid UTF-8
    before_monotonic, before_wall = time.monotonic(), time.time()

    # When
    response = httpx.post(
        receiver.url_for("/any/path?x=1"), content=body, headers={"Webhook-Id": "msg_1", "X-Twice": "a"}
    )

    # Then
    assert response.status_code == 204
    assert response.content == b""
    [request] = receiver.requests
    assert (request.method, request.path, request.query, request.body) == ("POST", "/any/path", "x=1", body)
    assert request.headers["webhook-id"] == request.headers["WEBHOOK-ID"] == "msg_1"
    assert request.headers.get("Webhook-Id") == "msg_1"
    assert "WeBhOoK-iD" in request.headers
    assert request.headers.get("missing") is None
    assert request.status == 204
    assert before_monotonic <= request.monotonic <= time.monotonic()
    assert before_wall - 1 <= request.wall <= time.time() + 1
    assert receiver.requests_for("/any/path") == [request]
    assert receiver.requests_for("/other") == []


def test_repeated_headers_are_joined(receiver: Receiver) -> None:
    httpx.post(receiver.url, headers=[("X-Tag", "a"), ("x-tag", "b")])

    [request] = receiver.wait_for(1)
    assert request.headers["X-Tag"] == "a, b"


def test_succeed_with_a_status_and_body(receiver: Receiver) -> None:
    # Given
    receiver.behave("/ok", status=200, body='{"received":true}')

    # When
    response = httpx.post(receiver.url_for("/ok"), json={"a": 1})

    # Then
    assert response.status_code == 200
    assert response.json() == {"received": True}
    assert response.headers["content-type"] == "application/json"
    assert receiver.requests_for("/ok")[0].json() == {"a": 1}


def test_fail_first_n_then_succeed(receiver: Receiver) -> None:
    # Given
    receiver.behave("/a", fail_first=2, status=500)

    # When / Then: two failures, then the success status for good
    assert statuses(receiver, "/a", 4) == [500, 500, 204, 204]
    assert [r.status for r in receiver.requests_for("/a")] == [500, 500, 204, 204]
    # and other paths keep the default
    assert statuses(receiver, "/b", 1) == [204]


def test_behave_again_starts_the_count_over(receiver: Receiver) -> None:
    receiver.behave("/a", fail_first=1, status=503, ok_status=200)
    assert statuses(receiver, "/a", 2) == [503, 200]

    receiver.behave("/a", fail_first=1, status=502)
    assert statuses(receiver, "/a", 2) == [502, 204]


@pytest.mark.parametrize("status", [500, 503, 404, 301, 410])
def test_always_answer_a_status(receiver: Receiver, status: int) -> None:
    receiver.behave("/down", status=status, body=b'{"error":"nope"}')

    with httpx.Client(follow_redirects=False) as client:
        answers = [client.post(receiver.url_for("/down"), content=b"{}") for _ in range(3)]

    assert [a.status_code for a in answers] == [status] * 3
    assert answers[0].json() == {"error": "nope"}


def test_429_with_retry_after_for_the_first_n(receiver: Receiver) -> None:
    # Given
    receiver.behave("/limited", fail_first=2, status=429, retry_after=7)

    # When
    answers = [httpx.post(receiver.url_for("/limited"), content=b"{}") for _ in range(3)]

    # Then the throttled answers carry Retry-After, the success does not
    assert [a.status_code for a in answers] == [429, 429, 204]
    assert [a.headers.get("retry-after") for a in answers] == ["7", "7", None]


def test_a_slow_path_makes_the_sender_time_out_and_is_still_recorded(receiver: Receiver) -> None:
    # Given
    receiver.behave("/slow", delay=1.5)

    # When the sender waits less than the delay
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(receiver.url_for("/slow"), content=b"{}", timeout=0.2)

    # Then it timed out without waiting the delay out, the attempt was recorded,
    # and other requests are answered meanwhile (one thread per connection)
    assert time.monotonic() - started < 1.0
    assert len(receiver.wait_for(1, "/slow", timeout=1)) == 1
    assert statuses(receiver, "/fast", 1) == [204]


def test_a_delay_shorter_than_the_timeout_is_answered_after_the_delay(receiver: Receiver) -> None:
    receiver.behave("/slowish", delay=0.3, status=200, body=b'{"ok":1}')

    started = time.monotonic()
    response = httpx.post(receiver.url_for("/slowish"), content=b"{}", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"ok": 1}
    assert time.monotonic() - started >= 0.3


def test_closing_does_not_wait_for_a_slow_path() -> None:
    # Given a request parked on a slow path
    receiver = Receiver()
    receiver.behave("/slow", delay=30)
    sender = threading.Thread(target=_post_ignoring_errors, args=(receiver.url_for("/slow"),), daemon=True)
    sender.start()
    receiver.wait_for(1, "/slow")

    # When
    started = time.monotonic()
    receiver.close()

    # Then close is quick, the sender gets no answer, and the port is gone
    assert time.monotonic() - started < 1.0
    sender.join(timeout=5)
    assert not sender.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.post(receiver.url_for("/slow"), content=b"{}", timeout=1)


def _post_ignoring_errors(url: str) -> None:
    with suppress(httpx.HTTPError):
        httpx.post(url, content=b"{}", timeout=10)


def test_random_failures_follow_the_seed() -> None:
    # Given two receivers scripted with the same seed
    with Receiver() as first, Receiver() as second:
        for server in (first, second):
            server.behave("/flaky", fail_rate=0.5, status=500, seed=42)

        # When each gets the same number of requests
        seen = [statuses(server, "/flaky", 40) for server in (first, second)]

    # Then they fail on the same requests, and both outcomes occur
    assert seen[0] == seen[1]
    assert set(seen[0]) == {500, 204}
    assert 8 <= seen[0].count(500) <= 32


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({"fail_rate": 0.0}, 204), ({"fail_rate": 1.0}, 500), ({"fail_first": 0}, 204)],
)
def test_zero_and_certain_failure(receiver: Receiver, kwargs: dict[str, float], expected: int) -> None:
    receiver.behave("/flaky", status=500, **kwargs)  # type: ignore[arg-type]

    assert statuses(receiver, "/flaky", 10) == [expected] * 10


def test_wait_for_wakes_when_requests_arrive(receiver: Receiver) -> None:
    # Given a sender that delivers later, from another thread
    def later() -> None:
        time.sleep(0.2)
        httpx.post(receiver.url_for("/other"), content=b"{}")
        httpx.post(receiver.url_for("/late"), content=b"{}")

    threading.Thread(target=later, daemon=True).start()

    # When / Then
    [late] = receiver.wait_for(1, "/late", timeout=5)
    assert late.path == "/late"
    assert len(receiver.wait_for(2, timeout=1)) == 2


def test_wait_for_fails_with_what_arrived(receiver: Receiver) -> None:
    httpx.post(receiver.url_for("/one"), content=b"{}")

    started = time.monotonic()
    with pytest.raises(
        AssertionError, match=r"expected 2 requests to /one within 0.2s; received \['POST /one -> 204'\]"
    ):
        receiver.wait_for(2, "/one", timeout=0.2)
    assert time.monotonic() - started < 1.0


def test_concurrent_requests_are_all_recorded(receiver: Receiver) -> None:
    # Given a path failing its first ten, and one client shared by thirty threads
    receiver.behave("/busy", fail_first=10, status=500)
    answered: list[int] = []
    with httpx.Client(limits=httpx.Limits(max_connections=30)) as client:

        def post() -> None:
            answered.append(client.post(receiver.url_for("/busy"), content=b"{}").status_code)

        threads = [threading.Thread(target=post, daemon=True) for _ in range(30)]

        # When they all send at once
        for thread in threads:
            thread.start()
        received = receiver.wait_for(30, "/busy", timeout=60)  # generous: CI machines are busy
        for thread in threads:
            thread.join(timeout=60)

    # Then every request is recorded, and decided on arrival under one lock: exactly the first
    # ten to arrive failed, whatever the interleaving, and each sender got what was recorded
    assert len(received) == 30
    assert [r.status for r in received] == [500] * 10 + [204] * 20
    assert sorted(answered) == sorted(r.status for r in received)


def test_chunked_bodies_are_read_whole(receiver: Receiver) -> None:
    httpx.post(receiver.url_for("/chunked"), content=iter([b'{"a":', b"1}"]))

    [request] = receiver.wait_for(1, "/chunked")
    assert request.headers["transfer-encoding"] == "chunked"
    assert request.body == b'{"a":1}'


def test_keep_alive_connections_are_served(receiver: Receiver) -> None:
    receiver.behave("/ok", status=200, body=b"{}")

    with httpx.Client() as client:
        answers = [client.post(receiver.url_for(p), content=b"{}") for p in ("/ok", "/none", "/ok")]

    assert [a.status_code for a in answers] == [200, 204, 200]


def test_recorded_requests_feed_the_standard_webhooks_verifier(receiver: Receiver) -> None:
    # Given a signed delivery
    secret = new_symmetric_secret()
    now = int(time.time())
    body = b'{"type":"key.rotated","timestamp":"2026-12-02T12:00:00Z","data":{}}'
    sent = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign("msg_1", now, body, [secret]),
    }

    # When
    httpx.post(receiver.url_for("/hooks"), content=body, headers={k.title(): v for k, v in sent.items()})

    # Then the recorded headers and raw body verify as they are
    [request] = receiver.wait_for(1, "/hooks")
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "key.rotated"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fail_first": 1, "fail_rate": 0.5}, "do not combine"),
        ({"fail_rate": 1.5}, "between 0 and 1"),
        ({"fail_rate": -0.1}, "between 0 and 1"),
        ({"fail_first": -1}, ">= 0"),
        ({"delay": -1.0}, ">= 0"),
    ],
)
def test_contradictory_scripts_are_refused(receiver: Receiver, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        receiver.behave("/a", status=500, **kwargs)  # type: ignore[arg-type]


def test_a_path_must_start_with_a_slash(receiver: Receiver) -> None:
    with pytest.raises(ValueError, match="starts with '/'"):
        receiver.behave("hooks")
