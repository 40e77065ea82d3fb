"""The body every endpoint receives for an event (Standard Webhooks' recommended shape), the same
bytes on every attempt and replay."""

from __future__ import annotations

import json
from typing import Any


def webhook_body(event_type: str, occurred_at: str, data: dict[str, Any]) -> str:
    """The body every endpoint receives for an event (Standard Webhooks' recommended shape)."""
    return json.dumps({"type": event_type, "timestamp": occurred_at, "data": data}, separators=(",", ":"))
