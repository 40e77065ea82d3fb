"""The delivery queue's message body: the delivery, the attempt count it was sent at (a fencing
token: logic/delivery.py), and when it is due."""

from __future__ import annotations

import json
from typing import Any


def message(delivery_id: str, attempts: int, not_before: float = 0.0, waits: int = 0) -> str:
    body: dict[str, Any] = {"delivery_id": delivery_id, "attempts": attempts}
    if not_before:
        body["not_before"] = round(not_before, 3)
    if waits:
        body["waits"] = waits
    return json.dumps(body, separators=(",", ":"))
