"""Publishing events to webhooks: every function publishes through here.

An event is written once, as a DynamoDB item carrying `message_id` (the `webhook-id` receivers
see; not `event_id`, which an audit item holding the event names its own id with), `event_type`,
`event_data` and `occurred_at`. The data table's stream hands every new item with an `event_data` to the webhook
fan-out function (functions/webhooks/fanout_handler.py), which records one delivery per matching
endpoint. So publishing is one write with nothing to send afterwards: a change audited in a
transaction carries its event in the audit item (gateway_core.audit), committed or not with the
change; anything else writes an `EVENT#<id>` item (gateway_core.publisher.publish). An interrupted fan-out is retried
from the stream (24 hours of records), and the deliveries it records are keyed by event and
endpoint, so a second pass sends nothing twice.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from typing import Any

from gateway_core.clock import iso, utc_now

# Event items outlive their fan-out by weeks: replays and `recover` read the delivery records,
# which keep their own copy of the payload; the event item is kept for inspection.
EVENT_RETENTION_SECONDS = 30 * 24 * 3600
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32: sortable, unambiguous


def new_event_id(at: datetime | None = None) -> str:
    """`msg_` + 26 characters: 10 of milliseconds since the epoch, 16 random (a ULID's layout),
    so ids sort by publication time."""
    millis = int((at.timestamp() if at else time.time()) * 1000)
    stamp = "".join(_ALPHABET[(millis >> shift) & 31] for shift in range(45, -1, -5))
    rand = secrets.randbits(80)
    tail = "".join(_ALPHABET[(rand >> shift) & 31] for shift in range(75, -1, -5))
    return f"msg_{stamp}{tail}"


def event_attributes(
    event_type: str,
    data: dict[str, Any],
    at: datetime | None = None,
    client_id: str | None = None,
    private: bool = False,
) -> dict[str, Any]:
    """The attributes (low-level DynamoDB values) that make an item an event. `client_id`: the
    client whose resource the event is about (its own endpoints hear it; admins' hear every
    event); None for platform events."""
    when = at or utc_now()
    client = {"event_client": {"S": client_id}} if client_id else {}
    # A private event (a client's own test event) reaches that client's endpoints only: admins'
    # endpoints trust what they hear to be the gateway's own account of a change.
    only_own = {"event_private": {"BOOL": True}} if private else {}
    return {
        **client,
        **only_own,
        "message_id": {"S": new_event_id(when)},
        "event_type": {"S": event_type},
        "event_data": {"S": json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)},
        "occurred_at": {"S": iso(when)},
    }


def event_item(
    event_type: str,
    data: dict[str, Any],
    at: datetime | None = None,
    client_id: str | None = None,
    private: bool = False,
) -> dict[str, Any]:
    """A standalone event item (for events without an audited change)."""
    when = at or utc_now()
    attributes = event_attributes(event_type, data, when, client_id, private)
    return {
        "PK": {"S": f"EVENT#{attributes['message_id']['S']}"},
        "SK": {"S": "EVENT"},
        **attributes,
        "ttl": {"N": str(int(when.timestamp()) + EVENT_RETENTION_SECONDS)},
    }
