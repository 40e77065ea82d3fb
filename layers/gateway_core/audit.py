"""Audit events: who changed what, when, under which request, with hashes of before and after.

Events are written in the same DynamoDB transaction as the change they describe, so a change
without its event (or the reverse) cannot happen. The API can read them, never edit them. A
change the webhook event catalog names (a key rotated, a client suspended...) carries its webhook
event in the same item (gateway_core.events), so publishing it is part of the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway_core.clock import iso
from gateway_core.event_catalog import event_data_for_audit
from gateway_core.events import event_attributes

# Audit events are kept for seven years (a common retention for financial records).
RETENTION_SECONDS = 7 * 365 * 24 * 3600


@dataclass(frozen=True)
class Actor:
    client_id: str
    credential_kind: str
    credential_id: str
    request_id: str


def state_hash(state: dict[str, Any] | None) -> str | None:
    """SHA-256 of the canonical JSON of a (secret-free) state; None when there is no state."""
    if state is None:
        return None
    canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def audit_item(
    *,
    actor: Actor,
    action: str,
    target: str,
    at: datetime,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> dict[str, Any]:
    """A DynamoDB item (low-level attribute values) for one event."""
    event_id = uuid.uuid4().hex
    when = iso(at)
    item: dict[str, Any] = {
        "PK": {"S": f"AUDIT#{when[:10]}"},
        "SK": {"S": f"{when}#{event_id}"},
        "GSI1PK": {"S": f"AUDIT#TARGET#{target}"},
        "GSI1SK": {"S": f"{when}#{event_id}"},
        "event_id": {"S": event_id},
        "actor": {"S": actor.client_id},
        "actor_credential": {"S": f"{actor.credential_kind}:{actor.credential_id}"},
        "action": {"S": action},
        "target": {"S": target},
        "at": {"S": when},
        "request_id": {"S": actor.request_id},
        "ttl": {"N": str(int(at.timestamp()) + RETENTION_SECONDS)},
    }
    for name, state in (("before_hash", before), ("after_hash", after)):
        digest = state_hash(state)
        if digest is not None:
            item[name] = {"S": digest}
    # A change the event catalog names is published by this same item (gateway_core.events): the
    # event exists exactly when the change was committed.
    published = event_data_for_audit(action, actor.client_id, actor.request_id, before, after)
    if published is not None:
        event_type, data = published
        state = after if after is not None else before
        client = state.get("client_id") if state else None
        item.update(event_attributes(event_type, data, at, client_id=str(client) if client else None))
    return item


def audit_put(
    table: str, *, actor: Actor, action: str, target: str, before: Any | None, after: Any | None
) -> dict[str, Any]:
    """The audit event of a change as a TransactWriteItems `Put`, to commit with the change."""
    from gateway_core.clock import utc_now

    item = audit_item(
        actor=actor,
        action=action,
        target=target,
        at=utc_now(),
        before=before.public() if before is not None else None,
        after=after.public() if after is not None else None,
    )
    return {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}
