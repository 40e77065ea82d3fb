"""When a webhook delivery is tried again (functions.webhooks.logic.schedule): Svix's schedule,
±20% jitter, Retry-After held to 1-2x, the breaker's cool-down, and the time scale."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from functions.webhooks.logic import schedule

HOUR = 3600.0


class Extreme(random.Random):
    """An rng that always answers one end of the range asked for."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return b if self.high else a


@pytest.fixture(autouse=True)
def _real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_TIME_SCALE", raising=False)
    monkeypatch.delenv("WEBHOOK_DISABLE_AFTER_S", raising=False)


@pytest.mark.parametrize(
    ("failed_attempt", "seconds"),
    [
        (1, 5),
        (2, 300),
        (3, 1800),
        (4, 2 * HOUR),
        (5, 5 * HOUR),
        (6, 10 * HOUR),
        (7, 10 * HOUR),
        (8, 10 * HOUR),
        (30, 10 * HOUR),
    ],
)
def test_scheduled_delay_follows_svix(failed_attempt: int, seconds: float) -> None:
    # Given the attempt that failed / Then the wait before the next is Svix's (10 h past its end)
    assert schedule.scheduled_delay(failed_attempt) == seconds


def test_scheduled_delay_of_attempt_zero_is_the_first_step() -> None:
    assert schedule.scheduled_delay(0) == 5


def test_default_retries_cover_the_schedule() -> None:
    # The first attempt is immediate; seven retries follow (5 s ... 10 h, 10 h)
    assert schedule.DEFAULT_MAX_RETRIES == 7
    assert sum(schedule.RETRY_DELAYS_S) == 5 + 300 + 1800 + 7200 + 18000 + 36000 + 36000


@pytest.mark.parametrize("failed_attempt", [1, 2, 3, 4, 5, 6, 7, 9])
def test_jitter_bounds_are_twenty_percent(failed_attempt: int) -> None:
    base = schedule.scheduled_delay(failed_attempt)
    low, high = Extreme(high=False), Extreme(high=True)

    # When the rng answers each end of its range
    shortest = schedule.retry_delay(failed_attempt, rng=low)
    longest = schedule.retry_delay(failed_attempt, rng=high)

    # Then the delay is the schedule's ±20% exactly, asked as uniform(0.8, 1.2)
    assert low.asked == [(0.8, 1.2)] == high.asked
    assert shortest == pytest.approx(base * 0.8)
    assert longest == pytest.approx(base * 1.2)


def test_jitter_spreads_within_bounds() -> None:
    rng = random.Random(1234)
    delays = [schedule.retry_delay(2, rng=rng) for _ in range(2000)]
    assert all(240 <= d <= 360 for d in delays)
    # Spread over the range, not stuck at the scheduled value
    assert min(delays) < 250
    assert max(delays) > 350
    assert len({round(d, 6) for d in delays}) > 1900


def test_jitter_uses_the_module_rng_without_one() -> None:
    random.seed(7)
    first = schedule.retry_delay(3)
    random.seed(7)
    assert schedule.retry_delay(3) == first
    assert 1440 <= first <= 2160


@pytest.mark.parametrize(
    ("failed_attempt", "retry_after", "expected"),
    [
        (1, 8, 8),  # within 1-2x of 5 s: honoured
        (1, 0, 5),  # sooner than the schedule: the schedule
        (1, 3, 5),
        (1, 10, 10),  # exactly 2x
        (1, 100, 10),  # later than 2x: 2x
        (2, 60, 300),
        (2, 450, 450),
        (2, 86400, 600),
        (7, 86400, 72000),
    ],
)
def test_retry_after_is_held_within_one_to_two_times(failed_attempt: int, retry_after: float, expected: float) -> None:
    # A Retry-After replaces the jitter entirely (the rng is never asked)
    rng = Extreme(high=True)
    assert schedule.retry_delay(failed_attempt, retry_after, rng=rng) == expected
    assert rng.asked == []


def test_parse_retry_after_seconds() -> None:
    assert schedule.parse_retry_after("120", now=0) == 120.0
    assert schedule.parse_retry_after("  7 ", now=0) == 7.0
    assert schedule.parse_retry_after("0", now=0) == 0.0


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)

    assert later.endswith("GMT")
    assert schedule.parse_retry_after(later, now.timestamp()) == pytest.approx(90.0)
    # A date in the past asks for no wait at all
    assert schedule.parse_retry_after(earlier, now.timestamp()) == 0.0


@pytest.mark.parametrize(
    "junk",
    [None, "", "soon", "-5", "1.5", "+3", "0x10", "١٢", "Wed, 02 Dec 2026 12:00:00", "Wed, 99 Foo 2026 25:61:00 GMT"],
)
def test_parse_retry_after_junk_is_none(junk: str | None) -> None:
    # Unreadable (or a date without a zone): as if the header were absent
    assert schedule.parse_retry_after(junk, now=1_796_212_800.0) is None


@pytest.mark.parametrize(
    ("failures", "cooldown"),
    [(0, 0), (1, 0), (4, 0), (5, 30), (6, 60), (7, 120), (8, 240), (9, 480), (10, 600), (11, 600), (500, 600)],
)
def test_breaker_cooldown_grows_and_caps(failures: int, cooldown: float) -> None:
    assert schedule.breaker_cooldown(failures) == cooldown


def test_disable_after_defaults_to_five_days_and_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert schedule.disable_after_s() == 5 * 24 * HOUR
    monkeypatch.setenv("WEBHOOK_DISABLE_AFTER_S", "3600")
    assert schedule.disable_after_s() == 3600


def test_time_scale_applies_to_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a thousandfold acceleration
    monkeypatch.setenv("WEBHOOK_TIME_SCALE", "0.001")

    # Then every duration shrinks by it, through the same code
    assert schedule.time_scale() == 0.001
    assert schedule.retry_delay(1, rng=Extreme(high=True)) == pytest.approx(0.006)
    assert schedule.retry_delay(6, rng=Extreme(high=False)) == pytest.approx(28.8)
    assert schedule.retry_delay(1, 100) == pytest.approx(0.010)
    assert schedule.retry_delay(2, 450) == pytest.approx(0.450)
    assert schedule.breaker_cooldown(5) == pytest.approx(0.030)
    assert schedule.breaker_cooldown(50) == pytest.approx(0.600)
    assert schedule.breaker_cooldown(4) == 0
    assert schedule.disable_after_s() == pytest.approx(432.0)
    monkeypatch.setenv("WEBHOOK_DISABLE_AFTER_S", "3600")
    assert schedule.disable_after_s() == pytest.approx(3.6)


@pytest.mark.parametrize("value", [None, "", "1"])
def test_time_scale_defaults_to_real_time(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is not None:
        monkeypatch.setenv("WEBHOOK_TIME_SCALE", value)
    assert schedule.time_scale() == 1.0
    assert schedule.retry_delay(1, 7) == 7


@pytest.mark.parametrize("value", ["0", "-0.5", "1.5", "2", "nan", "inf", "fast"])
def test_time_scale_outside_zero_one_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("WEBHOOK_TIME_SCALE", value)
    with pytest.raises(ValueError, match=r"WEBHOOK_TIME_SCALE|could not convert"):
        schedule.time_scale()
    # Nothing computes a delay on a bad scale
    with pytest.raises(ValueError, match=r"WEBHOOK_TIME_SCALE|could not convert"):
        schedule.retry_delay(1)
