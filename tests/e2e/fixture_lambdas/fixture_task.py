"""Step Functions task: exact decimal arithmetic on a string amount."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fixture_recorder import record


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    record("sfn-task", event)
    if event.get("fail"):
        raise ValueError("task asked to fail")
    return {"doubled": str(Decimal(event["amount"]) * 2), "currency": event["currency"]}
