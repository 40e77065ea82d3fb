"""Resilience for upstream calls: when repeating is safe, backoff with equal jitter, the deadline
every attempt and pause must fit in, and the per-target circuit breaker (seed 001)."""

from __future__ import annotations

import random

import pytest

from functions.routes.logic.resilience import (
    MIN_ATTEMPT_SECONDS,
    CircuitBreaker,
    CircuitBreakers,
    Deadline,
    RetryPolicy,
    backoff,
    may_retry,
    next_delay,
    plan_attempt,
    retryable_status,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class HighRandom(random.Random):
    """Jitter always at its top: the full exponential step."""

    def uniform(self, a: float, b: float) -> float:
        return b


class LowRandom(random.Random):
    """Jitter always at its bottom: half the step."""

    def uniform(self, a: float, b: float) -> float:
        return a


# --- when to retry -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "get", "Put"])
def test_idempotent_methods_may_be_retried(method: str) -> None:
    assert may_retry(method, has_idempotency_key=False) is True


@pytest.mark.parametrize("method", ["POST", "PATCH", "post", "CONNECT", "TRACE"])
def test_unsafe_methods_are_not_retried_without_an_idempotency_key(method: str) -> None:
    assert may_retry(method, has_idempotency_key=False) is False


@pytest.mark.parametrize("method", ["POST", "PATCH", "GET"])
def test_an_idempotency_key_makes_any_method_retryable(method: str) -> None:
    assert may_retry(method, has_idempotency_key=True) is True


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_failures_are_retryable(status: int) -> None:
    assert retryable_status(status) is True


@pytest.mark.parametrize("status", [200, 201, 204, 301, 400, 401, 403, 404, 409, 422, 429, 501, 505])
def test_other_statuses_are_not_retryable(status: int) -> None:
    assert retryable_status(status) is False


# --- backoff -----------------------------------------------------------------------------------


def test_seed_retry_policy_defaults() -> None:
    policy = RetryPolicy()

    assert (policy.max_attempts, policy.initial_delay, policy.max_delay, policy.multiplier) == (3, 1.0, 5.0, 2.0)


def test_backoff_grows_by_the_multiplier_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=5.0, multiplier=2.0)

    tops = [backoff(policy, attempt, HighRandom()) for attempt in range(1, 7)]
    bottoms = [backoff(policy, attempt, LowRandom()) for attempt in range(1, 7)]

    assert tops == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert bottoms == [0.5, 1.0, 2.0, 2.5, 2.5, 2.5]


def test_backoff_follows_another_multiplier() -> None:
    policy = RetryPolicy(initial_delay=0.2, max_delay=10.0, multiplier=3.0)

    tops = [backoff(policy, attempt, HighRandom()) for attempt in range(1, 5)]

    assert tops == pytest.approx([0.2, 0.6, 1.8, 5.4])


def test_backoff_uses_equal_jitter_within_half_step_and_step() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=5.0, multiplier=2.0)
    rng = random.Random(20240101)

    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        delays = [backoff(policy, attempt, rng) for _ in range(500)]
        assert all(step / 2 <= d <= step for d in delays)
        # Spread over the whole upper half, not a constant.
        assert min(delays) < step / 2 + step * 0.05
        assert max(delays) > step - step * 0.05


def test_backoff_is_reproducible_with_a_seeded_random() -> None:
    policy = RetryPolicy()

    first = [backoff(policy, attempt, random.Random(7)) for attempt in (1, 2, 3)]
    again = [backoff(policy, attempt, random.Random(7)) for attempt in (1, 2, 3)]

    assert first == again
    assert first[0] == 0.5 + random.Random(7).uniform(0, 0.5)
    assert first != [backoff(policy, attempt, random.Random(8)) for attempt in (1, 2, 3)]


# --- deadline ----------------------------------------------------------------------------------


def test_deadline_counts_down_on_the_injected_clock() -> None:
    clock = FakeClock()
    deadline = Deadline(29.0, clock=clock)

    assert deadline.remaining() == 29.0
    clock.advance(10.5)
    assert deadline.remaining() == 18.5
    clock.advance(20.0)
    assert deadline.remaining() == -1.5


def test_next_delay_returns_the_pause_when_it_fits() -> None:
    clock = FakeClock(0.0)
    deadline = Deadline(29.0, clock=clock)
    policy = RetryPolicy()

    delay = next_delay(policy, 2, deadline, random.Random(3))

    assert delay == backoff(policy, 2, random.Random(3))
    assert delay is not None
    assert 1.0 <= delay <= 2.0


def test_next_delay_is_none_when_the_pause_and_a_minimal_attempt_do_not_fit() -> None:
    clock = FakeClock(0.0)
    policy = RetryPolicy()
    expected = backoff(policy, 1, random.Random(11))

    exactly = Deadline(expected + MIN_ATTEMPT_SECONDS, clock=clock)
    assert next_delay(policy, 1, exactly, random.Random(11)) == expected

    short = Deadline(expected + MIN_ATTEMPT_SECONDS - 0.001, clock=clock)
    assert next_delay(policy, 1, short, random.Random(11)) is None

    only_the_pause = Deadline(expected, clock=clock)
    assert next_delay(policy, 1, only_the_pause, random.Random(11)) is None


def test_next_delay_is_none_once_the_deadline_has_passed() -> None:
    clock = FakeClock()
    deadline = Deadline(1.0, clock=clock)
    clock.advance(2.0)

    assert next_delay(RetryPolicy(initial_delay=0.01), 1, deadline, random.Random(1)) is None


def test_plan_attempt_keeps_the_route_timeout_when_time_is_left() -> None:
    clock = FakeClock()
    deadline = Deadline(29.0, clock=clock)

    assert plan_attempt(deadline, 10.0) == 10.0


