"""Which buckets a proxied request spends: client, key, route, address and global scopes."""

from __future__ import annotations

from functions.routes.logic.traffic import (
    LEASE_ABOVE_PER_SECOND,
    TIER_RESERVE,
    Limits,
    client_limits,
    lease_block,
    monthly_quota,
    request_plans,
    windows,
)
from gateway_core.ratelimit.limiter import ScopedPlan


def plans(**overrides: object) -> list[ScopedPlan]:
    arguments: dict[str, object] = {
        "caller_key": "CLIENT#c1",
        "limits": Limits(60, 1_000, 10_000),
        "quota": 100_000,
        "route_id": "rt_1",
        "route_limits": None,
        "route_total": None,
        "tier": "free",
        "global_per_second": 0,
    }
    arguments.update(overrides)
    return request_plans(**arguments)  # type: ignore[arg-type]


def test_a_client_spends_its_windows_and_quota_on_one_item() -> None:
    (only,) = plans()
    assert only.plan.key == "CLIENT#c1"
    assert [w.name for w in only.plan.windows] == ["minute", "hour", "day"]
    assert only.plan.quota is not None
    assert only.plan.quota.limit == 100_000
    assert only.lease == 0  # 1 per second is far below the hot-key threshold: exact mode


def test_route_limits_per_client_ride_on_the_client_item_and_totals_on_their_own() -> None:
    found = plans(route_limits=Limits(per_day=20), route_total=Limits(per_minute=600))
    assert [p.plan.key for p in found] == ["CLIENT#c1", "ROUTE#rt_1"]
    assert [w.attr for w in found[0].plan.windows] == ["m", "h", "d", "r_rt_1_d"]
    assert found[0].plan.windows[-1].name == "route-day"
    assert found[1].prefix == "route-total-"


def test_a_key_with_its_own_limits_replaces_the_clients_windows_but_not_its_quota() -> None:
    found = plans(key_scope=("key_9", Limits(5, 50, 500)), route_limits=Limits(per_minute=10))
    assert [p.plan.key for p in found] == ["KEY#key_9", "CLIENT#c1"]
    assert [(w.name, w.limit) for w in found[0].plan.windows] == [("minute", 5), ("hour", 50), ("day", 500)]
    assert [w.name for w in found[1].plan.windows] == ["route-minute"]
    assert found[1].plan.quota is not None


def test_a_key_with_its_own_limits_and_nothing_else_on_the_client_spends_one_item() -> None:
    found = plans(key_scope=("key_9", Limits(5, 50, 500)), quota=None)
    assert [p.plan.key for p in found] == ["KEY#key_9"]


def test_the_global_guard_reserves_capacity_by_tier() -> None:
    for tier, reserve in TIER_RESERVE.items():
        guard = plans(tier=tier, global_per_second=1_000)[-1]
        assert guard.plan.key == "GLOBAL"
        assert guard.plan.reserve == reserve
    assert TIER_RESERVE["free"] > TIER_RESERVE["basic"] > TIER_RESERVE["professional"] > TIER_RESERVE["enterprise"]


def test_fast_buckets_are_leased_in_blocks_slow_ones_are_exact() -> None:
    assert lease_block(windows(Limits(per_minute=LEASE_ABOVE_PER_SECOND * 60))) == 0
    assert lease_block(windows(Limits(per_minute=600_000))) == 100  # 10,000 per second
    assert lease_block(windows(Limits(per_minute=60, burst=10))) == 0


def test_burst_caps_the_minute_bucket_and_tier_defaults_fill_in() -> None:
    (minute,) = windows(Limits(per_minute=600, burst=50))
    assert (minute.limit, minute.capacity) == (600, 50)
    assert client_limits("basic", None) == Limits(300, 10_000, 100_000, None)
    assert client_limits("nope", None) == client_limits("free", None)
    assert client_limits("free", Limits(1, 2, 3)) == Limits(1, 2, 3)
    assert monthly_quota("enterprise", None) is None
    assert monthly_quota("free", 5) == 5
