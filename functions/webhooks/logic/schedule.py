"""When to try a delivery again: Svix's schedule, jitter, a receiver's Retry-After, the circuit
breaker's cool-down, and the time scale that makes all of it testable in seconds.

Every duration here is multiplied by the time scale (`WEBHOOK_TIME_SCALE`, 1 in AWS; the tests'
local runtimes run the schedule a thousand times faster), so a test waits seconds for what takes
a day in production, through exactly the same code.
"""

from __future__ import annotations

import os
import random
from email.utils import parsedate_to_datetime

# Seconds after a failed attempt n (1-based) before attempt n+1: immediately, then 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 10 h (Svix's schedule); retries past its end wait 10 h each.
RETRY_DELAYS_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_MAX_RETRIES = len(RETRY_DELAYS_S)
MAX_RETRIES = 10
JITTER = 0.2
# A receiver's Retry-After is honoured between the scheduled delay and twice it: never sooner
# than the schedule (a receiver cannot make us hammer it), never later than 2x (nor can it park
# a delivery for days).
RETRY_AFTER_MAX_FACTOR = 2.0
# The circuit breaker opens after this many consecutive failed attempts and stays open for the
# cool-down, doubling for each further failure, up to the ceiling.
BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN_S = 30.0
BREAKER_MAX_COOLDOWN_S = 600.0
# An endpoint that has failed without a success for this long is disabled (configurable).
DISABLE_AFTER_S = 5 * 24 * 3600.0


def time_scale() -> float:
    value = float(os.environ.get("WEBHOOK_TIME_SCALE") or "1")
    if not 0 < value <= 1:
        raise ValueError("WEBHOOK_TIME_SCALE is in (0, 1]")
    return value


def disable_after_s() -> float:
    return float(os.environ.get("WEBHOOK_DISABLE_AFTER_S") or DISABLE_AFTER_S) * time_scale()


def scheduled_delay(failed_attempt: int) -> float:
    """Unscaled, unjittered seconds before the attempt after `failed_attempt`."""
    index = max(failed_attempt - 1, 0)
    return RETRY_DELAYS_S[min(index, len(RETRY_DELAYS_S) - 1)]


def retry_delay(failed_attempt: int, retry_after_s: float | None = None, rng: random.Random | None = None) -> float:
    """Scaled seconds before the next attempt: the schedule ±20%, or the receiver's Retry-After
    held within 1-2x of the scheduled delay."""
    base = scheduled_delay(failed_attempt)
    if retry_after_s is not None:
        delay = min(max(retry_after_s, base), base * RETRY_AFTER_MAX_FACTOR)
    else:
        delay = base * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return delay * time_scale()


def breaker_cooldown(consecutive_failures: int) -> float:
    """Scaled seconds the breaker stays open after this many consecutive failures (0: closed)."""
    if consecutive_failures < BREAKER_THRESHOLD:
        return 0.0
    doublings = min(consecutive_failures - BREAKER_THRESHOLD, 10)
    return min(BREAKER_COOLDOWN_S * 2**doublings, BREAKER_MAX_COOLDOWN_S) * time_scale()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), None if absent or
    unreadable (RFC 9110 section 10.2.3)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now, 0.0)