def test_plan_attempt_cuts_the_timeout_to_the_deadline() -> None:
    clock = FakeClock(0.0)
    deadline = Deadline(29.0, clock=clock)
    clock.advance(26.0)

    assert plan_attempt(deadline, 10.0) == pytest.approx(3.0)


def test_plan_attempt_is_none_when_too_little_is_left() -> None:
    clock = FakeClock(0.0)
    deadline = Deadline(1.0, clock=clock)

    clock.advance(1.0 - MIN_ATTEMPT_SECONDS)
    assert plan_attempt(deadline, 10.0) == pytest.approx(MIN_ATTEMPT_SECONDS)
    clock.advance(0.01)
    assert plan_attempt(deadline, 10.0) is None
    clock.advance(5.0)
    assert plan_attempt(deadline, 10.0) is None


def test_plan_attempt_is_none_for_a_timeout_below_the_minimum() -> None:
    deadline = Deadline(29.0, clock=FakeClock())

    assert plan_attempt(deadline, MIN_ATTEMPT_SECONDS / 2) is None


# --- circuit breaker ---------------------------------------------------------------------------


def open_breaker(clock: FakeClock, threshold: int = 3, reset: float = 30.0) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=threshold, reset_timeout=reset, clock=clock)
    for _ in range(threshold):
        breaker.record_failure()
    return breaker


def test_breaker_starts_closed() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30.0, clock=FakeClock())

    assert breaker.state == "closed"
    assert breaker.allow() is True
    assert breaker.allow() is True
    assert breaker.available() is True
    assert breaker.retry_after() == 0.0


def test_breaker_opens_after_the_threshold_of_consecutive_failures() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30.0, clock=clock)

    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.allow() is True

    breaker.record_failure()
    assert breaker.state == "open"
    assert breaker.allow() is False
    assert breaker.available() is False
    assert breaker.retry_after() == 30.0


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30.0, clock=FakeClock())

    for _ in range(5):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()

    assert breaker.state == "closed"
    assert breaker.failures == 0
    assert breaker.allow() is True
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"


def test_an_open_breaker_refuses_until_the_reset_timeout() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)

    for _ in range(3):
        clock.advance(9.0)
        assert breaker.allow() is False
        assert breaker.available() is False
        assert breaker.state == "open"
    assert breaker.retry_after() == pytest.approx(3.0)


def test_retry_after_counts_down_to_zero() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock, reset=60.0)

    seen = []
    for _ in range(4):
        seen.append(breaker.retry_after())
        clock.advance(20.0)
    clock.advance(100.0)
    seen.append(breaker.retry_after())

    assert seen == pytest.approx([60.0, 40.0, 20.0, 0.0, 0.0])


def test_after_the_reset_timeout_exactly_one_probe_goes_through() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(30.0)

    assert breaker.state == "half_open"
    # Asking whether the target is available does not use up the probe.
    assert breaker.available() is True
    assert breaker.available() is True
    assert breaker.allow() is True
    # While the probe is out, nothing else goes through.
    assert breaker.allow() is False
    assert breaker.allow() is False
    assert breaker.available() is False
    assert breaker.state == "half_open"
    clock.advance(1000.0)
    assert breaker.allow() is False


def test_a_successful_probe_closes_the_circuit() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(30.0)
    assert breaker.allow() is True

    breaker.record_success()

    assert breaker.state == "closed"
    assert breaker.retry_after() == 0.0
    assert all(breaker.allow() for _ in range(5))
    # Closed again with a fresh count: it takes the whole threshold to open it.
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"


def test_a_failed_probe_reopens_with_a_fresh_timer() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(45.0)
    assert breaker.allow() is True

    breaker.record_failure()

    assert breaker.state == "open"
    assert breaker.allow() is False
    assert breaker.available() is False
    assert breaker.retry_after() == 30.0
    clock.advance(29.0)
    assert breaker.allow() is False
    clock.advance(1.0)
    assert breaker.available() is True
    assert breaker.allow() is True  # the next probe
    assert breaker.allow() is False


def test_seed_breaker_defaults_are_five_failures_and_sixty_seconds() -> None:
    clock = FakeClock()
    breakers = CircuitBreakers(clock=clock)
    breaker = breakers.get("https://a.example")

    assert (breaker.failure_threshold, breaker.reset_timeout) == (5, 60.0)
    for _ in range(4):
        breaker.record_failure()
    assert breaker.allow() is True
    breaker.record_failure()
    assert breaker.allow() is False
    clock.advance(59.9)
    assert breaker.allow() is False
    clock.advance(0.1)
    assert breaker.allow() is True


def test_breakers_keep_one_breaker_per_url() -> None:
    clock = FakeClock()
    breakers = CircuitBreakers(failure_threshold=2, reset_timeout=10.0, clock=clock)

    a = breakers.get("https://a.example")
    assert breakers.get("https://a.example") is a
    b = breakers.get("https://b.example")
    assert b is not a
    assert (a.failure_threshold, a.reset_timeout, a.clock) == (2, 10.0, clock)

    a.record_failure()
    a.record_failure()
    assert breakers.available("https://a.example") is False
    assert breakers.available("https://b.example") is True
    clock.advance(10.0)
    assert breakers.available("https://a.example") is True
    # available() on the registry does not take the probe either.
    assert breakers.get("https://a.example").allow() is True
    assert breakers.available("https://a.example") is False


def test_an_unknown_url_is_available_without_creating_a_breaker() -> None:
    breakers = CircuitBreakers(clock=FakeClock())

    assert breakers.available("https://never-seen.example") is True
    assert breakers.available("https://never-seen.example") is True
    fresh = breakers.get("https://never-seen.example")
    assert fresh.failures == 0
    assert fresh.state == "closed"
