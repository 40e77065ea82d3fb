"""Benchmarks of the gateway: cold-start imports, warm handler latency, AWS calls per request.

Run with `python -m tests.bench` from the repository root. Nothing here asserts on time: the
numbers are printed as a table and written to `.bench/` as JSON for comparison between runs.
Module names carry no `test_` prefix so pytest never collects them.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYERS_DIR = REPO_ROOT / "layers"
REPORT_DIR = REPO_ROOT / ".bench"
