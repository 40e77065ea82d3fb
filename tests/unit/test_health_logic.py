"""functions.routes.logic.health: rules of healthy/degraded/unavailable, with fake probes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from functions.routes.logic.health import (
    CRITICAL_CHECKS,
    Check,
    Probe,
    ProbeResult,
    overall_status,
    run_checks,
)

# Generous for probes that answer at once; tiny for the one that must time out.
GENEROUS_MS = 5000
SHORT_MS = 50
# A blocked probe never waits longer than this, whatever happens to the test.
SAFETY_S = 10


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health-test")
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def release(executor: ThreadPoolExecutor) -> Iterator[threading.Event]:
    """An event blocking probes wait on; set at teardown (before the pool shuts down) so their threads finish."""
    event = threading.Event()
    yield event
    event.set()


def fixed(status: str, **facts: object) -> Probe:
    def probe() -> ProbeResult:
        return ProbeResult(status, dict(facts))  # type: ignore[arg-type]

    return probe


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_given_the_table_is_critical_then_it_is_the_only_critical_check() -> None:
    assert frozenset({"table"}) == CRITICAL_CHECKS


def test_given_every_probe_ok_when_run_then_healthy_with_facts_and_latency(executor: ThreadPoolExecutor) -> None:
    # Given
    probes = {
        "table": fixed("ok", state="ACTIVE"),
        "webhook_queue": fixed("ok", depth=0, in_flight=0),
        "schedules": fixed("ok", count=3),
    }

    # When
    report = run_checks(probes, executor, GENEROUS_MS)

    # Then
    assert report.status == "healthy"
    assert [c.name for c in report.checks] == ["table", "webhook_queue", "schedules"]
    checks = by_name(report.checks)
    assert checks["table"].facts == {"state": "ACTIVE"}
    assert checks["schedules"].facts == {"count": 3}
    assert all(c.status == "ok" and 0 <= c.latency_ms < GENEROUS_MS for c in report.checks)
    assert report.checked_at.endswith("Z")
    assert datetime.fromisoformat(report.checked_at).utcoffset() is not None


@pytest.mark.parametrize("status", ["warn", "fail"])
def test_given_a_non_critical_probe_not_ok_when_run_then_degraded(executor: ThreadPoolExecutor, status: str) -> None:
    probes = {"table": fixed("ok"), "webhook_dlq": fixed(status, depth=4)}

    report = run_checks(probes, executor, GENEROUS_MS)

    assert report.status == "degraded"
    assert by_name(report.checks)["webhook_dlq"].status == status
    assert by_name(report.checks)["webhook_dlq"].facts == {"depth": 4}


def test_given_the_table_failing_when_run_then_unavailable(executor: ThreadPoolExecutor) -> None:
    probes = {"table": fixed("fail", state="MISSING"), "webhook_queue": fixed("ok")}

    report = run_checks(probes, executor, GENEROUS_MS)

    assert report.status == "unavailable"


def test_given_the_table_only_warning_when_run_then_degraded_not_unavailable(executor: ThreadPoolExecutor) -> None:
    report = run_checks({"table": fixed("warn", state="UPDATING")}, executor, GENEROUS_MS)

    assert report.status == "degraded"


def test_given_a_probe_raising_when_run_then_it_fails_with_the_error_type_name(executor: ThreadPoolExecutor) -> None:
    # Given
    def broken() -> ProbeResult:
        raise ConnectionResetError("peer said goodbye; token=abc")

    # When
    report = run_checks({"table": fixed("ok"), "state_machine": broken}, executor, GENEROUS_MS)

    # Then the failure is a finding with only the type name (no message that could leak data)
    check = by_name(report.checks)["state_machine"]
    assert check.status == "fail"
    assert check.facts == {"error": "ConnectionResetError"}
    assert report.status == "degraded"


def test_given_the_table_probe_raising_when_run_then_unavailable(executor: ThreadPoolExecutor) -> None:
    def broken() -> ProbeResult:
        raise KeyError("Table")

    report = run_checks({"table": broken}, executor, GENEROUS_MS)

    assert report.status == "unavailable"
    assert report.checks[0].facts == {"error": "KeyError"}


def test_given_a_probe_blocking_past_the_deadline_when_run_then_it_fails_with_timeout(
    executor: ThreadPoolExecutor, release: threading.Event
) -> None:
    # Given a probe that only returns once released
    def blocked() -> ProbeResult:
        release.wait(SAFETY_S)
        return ProbeResult("ok", {"late": True})

    # When
    report = run_checks({"table": fixed("ok"), "scheduler": blocked}, executor, SHORT_MS)

    # Then the blocked probe is a timeout failure and the fast one is reported normally
    checks = by_name(report.checks)
    assert checks["scheduler"].status == "fail"
    assert checks["scheduler"].facts == {"error": "timeout", "deadline_ms": SHORT_MS}
    assert checks["scheduler"].latency_ms == float(SHORT_MS)
    assert checks["table"].status == "ok"
    assert report.status == "degraded"


def test_given_the_table_probe_blocking_past_the_deadline_when_run_then_degraded_not_unavailable(
    executor: ThreadPoolExecutor, release: threading.Event
) -> None:
    def blocked() -> ProbeResult:
        release.wait(SAFETY_S)
        return ProbeResult("ok")

    report = run_checks({"table": blocked, "webhook_queue": fixed("ok")}, executor, SHORT_MS)

    # A slow table is unknown, not down (a cold container's first call may be slow).
    assert report.status == "degraded"
    assert by_name(report.checks)["table"].status == "fail"
    assert by_name(report.checks)["table"].facts["error"] == "timeout"


def test_given_a_probe_queued_behind_a_blocked_one_when_the_deadline_passes_then_it_times_out_too() -> None:
    # Given a pool with a single worker, occupied by a blocked probe
    pool = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    ran_second = threading.Event()

    def blocked() -> ProbeResult:
        release.wait(SAFETY_S)
        return ProbeResult("ok")

    def second() -> ProbeResult:
        ran_second.set()
        return ProbeResult("ok")

    try:
        # When
        report = run_checks({"a": blocked, "b": second}, pool, SHORT_MS)
    finally:
        release.set()
        pool.shutdown(wait=True)

    # Then both count as timed out and the queued one was cancelled rather than run
    assert [c.facts.get("error") for c in report.checks] == ["timeout", "timeout"]
    assert not ran_second.is_set()


def test_given_two_probes_that_need_each_other_when_run_then_they_run_concurrently(
    executor: ThreadPoolExecutor,
) -> None:
    # Given two probes that can only finish if both are running at the same time
    barrier = threading.Barrier(2, timeout=SAFETY_S)

    def rendezvous() -> ProbeResult:
        barrier.wait()
        return ProbeResult("ok")

    # When
    report = run_checks({"table": rendezvous, "webhook_queue": rendezvous}, executor, GENEROUS_MS * 2)

    # Then neither broke the barrier (which a sequential run would)
    assert report.status == "healthy"


def test_given_no_probes_when_run_then_healthy_with_no_checks(executor: ThreadPoolExecutor) -> None:
    report = run_checks({}, executor, SHORT_MS)

    assert report.status == "healthy"
    assert report.checks == []


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"table": "ok", "x": "ok"}, "healthy"),
        ({"table": "ok", "x": "warn"}, "degraded"),
        ({"table": "ok", "x": "fail"}, "degraded"),
        ({"table": "fail", "x": "ok"}, "unavailable"),
        ({"table": "fail", "x": "warn"}, "unavailable"),
        ({"rate_limit_table": "fail"}, "degraded"),
    ],
)
def test_given_check_statuses_when_summarised_then_overall_status_follows_the_rules(
    statuses: dict[str, str], expected: str
) -> None:
    checks = [Check(name, status, 1.0, {}) for name, status in statuses.items()]  # type: ignore[arg-type]

    assert overall_status(checks) == expected
