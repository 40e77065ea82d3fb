"""Health of the gateway's dependencies: run every probe concurrently within a deadline.

No Lambda events and no boto3 here: probes are plain callables supplied by the caller, so the
rules (what makes the gateway healthy, degraded or unavailable) are tested with fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

CheckStatus = Literal["ok", "warn", "fail"]
Overall = Literal["healthy", "degraded", "unavailable"]

# Without these the gateway cannot answer any request that reads configuration.
CRITICAL_CHECKS = frozenset({"table"})


@dataclass(frozen=True)
class ProbeResult:
    """What a probe saw: a status and the facts behind it (depth, state, count...)."""

    status: CheckStatus
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    latency_ms: float
    facts: dict[str, Any]


@dataclass(frozen=True)
class HealthReport:
    status: Overall
    checked_at: str
    checks: list[Check]


Probe = Callable[[], ProbeResult]


def overall_status(checks: list[Check]) -> Overall:
    # A critical check that timed out is unknown, not down: the first call of a cold container
    # may take longer than the deadline, and answering 503 then would page someone for nothing.
    if any(c.status == "fail" and c.name in CRITICAL_CHECKS and c.facts.get("error") != "timeout" for c in checks):
        return "unavailable"
    if any(c.status != "ok" for c in checks):
        return "degraded"
    return "healthy"


def _timed(probe: Probe) -> tuple[ProbeResult, float]:
    started = time.perf_counter()
    try:
        result = probe()
    except Exception as error:  # noqa: BLE001 - a failing dependency is a finding, not a crash
        result = ProbeResult("fail", {"error": type(error).__name__})
    return result, (time.perf_counter() - started) * 1000


def run_checks(probes: Mapping[str, Probe], executor: ThreadPoolExecutor, deadline_ms: int) -> HealthReport:
    """Run all probes at once; a probe not done by the deadline counts as failed ('timeout')."""
    futures: dict[str, Future[tuple[ProbeResult, float]]] = {
        name: executor.submit(_timed, probe) for name, probe in probes.items()
    }
    wait(futures.values(), timeout=deadline_ms / 1000, return_when=FIRST_EXCEPTION)
    checks: list[Check] = []
    for name, future in futures.items():
        if future.done():
            result, latency = future.result()
            checks.append(Check(name, result.status, round(latency, 2), result.facts))
        else:
            future.cancel()
            checks.append(Check(name, "fail", float(deadline_ms), {"error": "timeout", "deadline_ms": deadline_ms}))
    return HealthReport(
        status=overall_status(checks),
        checked_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        checks=checks,
    )
