"""`python -m tests.bench`: run every benchmark, print tables, write `.bench/report-<UTC>.json`.

Progress goes to stderr; stdout carries only the tables and the report paths.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from tests.bench import REPO_ROOT, REPORT_DIR, cold_starts, handlers, imports, proxy, ratelimit, webhooks
from tests.bench.report import write_report

_PACKAGES = ("boto3", "botocore", "aws-lambda-powertools", "pydantic", "moto")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--import-runs", type=int, default=7, help="fresh interpreters per module (median)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls per handler")
    parser.add_argument("--iterations", type=int, default=200, help="measured calls per handler")
    parser.add_argument("--count-requests", type=int, default=50, help="requests whose AWS calls are counted")
    parser.add_argument("--skip-imports", action="store_true", help="skip the cold-start import benchmark")
    parser.add_argument(
        "--skip-cold-starts", action="store_true", help="skip the cold starts measured through the local twin"
    )
    parser.add_argument("--skip-handlers", action="store_true", help="skip the in-process handler benchmarks")
    parser.add_argument("--skip-ratelimit", action="store_true", help="skip the rate limiter benchmarks")
    parser.add_argument("--skip-proxy", action="store_true", help="skip the proxy benchmarks")
    parser.add_argument(
        "--skip-webhooks", action="store_true", help="skip the webhook deliveries through the local runtime"
    )
    parser.add_argument("--webhook-events", type=int, default=200, help="events per webhook run (latency, burst)")
    parser.add_argument("--no-write", action="store_true", help="print only; write no JSON report")
    args = parser.parse_args(argv)
    for name in ("import_runs", "iterations", "count_requests", "webhook_events"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    now = datetime.now(UTC)
    report: dict[str, Any] = {
        "generated_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "git_commit": _git_commit(),
            "packages": _versions(),
        },
    }
    tables: list[str] = []
    started = time.perf_counter()

    if not args.skip_imports:
        _progress(f"cold-start imports: {len(imports.TARGETS)} targets x {args.import_runs} fresh interpreters")
        section = imports.run(runs=args.import_runs)
        report["imports"] = section
        tables.append(imports.table(section))

    if not args.skip_cold_starts:
        _progress("cold starts through the local twin: every shipped function's init phase in a worker")
        section = cold_starts.run(runs=max(3, args.import_runs // 2))
        report["cold_starts"] = section
        tables.append(cold_starts.table(section))

    if not args.skip_handlers:
        _progress(f"handlers: {args.warmup} warm-up + {args.iterations} measured calls each, under moto")
        section = handlers.run(warmup=args.warmup, iterations=args.iterations, count_requests=args.count_requests)
        report["handlers"] = section
        tables.append(handlers.latency_table(section))
        tables.append(handlers.calls_table(section))

    if not args.skip_ratelimit:
        _progress("rate limiter: decisions, concurrency, 10,000 rps hot key (simulated time)")
        section = ratelimit.run(iterations=args.iterations)
        report["ratelimit"] = section
        tables.append(ratelimit.tables(section))

    if not args.skip_proxy:
        _progress("proxy: route match + transforms for 10 and 1,000 routes; AWS calls per proxied request")
        section = proxy.run(requests=args.count_requests * 4)
        report["proxy"] = section
        tables.append(proxy.tables(section))

    if not args.skip_webhooks:
        _progress(
            f"webhooks: {args.webhook_events} events one at a time, then a burst of half as many, through the local runtime"
        )
        section = webhooks.run(events=args.webhook_events, burst_events=max(1, args.webhook_events // 2))
        report["webhooks"] = section
        tables.append(webhooks.tables(section))

    report["duration_s"] = round(time.perf_counter() - started, 2)
    print("\n\n".join(tables))
    print(f"\nTotal benchmark time: {report['duration_s']:.1f} s")
    if not args.no_write:
        stamped, latest = write_report(report, REPORT_DIR, now)
        print(f"Report: {stamped.relative_to(REPO_ROOT)} (also {latest.relative_to(REPO_ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
