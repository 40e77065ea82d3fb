"""Target of the test schedules: records every firing with the event it received."""

from __future__ import annotations

from typing import Any

from fixture_recorder import record


def handler(event: dict[str, Any], _context: Any) -> None:
    record("scheduled", event)
