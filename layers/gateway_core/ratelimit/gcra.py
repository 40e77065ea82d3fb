"""GCRA: a token bucket kept as one number per bucket, the theoretical arrival time (TAT).

A bucket of `capacity` tokens refilling `limit` tokens per `period` seconds has an emission
interval T = period / limit and a tolerance tau = (capacity - 1) * T. A request costing k tokens
at time `now` is admitted iff max(TAT, now) + k*T - now <= tau + T, and then
TAT' = max(TAT, now) + k*T. Over any interval of t seconds at most capacity + limit * t / period
requests pass, and never more than `capacity` at once: no window boundary to game.

DynamoDB update expressions have no max(), so the two cases are two expressions: when the bucket
is busy (TAT >= now) the update is `TAT + k*T` under `now <= TAT <= now + tau + T - k*T`; when it
is idle (TAT < now, or no item) it is `now + k*T` under `TAT < now`. Those conditions are exact,
so a wrong guess about the case can never admit too much: the write fails and the caller learns
the true state from ReturnValuesOnConditionCheckFailure. Busy updates are relative, so any number
of concurrent busy writers all succeed without retrying.

Times are integer microseconds (exact arithmetic; DynamoDB numbers are decimal). T is rounded up,
so rounding can only admit less, never more.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

MICROS = 1_000_000


@dataclass(frozen=True)
class Window:
    """A token bucket: `limit` tokens per `period` seconds, at most `capacity` at once."""

    name: str  # the policy name in RateLimit headers
    attr: str  # the DynamoDB attribute holding this bucket's TAT
    limit: int
    period: int
    capacity: int

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period < 1 or not 1 <= self.capacity <= self.limit:
            raise ValueError(f"window {self.name}: need limit >= 1, period >= 1, 1 <= capacity <= limit")

    @property
    def interval(self) -> int:
        return -(-self.period * MICROS // self.limit)  # ceil: rounding never admits more

    @property
    def tolerance(self) -> int:
        return (self.capacity - 1) * self.interval

    def admits(self, tat: int | None, now: int, cost: int, reserve: int = 0) -> bool:
        """Whether `cost` tokens are available now, leaving at least `reserve` tokens."""
        start = now if tat is None or tat < now else tat
        return start + (cost + reserve) * self.interval - now <= self.tolerance + self.interval

    def ceiling(self, now: int, cost: int, reserve: int = 0) -> int:
        """The highest TAT at which a busy bucket still admits `cost` (leaving `reserve`)."""
        return now + self.tolerance + self.interval - (cost + reserve) * self.interval

    def wait(self, tat: int | None, now: int, cost: int, reserve: int = 0) -> int:
        """Microseconds until `cost` tokens (plus `reserve`) are available; 0 if they are now."""
        if tat is None:
            return 0
        return max(0, tat - self.ceiling(now, cost, reserve))

    def remaining(self, tat: int | None, now: int) -> int:
        """Whole tokens available now."""
        start = now if tat is None or tat < now else tat
        return max(0, (now + self.tolerance + self.interval - start) // self.interval)

    def reset(self, tat: int | None, now: int) -> int:
        """Seconds until the bucket is full again (the RateLimit `t` parameter)."""
        if tat is None or tat <= now:
            return 0
        return -(-(tat - now) // MICROS)


@dataclass(frozen=True)
class Quota:
    """A calendar-month quota (UTC): at most `limit` requests between the 1st and the month's end."""

    limit: int
    name: str = "month"
    count_attr: str = "q"
    period_attr: str = "qp"

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a quota needs limit >= 1")


def month_of(now_us: int) -> str:
    return datetime.fromtimestamp(now_us / MICROS, UTC).strftime("%Y-%m")


def month_bounds(now_us: int) -> tuple[int, int]:
    """Start and end (exclusive) of the UTC calendar month holding `now`, in epoch seconds."""
    moment = datetime.fromtimestamp(now_us // MICROS, UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    days = calendar.monthrange(moment.year, moment.month)[1]
    return int(start.timestamp()), int(start.timestamp()) + days * 86_400
