"""The limiter against DynamoDB (moto): exact under concurrency, one write per decision in the
steady state, refusals that spend nothing, quotas by calendar month, leases for hot keys and
tiers shed in order under the global guard."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import boto3
import pytest

from gateway_core.ratelimit.gcra import Quota, Window
from gateway_core.ratelimit.headers import rate_limit_headers
from gateway_core.ratelimit.limiter import RateLimiter, ScopedPlan
from gateway_core.ratelimit.plan import Plan
from gateway_core.ratelimit.store import RateLimitStore
from infra.local.moto_host import serialize_dynamodb_writes
from tests.integration.conftest import create_table
from tests.integration.helpers import REGION

TABLE = "rate-limits"
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb(aws: None) -> object:
    serialize_dynamodb_writes()
    create_table(TABLE, range_key=None)
    return boto3.client("dynamodb", region_name=REGION)


def limiter(dynamodb: object, clock: FakeClock | None = None, **kwargs: float) -> RateLimiter:
    return RateLimiter(RateLimitStore(dynamodb, TABLE), clock=clock or FakeClock(), **kwargs)


def day_plan(key: str = "CLIENT#c1", limit: int = 10) -> Plan:
    return Plan(key=key, windows=(Window("day", "d", limit=limit, period=86_400, capacity=limit),))


def test_a_full_bucket_admits_its_capacity_then_refuses_with_retry_after(dynamodb: object) -> None:
    rl = limiter(dynamodb)
    scope = [ScopedPlan(day_plan())]
    results = [rl.check(scope) for _ in range(11)]
    assert [r.admitted for r in results] == [True] * 10 + [False]
    refused = results[-1]
    assert refused.retry_after == 8_640  # one token per 86400/10 s
    assert refused.refused_by == "CLIENT#c1"
    assert [(p.name, p.remaining) for p in results[0].policies] == [("day", 9)]
    assert [(p.name, p.remaining) for p in refused.policies] == [("day", 0)]


def test_tokens_refill_at_the_rate_and_never_beyond_capacity(dynamodb: object) -> None:
    clock = FakeClock()
    rl = limiter(dynamodb, clock)
    scope = [ScopedPlan(Plan("CLIENT#c2", (Window("minute", "m", limit=60, period=60, capacity=2),)))]
    assert [rl.check(scope).admitted for _ in range(3)] == [True, True, False]
    clock.now += 1  # one token per second
    assert [rl.check(scope).admitted for _ in range(2)] == [True, False]
    clock.now += 3600  # idle for an hour: full again, but only to capacity
    assert [rl.check(scope).admitted for _ in range(3)] == [True, True, False]


def test_steady_state_costs_one_write_and_a_wrong_guess_one_more(dynamodb: object) -> None:
    clock = FakeClock()
    a, b = limiter(dynamodb, clock), limiter(dynamodb, clock)
    scope = [ScopedPlan(Plan("CLIENT#c3", (Window("minute", "m", limit=600, period=60, capacity=100),)))]
    assert a.check(scope).writes == 1  # no item: the idle guess is right
    assert a.check(scope).writes == 1  # busy now, and this container knows it
    # Another container has never seen the item and guesses idle: its first write fails and
    # shows it the state, the second passes.
    first = b.check(scope)
    assert (first.admitted, first.writes) == (True, 2)
    assert b.check(scope).writes == 1
    clock.now += 600  # idle again: the clock alone tells each container so
    assert a.check(scope).writes == 1


def test_a_refusal_by_a_later_scope_gives_the_earlier_scopes_their_tokens_back(dynamodb: object) -> None:
    rl = limiter(dynamodb)
    client = ScopedPlan(day_plan("CLIENT#c4", limit=5))
    route = ScopedPlan(day_plan("ROUTE#r1", limit=1), prefix="route-")
    assert rl.check([client, route]).admitted
    refused = rl.check([client, route])
    assert not refused.admitted
    assert refused.refused_by == "ROUTE#r1"
    assert refused.writes == 3  # client spent, route refused, client refunded
    # The client's own bucket still has 4: the refused request cost nothing.
    after = [rl.check([client]) for _ in range(5)]
    assert [r.admitted for r in after] == [True] * 4 + [False]


def test_the_monthly_quota_counts_a_calendar_month(dynamodb: object) -> None:
    clock = FakeClock(datetime(2026, 11, 30, 23, 59, 0, tzinfo=UTC).timestamp())
    rl = limiter(dynamodb, clock)
    scope = [ScopedPlan(Plan("CLIENT#c5", (), quota=Quota(limit=3)))]
    assert [rl.check(scope).admitted for _ in range(4)] == [True, True, True, False]
    refused = rl.check(scope)
    assert refused.retry_after == 60  # until 1 December 00:00 UTC
    clock.now += 60
    december = [rl.check(scope) for _ in range(4)]
    assert [d.admitted for d in december] == [True, True, True, False]
    quota = december[0].policies[0]
    assert (quota.name, quota.quota, quota.remaining, quota.window) == ("month", 3, 2, 31 * 86_400)


def test_concurrent_requests_never_get_more_than_the_bucket_holds(dynamodb: object) -> None:
    rl = limiter(dynamodb, clock=FakeClock())
    scope = [ScopedPlan(day_plan("CLIENT#hot", limit=50))]
    admitted: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(20):
            result = rl.check(scope).admitted
            with lock:
                admitted.append(result)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 160
    assert sum(admitted) == 50


def test_separate_containers_share_the_bucket_exactly(dynamodb: object) -> None:
    clock = FakeClock()
    containers = [limiter(dynamodb, clock) for _ in range(3)]
    scope = [ScopedPlan(day_plan("CLIENT#shared", limit=7))]
    results = [containers[i % 3].check(scope).admitted for i in range(12)]
    assert sum(results) == 7


def test_a_lease_spends_a_block_in_one_write_and_serves_it_locally(dynamodb: object) -> None:
    clock = FakeClock()
    rl = limiter(dynamodb, clock, lease_seconds=1.0)
    scope = [ScopedPlan(day_plan("CLIENT#leased", limit=25), lease=10)]
    decisions = [rl.check(scope) for _ in range(25)]
    assert all(d.admitted for d in decisions)
    assert sum(d.writes for d in decisions) == 3  # blocks of 10, 10, then the last 5
    assert not rl.check(scope).admitted


def test_a_leased_client_over_its_limit_costs_a_few_writes_not_one_per_refusal(dynamodb: object) -> None:
    # Given a leased bucket of 100 per second (blocks of 10) and one container
    clock = FakeClock()
    rl = limiter(dynamodb, clock, lease_seconds=1.0)
    window = Window("second", "s", limit=100, period=1, capacity=100)
    scope = [ScopedPlan(Plan(key="CLIENT#flood", windows=(window,)), lease=10)]
    # When the client sends 1,000 requests per second for 3 seconds
    decisions = []
    for i in range(3_000):
        clock.now = START + i / 1_000
        decisions.append(rl.check(scope))
    # Then it gets about its limit (the full bucket, then 100 per second), never more
    admitted = sum(d.admitted for d in decisions)
    assert admitted <= 100 + 300
    assert admitted >= 300
    # And the 2,600-odd refusals cost far fewer writes than requests
    writes = sum(d.writes for d in decisions)
    assert writes < 150, writes
    refused = next(d for d in decisions if not d.admitted)
    assert refused.retry_after is not None
    assert refused.retry_after >= 1


def test_an_expired_lease_is_dropped_not_used(dynamodb: object) -> None:
    clock = FakeClock()
    rl = limiter(dynamodb, clock, lease_seconds=1.0)
    scope = [ScopedPlan(day_plan("CLIENT#expiring", limit=20), lease=10)]
    assert rl.check(scope).admitted  # leases 10, uses 1
    clock.now += 2  # 9 unused tokens expire with the lease
    decisions = [rl.check(scope) for _ in range(11)]
    assert [d.admitted for d in decisions] == [True] * 10 + [False]


def test_under_the_global_guard_lower_tiers_are_shed_first(dynamodb: object) -> None:
    rl = limiter(dynamodb)
    window = (Window("global", "g", limit=10, period=86_400, capacity=10),)
    free = [ScopedPlan(Plan("GLOBAL", window, reserve=0.5), prefix="")]
    enterprise = [ScopedPlan(Plan("GLOBAL", window, reserve=0.0), prefix="")]
    assert [rl.check(free).admitted for _ in range(6)] == [True] * 5 + [False]
    assert [rl.check(enterprise).admitted for _ in range(6)] == [True] * 5 + [False]


def test_headers_follow_the_ratelimit_draft(dynamodb: object) -> None:
    rl = limiter(dynamodb)
    plan = Plan(
        "CLIENT#h",
        (Window("minute", "m", 60, 60, 10), Window("day", "d", 1000, 86_400, 1000)),
        quota=Quota(5),
    )
    decision = rl.check([ScopedPlan(plan)])
    headers = rate_limit_headers(decision.policies)
    assert headers["RateLimit-Policy"] == '"minute";q=60;w=60, "day";q=1000;w=86400, "month";q=5;w=2592000'
    assert headers["RateLimit"].startswith('"month";r=4;t=')
    assert '"minute";r=9;t=1' in headers["RateLimit"]
    assert "Retry-After" not in headers
    assert rate_limit_headers(decision.policies, retry_after=3)["Retry-After"] == "3"


def test_a_clients_lease_on_one_route_does_not_serve_another_routes_limits(dynamodb: object) -> None:
    # Given a fast (leased) client bucket, and route B with a per-client limit of 3 a day
    rl = limiter(dynamodb, FakeClock(), lease_seconds=1.0)
    fast = Window("second", "s", limit=1_000, period=1, capacity=1_000)
    route_b = Window("route-day", "r_b_d", limit=3, period=86_400, capacity=3)
    on_a = [ScopedPlan(Plan(key="CLIENT#both", windows=(fast,)), lease=50)]
    on_b = [ScopedPlan(Plan(key="CLIENT#both", windows=(fast, route_b)), lease=50)]
    # When the client alternates between the routes
    results_b = []
    for _ in range(6):
        assert rl.check(on_a).admitted
        results_b.append(rl.check(on_b).admitted)
    # Then route B admitted its 3, never more, whatever A leased
    assert results_b.count(True) == 3


def test_a_failed_spend_gives_back_what_earlier_scopes_spent(dynamodb: object) -> None:
    from botocore.exceptions import ClientError

    from gateway_core.errors import DependencyUnavailable

    class ThrottledOnSecond(RateLimitStore):
        def spend(self, plan: Plan, guess: object, now: int, cost: int) -> object:  # type: ignore[override]
            if plan.key == "ROUTE#hot":
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "UpdateItem")
            return super().spend(plan, guess, now, cost)  # type: ignore[arg-type]

    clock = FakeClock()
    rl = RateLimiter(ThrottledOnSecond(dynamodb, TABLE), clock=clock)
    client = ScopedPlan(day_plan("CLIENT#refunded", limit=2))
    route = ScopedPlan(day_plan("ROUTE#hot", limit=100))
    for _ in range(3):
        with pytest.raises(DependencyUnavailable) as failed:
            rl.check([client, route])
        assert failed.value.code == "rate_limiter_unavailable"
    # The client's two tokens are all still there: three failed checks spent nothing
    healthy = limiter(dynamodb, clock)
    assert [healthy.check([client]).admitted for _ in range(3)] == [True, True, False]
