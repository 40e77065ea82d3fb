"""An endpoint's own rate limit (`rate_limit_per_s`): a token bucket per endpoint in the rate-limit
table, spent with the data plane's limiter (one conditional UpdateItem per attempt, only for
endpoints that set a limit)."""

from __future__ import annotations

from typing import Any

from gateway_core.ratelimit.gcra import Window
from gateway_core.ratelimit.limiter import RateLimiter, ScopedPlan
from gateway_core.ratelimit.plan import Plan
from gateway_core.ratelimit.store import RateLimitStore


class DynamoEndpointThrottle:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.limiter = RateLimiter(RateLimitStore(dynamodb, table_name))

    def admit(self, endpoint_id: str, per_second: int) -> float | None:
        """None when an attempt may start now, else the seconds to wait."""
        window = Window(name="webhook", attr="tat_s", limit=per_second, period=1, capacity=per_second)
        decision = self.limiter.check(
            [ScopedPlan(plan=Plan(key=f"WEBHOOK#{endpoint_id}", windows=(window,)), prefix="")]
        )
        return None if decision.admitted else float(decision.retry_after or 1)
