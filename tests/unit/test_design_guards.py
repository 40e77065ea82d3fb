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


# API Gateway caches an authorizer's decision for minutes and an admin change flushes that cache,
# so the decision made right after the flush must not rest on an eventually consistent copy from
# before the change (moto is always consistent: only this guard catches a missing flag).
AUTHORIZER_SOURCES = sorted((ROOT / "functions" / "authorizer").rglob("*.py"))
DYNAMODB_READS = {"get_item", "query", "batch_get_item", "transact_get_items"}
# The only authorizer reads on an index (DynamoDB refuses ConsistentRead there), each with why a
# moment of lag is acceptable: whether a client has certificates (its admin tokens must then be
# bound); the admin authorizer is not cached, so no decision outlives that moment.
INDEX_COUNTS = {"admin_handler.py"}


def _inconsistent_reads(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DYNAMODB_READS:
            if path.name in INDEX_COUNTS and any(k.arg == "IndexName" for k in node.keywords):
                continue  # an index cannot be read consistently; listed with the reason below
            consistent = [k for k in node.keywords if k.arg == "ConsistentRead"]
            if not (consistent and isinstance(consistent[0].value, ast.Constant) and consistent[0].value.value is True):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", AUTHORIZER_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_authorizer_read_is_strongly_consistent(path: Path) -> None:
    assert _inconsistent_reads(path) == [], f"reads without ConsistentRead=True in {path.name}"


def test_the_consistency_guard_sees_a_plain_read(tmp_path: Path) -> None:
    offender = tmp_path / "offender.py"
    offender.write_text(
        "def f(ddb):\n    ddb.get_item(TableName='t', Key={})\n    ddb.get_item(TableName='t', Key={}, ConsistentRead=False)\n"
        "    ddb.query(TableName='t', ConsistentRead=True)\n"
    )
    assert _inconsistent_reads(offender) == [2, 3]


def test_the_consistency_guard_exempts_index_reads_only_where_listed(tmp_path: Path) -> None:
    source = "def f(ddb):\n    ddb.query(TableName='t', IndexName='GSI1')\n    ddb.get_item(TableName='t', Key={})\n"
    listed, other = tmp_path / "admin_handler.py", tmp_path / "jwt_handler.py"
    listed.write_text(source)
    other.write_text(source)
    assert _inconsistent_reads(listed) == [3]
    assert _inconsistent_reads(other) == [2, 3]
