"""API key check: one GetItem on the key's SHA-256; no pydantic.

The key carries a copy of its client's state (status, expiry, IP allowlist, allowed scopes; kept
in step by the keys API's sync_client), so a decision is one read. The key's scopes are always
narrowed to its client's allowed scopes. A key written before keys carried the allowed scopes is
narrowed by its client record instead (a second GetItem, for such keys only); a key whose client
id has no record (an operator key, infra.admin) keeps its own scopes, as before: never more.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.authorizer.client_state import epoch, ip_allowed, parse_time, read_client
from functions.authorizer.core import Denied, Forbidden, Principal, earliest
from gateway_core.clock import iso
from gateway_core.credentials import hash_api_key, key_lookup_key

_PROJECTION = (
    "client_id, key_id, scopes, tier, #s, expires_at, grace_until, client_status, client_expires_at, ip_allowlist,"
    " client_allowed_scopes, lineage_id, last_used_at, rate_limits"
)
# `last_used_at` is precise to this much: the authorizer writes it only when the stored value is
# older, so a key in steady use costs one write an hour, not one per request (and API Gateway's
# cache already spares the authorizer most requests).
LAST_USED_PRECISION = timedelta(hours=1)


def lookup_api_key(
    dynamodb: Any, table_name: str, presented: str, now: datetime | None = None, source_ip: str = ""
) -> Principal:
    if not presented:
        raise Denied("missing_credential")
    lookup_key = key_lookup_key(hash_api_key(presented))
    item = dynamodb.get_item(
        TableName=table_name,
        Key=lookup_key,
        ProjectionExpression=_PROJECTION,
        ExpressionAttributeNames={"#s": "status"},
        ConsistentRead=True,  # the decision is cached: it must not rest on a stale copy
    ).get("Item")
    if item is None:
        raise Denied("unknown_key")
    if item.get("status", {}).get("S") != "active":
        raise Denied("key_not_active")
    moment = now or datetime.now(UTC)
    expires_at = item.get("expires_at", {}).get("S")
    if expires_at and parse_time(expires_at) <= moment:
        raise Denied("key_expired")
    grace_until = item.get("grace_until", {}).get("S")  # set on the old key when it is rotated
    if grace_until and parse_time(grace_until) <= moment:
        raise Denied("key_past_grace")
    # The client's state, copied onto the key (absent on keys that belong to no client record).
    client_id = item["client_id"]["S"]
    if item.get("client_status", {}).get("S", "active") != "active":
        raise Forbidden("client_not_active", client_id)
    client_expiry = item.get("client_expires_at", {}).get("S")
    if client_expiry and parse_time(client_expiry) <= moment:
        raise Forbidden("client_expired", client_id)
    allowlist = [c["S"] for c in item.get("ip_allowlist", {}).get("L", [])]
    if not ip_allowed(source_ip, allowlist):
        raise Forbidden("ip_not_allowed", client_id)
    own = tuple(s["S"] for s in item.get("scopes", {}).get("L", []))
    granted = _client_scopes(dynamodb, table_name, item, client_id)
    _touch(dynamodb, table_name, lookup_key, item.get("last_used_at", {}).get("S"), moment)
    key_id = item["key_id"]["S"]
    return Principal(
        client_id=client_id,
        credential_kind="api_key",
        scopes=own if granted is None else tuple(s for s in own if s in granted),
        tier=item.get("tier", {}).get("S", "free"),
        credential_id=key_id,
        rate_limits=_limits(item.get("rate_limits", {}).get("M")),
        client_scopes=granted,
        not_after=earliest(epoch(expires_at), epoch(grace_until), epoch(client_expiry)),
        key_lineage=item.get("lineage_id", {}).get("S") or key_id,
    )


def _client_scopes(dynamodb: Any, table_name: str, item: dict[str, Any], client_id: str) -> tuple[str, ...] | None:
    """The client's allowed scopes: the copy on the key, else the client record (keys written
    before the copy); None for a key whose client id has no record."""
    copy = item.get("client_allowed_scopes", {})
    if "L" in copy:
        return tuple(s["S"] for s in copy["L"])
    state = read_client(dynamodb, table_name, client_id)
    return state.allowed_scopes if state is not None else None


def _limits(stored: dict[str, Any] | None) -> str:
    if not stored:
        return ""
    return "/".join(stored[name]["N"] for name in ("per_minute", "per_hour", "per_day"))


def _touch(dynamodb: Any, table_name: str, lookup_key: dict[str, Any], last_used_at: str | None, now: datetime) -> None:
    """Record the key's use when the stored time is older than LAST_USED_PRECISION. Best effort:
    a failed or lost race write never changes the decision."""
    stale = now - LAST_USED_PRECISION
    try:
        if last_used_at and parse_time(last_used_at) > stale:
            return
    except Denied:
        pass  # unreadable: overwrite it
    try:
        dynamodb.update_item(
            TableName=table_name,
            Key=lookup_key,
            UpdateExpression="SET last_used_at = :now",
            ConditionExpression=(
                "attribute_exists(PK) AND (attribute_not_exists(last_used_at)"
                " OR attribute_type(last_used_at, :null) OR last_used_at < :stale)"
            ),
            ExpressionAttributeValues={":now": {"S": iso(now)}, ":stale": {"S": iso(stale)}, ":null": {"S": "NULL"}},
        )
    except Exception:  # noqa: BLE001 - another container wrote it first, or DynamoDB refused: not our decision
        return
