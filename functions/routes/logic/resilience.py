"""Resilience for upstream calls (seed 001): a circuit breaker per target (5 failures in a row
open it; after 60 s one probe is let through, half-open: its success closes the circuit, its
failure opens it again), retries with exponential backoff and jitter (3 attempts, 1 s initial,
5 s at most, x2) only where repeating is safe, and a deadline inside API Gateway's 29 s that
every attempt and every pause must fit in. Breakers live per container."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})  # RFC 9110 9.2.2
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
MIN_ATTEMPT_SECONDS = 0.05  # less than this left is not worth an attempt


class RetryPolicy(NamedTuple):
    max_attempts: int = 3
    initial_delay: float = 1.0
    max_delay: float = 5.0
    multiplier: float = 2.0


def may_retry(method: str, has_idempotency_key: bool) -> bool:
    """Repeating a request is safe for idempotent methods, or when the caller sent an
    Idempotency-Key (the upstream then does it once however often it is asked)."""
    return method.upper() in IDEMPOTENT_METHODS or has_idempotency_key


def retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.ends = clock() + seconds

    def remaining(self) -> float:
        return self.ends - self.clock()


def plan_attempt(deadline: Deadline, timeout: float) -> float | None:
    """The timeout for the next attempt: the route's, cut to what the deadline leaves; None when
    too little is left to try."""
    budget = min(timeout, deadline.remaining())
    return budget if budget >= MIN_ATTEMPT_SECONDS else None


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """The pause after attempt `attempt` (1-based): "equal jitter", half the exponential step
    fixed and half random, so retries from many callers spread out but never come at once."""
    step = min(policy.max_delay, policy.initial_delay * policy.multiplier ** (attempt - 1))
    return step / 2 + rng.uniform(0, step / 2)


def next_delay(policy: RetryPolicy, attempt: int, deadline: Deadline, rng: random.Random) -> float | None:
    """The pause before the next attempt, or None when it and a useful attempt do not fit."""
    delay = backoff(policy, attempt, rng)
    return delay if delay + MIN_ATTEMPT_SECONDS <= deadline.remaining() else None


class CircuitBreaker:
    def __init__(self, failure_threshold: int, reset_timeout: float, clock: Callable[[], float]) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.probing or self.clock() - self.opened_at >= self.reset_timeout else "open"

    def available(self) -> bool:
        """Whether a request could be let through now (without taking the half-open probe)."""
        with self._lock:
            if self.opened_at is None:
                return True
            return not self.probing and self.clock() - self.opened_at >= self.reset_timeout

    def allow(self) -> bool:
        """Let one request through: always when closed; once per reset timeout when open."""
        with self._lock:
            if self.opened_at is None:
                return True
            if self.probing or self.clock() - self.opened_at < self.reset_timeout:
                return False
            self.probing = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None
            self.probing = False

    def release(self) -> None:
        """The attempt says nothing about the target: a half-open probe may be tried again."""
        with self._lock:
            self.probing = False

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.probing or self.failures >= self.failure_threshold:
                self.opened_at = self.clock()
                self.probing = False

    def retry_after(self) -> float:
        with self._lock:
            if self.opened_at is None:
                return 0.0
            return max(0.0, self.reset_timeout - (self.clock() - self.opened_at))


class CircuitBreakers:
    """One breaker per target URL."""

    def __init__(
        self, *, failure_threshold: int = 5, reset_timeout: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> CircuitBreaker:
        found = self._breakers.get(url)
        if found is None:
            with self._lock:
                found = self._breakers.setdefault(
                    url, CircuitBreaker(self.failure_threshold, self.reset_timeout, self.clock)
                )
        return found

    def available(self, url: str) -> bool:
        found = self._breakers.get(url)
        return found is None or found.available()
