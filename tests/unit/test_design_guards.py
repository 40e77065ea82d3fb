"""Rules of the design that code review alone would miss, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_SOURCES = sorted([*(ROOT / "functions").rglob("*.py"), *(ROOT / "layers").rglob("*.py")])

# No request path may Scan (README, key design); moto lacks these two, so the design avoids them.
FORBIDDEN_CALLS = {"scan", "start_sync_execution", "start_message_move_task"}


def _calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            names.add(node.func.attr)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in {"Scan"}:
            names.add("scan")
    return names


def test_there_is_product_code_to_check() -> None:
    assert len(PRODUCT_SOURCES) > 10


@pytest.mark.parametrize("path", PRODUCT_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_product_code_never_scans_or_uses_apis_moto_lacks(path: Path) -> None:
    assert _calls(path) & FORBIDDEN_CALLS == set()


def test_the_guard_sees_a_scan_when_there_is_one(tmp_path: Path) -> None:
    offender = tmp_path / "offender.py"
    offender.write_text("def f(client):\n    return client.scan(TableName='t')\n")
    assert "scan" in _calls(offender)
