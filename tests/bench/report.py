"""Statistics and output helpers: percentiles, latency summaries, plain-text tables, the JSON report."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile out of range: {pct}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of an empty sequence")
    return float(statistics.median(values))


def summarize(samples_ms: Sequence[float]) -> dict[str, float]:
    """Latency summary in milliseconds, rounded for reading (raw samples stay in the caller)."""
    return {
        "n": len(samples_ms),
        "min_ms": round(min(samples_ms), 3),
        "p50_ms": round(percentile(samples_ms, 50), 3),
        "p95_ms": round(percentile(samples_ms, 95), 3),
        "p99_ms": round(percentile(samples_ms, 99), 3),
        "max_ms": round(max(samples_ms), 3),
        "mean_ms": round(statistics.fmean(samples_ms), 3),
        "stdev_ms": round(statistics.stdev(samples_ms), 3) if len(samples_ms) > 1 else 0.0,
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def format_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A plain-text table. `align` has one letter per column, "l" or "r"; by default the first
    column is left-aligned and the others (numbers) right-aligned."""
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers):
        raise ValueError("one alignment letter per column")
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(widths[i]) if align[i] == "l" else v.rjust(widths[i]) for i, v in enumerate(values)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [title, "=" * len(title), line(headers), rule]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def write_report(report: dict[str, Any], directory: Path, now: datetime) -> tuple[Path, Path]:
    """Write `report-<UTC timestamp>.json` and `latest.json`; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"
    stamped = directory / f"report-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    latest = directory / "latest.json"
    stamped.write_text(text, encoding="utf-8")
    latest.write_text(text, encoding="utf-8")
    return stamped, latest
