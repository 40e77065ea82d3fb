"""Sends one webhook request through the SSRF guard the data plane uses (gateway_core.ssrf_client):
every connection resolves the receiver's host and checks each address, so a URL that passed the
check at creation cannot be pointed at an internal address later by changing its DNS. No
redirect is followed (a 3xx is a failed attempt) and nothing is retried here: retries are the
schedule's. The answer's first kilobyte is kept for the attempt record."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from urllib3.exceptions import HTTPError
from urllib3.util.timeout import Timeout

from functions.webhooks.logic.ports import SendFailed, Sent
from gateway_core.ssrf import BlockedDestination, SsrfPolicy
from gateway_core.ssrf_client import GuardedPoolManager, guarded_pool_manager

SAMPLE_BYTES = 1024
# Response headers kept with an attempt (the rest are noise for someone debugging a receiver).
_KEPT_HEADERS = 30


class GuardedSender:
    def __init__(self, policy: SsrfPolicy | None = None, pool: GuardedPoolManager | None = None) -> None:
        self.pool = pool or guarded_pool_manager(policy or SsrfPolicy.from_env(), timeout=30.0)
        # urllib3's timeouts bound each socket operation, not the request: a receiver dripping a
        # byte a second would hold an attempt for ever. The request runs on a thread of its own
        # and the attempt ends at the deadline, whatever the thread is still waiting for.
        self._threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="send")

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Sent:
        started = time.perf_counter()
        future = self._threads.submit(self._send, method, url, headers, body, timeout_s, started)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout as error:
            future.cancel()
            raise SendFailed(f"no answer within {timeout_s:g} s", _elapsed(started)) from error

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float, started: float
    ) -> Sent:
        try:
            response = self.pool.urlopen(
                method,
                url,
                body=body,
                headers=headers,
                timeout=Timeout(total=timeout_s),
                preload_content=False,
            )
            try:
                sample = response.read(SAMPLE_BYTES, decode_content=False) or b""
            finally:
                if response.length_remaining == 0:
                    response.release_conn()
                else:  # a longer answer is not read on: its connection is closed, not reused
                    response.close()
        except BlockedDestination as error:
            raise SendFailed(str(error), _elapsed(started)) from error
        except (HTTPError, OSError) as error:
            raise SendFailed(_describe(error, timeout_s), _elapsed(started)) from error
        except (ValueError, UnicodeError) as error:  # a header or URL HTTP cannot carry
            raise SendFailed(f"the request could not be sent: {type(error).__name__}", _elapsed(started)) from error
        kept = dict(list(response.headers.items())[:_KEPT_HEADERS])
        return Sent(
            status=response.status,
            headers={k.lower(): v[:500] for k, v in kept.items()},
            body_sample=sample.decode("utf-8", errors="replace"),
            latency_ms=_elapsed(started),
        )


def _elapsed(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _describe(error: Exception, timeout_s: float) -> str:
    text = type(error).__name__
    if "Timeout" in text or "timed out" in str(error):
        return f"no answer within {timeout_s:g} s"
    reason = getattr(error, "reason", None)
    return f"{text}: {reason or error}"[:300]
