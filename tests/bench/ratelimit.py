"""The rate limiter against DynamoDB (moto, in process): decision latency and writes per
decision, exactness under concurrent callers, and a simulated 10,000 requests per second for one
client in leased mode (writes per second on the hottest key, admitted versus allowed).

The hot-key run uses simulated time (one clock shared by every simulated container) so that
10,000 requests per second can be replayed on a laptop: what it measures is counts (writes,
admissions), which do not depend on how fast the machine is.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import boto3
from moto import mock_aws

from tests.bench.handlers import _BASE_ENV, _DROPPED_ENV, REGION, ensure_import_path, patched_environ
from tests.bench.report import format_table, summarize

TABLE = "bench-rate-limits"


class SimClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _table() -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def _count_writes(client: Any) -> Counter[str]:
    writes: Counter[str] = Counter()

    def record(params: dict[str, Any], **_: Any) -> None:
        writes[params["Key"]["PK"]["S"]] += 1

    client.meta.events.register("provide-client-params.dynamodb.UpdateItem", record)
    return writes


def bench_decisions(client: Any, iterations: int) -> dict[str, Any]:
    from gateway_core.ratelimit.gcra import Quota, Window
    from gateway_core.ratelimit.limiter import RateLimiter, ScopedPlan
    from gateway_core.ratelimit.plan import Plan
    from gateway_core.ratelimit.store import RateLimitStore

    limiter = RateLimiter(RateLimitStore(client, TABLE))
    plan = Plan(
        "CLIENT#latency",
        (
            Window("minute", "m", 1_000_000, 60, 1_000_000),
            Window("hour", "h", 10_000_000, 3600, 10_000_000),
            Window("day", "d", 100_000_000, 86_400, 100_000_000),
        ),
        quota=Quota(1_000_000_000),
    )
    scope = [ScopedPlan(plan)]
    for _ in range(20):
        limiter.check(scope)
    samples, writes = [], 0
    for _ in range(iterations):
        started = time.perf_counter()
        decision = limiter.check(scope)
        samples.append((time.perf_counter() - started) * 1000)
        writes += decision.writes
    return {"latency_ms": summarize(samples), "writes_per_decision": writes / iterations}


def bench_concurrency(client: Any, threads: int = 8, per_thread: int = 60, capacity: int = 200) -> dict[str, Any]:
    """Several containers (limiter instances), several threads each, one bucket: count admissions."""
    from gateway_core.ratelimit.gcra import Window
    from gateway_core.ratelimit.limiter import RateLimiter, ScopedPlan
    from gateway_core.ratelimit.plan import Plan
    from gateway_core.ratelimit.store import RateLimitStore

    containers = [RateLimiter(RateLimitStore(client, TABLE)) for _ in range(4)]
    scope = [ScopedPlan(Plan("CLIENT#concurrent", (Window("day", "d", capacity, 86_400, capacity),)))]
    admitted = Counter[bool]()
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker(index: int) -> None:
        limiter = containers[index % len(containers)]
        barrier.wait()
        for _ in range(per_thread):
            result = limiter.check(scope).admitted
            with lock:
                admitted[result] += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    # Refill during the run: one token per 86400/capacity s, i.e. none within a run of seconds.
    return {"requests": threads * per_thread, "admitted": admitted[True], "allowed": capacity}


def bench_hot_key(
    client: Any, *, offered_rps: int = 10_000, limit_rps: int = 10_000, containers: int = 40, seconds: int = 10
) -> dict[str, Any]:
    """One client at `offered_rps` spread over `containers` warm containers, its bucket allowing
    `limit_rps` (per-minute limit = 60 x that, burst = one second's worth). Leased mode as the
    proxy configures it for such a limit."""
    from functions.routes.logic.traffic import Limits, lease_block, windows
    from gateway_core.ratelimit.limiter import RateLimiter, ScopedPlan
    from gateway_core.ratelimit.plan import Plan
    from gateway_core.ratelimit.store import RateLimitStore

    start = 1_800_000_000.0
    clock = SimClock(start)
    key = f"CLIENT#hot-{offered_rps}-{limit_rps}"
    plan_windows = windows(Limits(per_minute=limit_rps * 60, burst=limit_rps))
    block = lease_block(plan_windows)
    scope = [ScopedPlan(Plan(key, plan_windows), lease=block)]
    limiters = [RateLimiter(RateLimitStore(client, TABLE), clock=clock, lease_seconds=1.0) for _ in range(containers)]
    writes = _count_writes(client)
    before = writes[key]
    per_second_writes: Counter[int] = Counter()
    per_second_admitted: Counter[int] = Counter()
    total = offered_rps * seconds
    admitted = 0
    for i in range(total):
        clock.now = start + i / offered_rps
        second = int(clock.now - start)
        seen = writes[key]
        if limiters[i % containers].check(scope).admitted:
            admitted += 1
            per_second_admitted[second] += 1
        per_second_writes[second] += writes[key] - seen
    capacity = plan_windows[0].capacity
    allowed = capacity + limit_rps * seconds  # a full bucket plus what refills during the run
    return {
        "offered_rps": offered_rps,
        "limit_rps": limit_rps,
        "containers": containers,
        "lease_block": block,
        "seconds": seconds,
        "requests": total,
        "admitted": admitted,
        "allowed": allowed,
        "writes": writes[key] - before,
        "max_writes_per_second_on_key": max(per_second_writes.values()),
        "max_admitted_in_one_second": max(per_second_admitted.values()),
        "worst_case_over_admission_bound": containers * block,
    }


def run(iterations: int = 200) -> dict[str, Any]:
    ensure_import_path()
    from infra.local.moto_host import serialize_dynamodb_writes

    with patched_environ(_BASE_ENV, _DROPPED_ENV), mock_aws():
        serialize_dynamodb_writes()
        client = _table()
        return {
            "decision": bench_decisions(client, iterations),
            "concurrency": bench_concurrency(client),
            "hot_key": [
                bench_hot_key(client),  # the seed's 10,000 rps, allowed in full
                bench_hot_key(client, limit_rps=6_000),  # the same traffic over a 6,000 rps limit
            ],
        }


def tables(section: dict[str, Any]) -> str:
    decision = section["decision"]
    concurrency = section["concurrency"]
    lines = [
        format_table(
            "Rate limiter (moto in process)",
            ["measure", "value"],
            [
                ["decision, exact mode (3 windows + monthly quota), p50", f"{decision['latency_ms']['p50_ms']:.2f} ms"],
                ["decision, exact mode, p95", f"{decision['latency_ms']['p95_ms']:.2f} ms"],
                ["DynamoDB writes per decision (steady state)", f"{decision['writes_per_decision']:.2f}"],
                [
                    f"concurrent: {concurrency['requests']} requests, 8 threads, 4 containers",
                    f"{concurrency['admitted']} admitted of {concurrency['allowed']} allowed",
                ],
            ],
        ),
        format_table(
            "Hot key: one client, leased mode, simulated time",
            [
                "offered rps",
                "limit rps",
                "containers",
                "block",
                "admitted",
                "allowed",
                "writes/s on key (max)",
                "max admitted in 1 s",
                "over-admission bound",
            ],
            [
                [
                    h["offered_rps"],
                    h["limit_rps"],
                    h["containers"],
                    h["lease_block"],
                    h["admitted"],
                    h["allowed"],
                    h["max_writes_per_second_on_key"],
                    h["max_admitted_in_one_second"],
                    h["worst_case_over_admission_bound"],
                ]
                for h in section["hot_key"]
            ],
        ),
    ]
    return "\n".join(lines)
