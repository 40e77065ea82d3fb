"""Which rate-limit buckets a proxied request spends, from the caller's limits and the route's.

Scopes (each an item in the RateLimit table, spent with one conditional write):
* the client, `CLIENT#<id>`: per minute, hour and day (the client's override, else its tier's
  defaults; the minute bucket's capacity is `burst`, default the per-minute limit), the monthly
  quota, and the route's per-client limits (attributes `r_<route>_*` on the same item, so they
  cost no extra write); an anonymous caller is limited per source address, `IP#<address>`;
* the route for all callers together, `ROUTE#<id>`, when the route sets `total_rate_limits`;
* the global guard, `GLOBAL`, when the stack sets `globalRateLimitPerSecond`: lower tiers must
  leave a share of it unspent (free 50 %, basic 30 %, professional 10 %, enterprise none), so under
  pressure they are refused first and the capacity left goes to higher tiers.
A bucket allowing more than `LEASE_ABOVE_PER_SECOND` is spent in leased blocks (hot keys).
"""

from __future__ import annotations

from typing import NamedTuple

from functions.routes.logic.catalog import TIERS
from gateway_core.ratelimit.gcra import Quota, Window
from gateway_core.ratelimit.limiter import ScopedPlan
from gateway_core.ratelimit.plan import Plan

TIER_RESERVE = {"free": 0.5, "basic": 0.3, "professional": 0.1, "enterprise": 0.0}
# DynamoDB takes about 1,000 writes per second on one key; leasing keeps each key far below it.
LEASE_ABOVE_PER_SECOND = 200
LEASE_WRITES_PER_SECOND = 100
ANONYMOUS = (30, 500, 2_000)  # per minute, hour, day for callers without a credential, per address


class Limits(NamedTuple):
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None
    burst: int | None = None


def windows(limits: Limits, attr_prefix: str = "", name_prefix: str = "") -> tuple[Window, ...]:
    out: list[Window] = []
    for name, attr, limit, period in (
        ("minute", "m", limits.per_minute, 60),
        ("hour", "h", limits.per_hour, 3_600),
        ("day", "d", limits.per_day, 86_400),
    ):
        if limit is None:
            continue
        capacity = limits.burst if name == "minute" and limits.burst else limit
        out.append(Window(name_prefix + name, attr_prefix + attr, limit=limit, period=period, capacity=capacity))
    return tuple(out)


def lease_block(plan_windows: tuple[Window, ...]) -> int:
    """0 (exact, one write per request) unless a window admits more than the lease threshold per
    second; then blocks sized so the key sees about LEASE_WRITES_PER_SECOND writes at full rate."""
    fastest = max((w.limit / w.period for w in plan_windows), default=0.0)
    if fastest <= LEASE_ABOVE_PER_SECOND:
        return 0
    return max(2, int(fastest // LEASE_WRITES_PER_SECOND))


def client_limits(tier: str, override: Limits | None) -> Limits:
    if override is not None and (override.per_minute or override.per_hour or override.per_day):
        return override
    defaults = TIERS.get(tier, TIERS["free"]).limits
    return Limits(defaults.per_minute, defaults.per_hour, defaults.per_day, override.burst if override else None)


def monthly_quota(tier: str, override: int | None) -> int | None:
    return override if override is not None else TIERS.get(tier, TIERS["free"]).monthly_quota


def request_plans(
    *,
    caller_key: str,
    limits: Limits,
    quota: int | None,
    route_id: str,
    route_limits: Limits | None,
    route_total: Limits | None,
    tier: str,
    global_per_second: int,
    key_scope: tuple[str, Limits] | None = None,
) -> list[ScopedPlan]:
    """`key_scope` (key id, limits) for an API key with limits of its own: they replace the
    client's per minute, hour and day (on the key's item, `KEY#<id>`); the client's monthly quota
    and the route's per-client limits still count on the client's item."""
    plans: list[ScopedPlan] = []
    if key_scope is not None:
        key_windows = windows(key_scope[1])
        plans.append(ScopedPlan(Plan(f"KEY#{key_scope[0]}", key_windows), lease=lease_block(key_windows)))
        own: tuple[Window, ...] = ()
    else:
        own = windows(limits)
    if route_limits is not None:
        own += windows(route_limits, attr_prefix=f"r_{route_id}_", name_prefix="route-")
    if own or quota:
        plans.append(ScopedPlan(Plan(caller_key, own, quota=Quota(quota) if quota else None), lease=lease_block(own)))
    if route_total is not None:
        total = windows(route_total)
        plans.append(ScopedPlan(Plan(f"ROUTE#{route_id}", total), prefix="route-total-", lease=lease_block(total)))
    if global_per_second > 0:
        guard = (Window("global", "g", limit=global_per_second, period=1, capacity=global_per_second),)
        plans.append(
            ScopedPlan(
                Plan("GLOBAL", guard, reserve=TIER_RESERVE.get(tier, TIER_RESERVE["free"])),
                lease=max(1, global_per_second // LEASE_WRITES_PER_SECOND) if global_per_second > 10 else 0,
            )
        )
    return plans
