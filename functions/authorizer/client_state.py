"""The client behind a token or certificate, as the authorizers need it: status, expiry, IP
allowlist, tier and allowed scopes, from one GetItem on `CLIENT#<id>` (API keys carry a copy of
these on the key record instead).

`ClientStateCache` may keep each answer per container for `denylistCacheSeconds` (default 0:
not at all, so the flush that follows a suspension takes effect on the next request).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.authorizer.core import Denied, Forbidden
from functions.authorizer.ttl_cache import TtlCache

_PROJECTION = "client_id, #s, expires_at, ip_allowlist, tier, allowed_scopes"


@dataclass(frozen=True)
class ClientState:
    client_id: str
    status: str
    expires_at: str | None
    ip_allowlist: tuple[str, ...]
    tier: str
    allowed_scopes: tuple[str, ...]


def parse_time(value: str) -> datetime:
    """ISO 8601; a time without an offset is UTC. A malformed value refuses the credential."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise Denied("malformed_expiry") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def epoch(value: str | None) -> float | None:
    """A stored time as epoch seconds, for a decision's `not_after` (None when unset)."""
    return parse_time(value).timestamp() if value else None


def ip_allowed(source_ip: str, allowlist: list[str] | tuple[str, ...]) -> bool:
    if not allowlist:
        return True
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr) for cidr in allowlist)


def client_key(client_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CLIENT#{client_id}"}, "SK": {"S": "CLIENT"}}


def client_state(item: dict[str, Any]) -> ClientState:
    return ClientState(
        client_id=item["client_id"]["S"],
        status=item.get("status", {}).get("S", ""),
        expires_at=item.get("expires_at", {}).get("S"),
        ip_allowlist=tuple(c["S"] for c in item.get("ip_allowlist", {}).get("L", [])),
        tier=item.get("tier", {}).get("S", "free"),
        allowed_scopes=tuple(s["S"] for s in item.get("allowed_scopes", {}).get("L", [])),
    )


def read_client(dynamodb: Any, table_name: str, client_id: str) -> ClientState | None:
    item = dynamodb.get_item(
        TableName=table_name,
        Key=client_key(client_id),
        ProjectionExpression=_PROJECTION,
        ExpressionAttributeNames={"#s": "status"},
        ConsistentRead=True,  # the decision is cached: it must not rest on a stale copy
    ).get("Item")
    return client_state(item) if item else None


def check_client(state: ClientState | None, client_id: str, source_ip: str, now: datetime) -> ClientState:
    """Refuse a credential whose client is gone (401), or suspended, expired or calling from an
    address outside its allowlist (403 with the reason)."""
    if state is None:
        raise Denied("unknown_client")
    if state.status != "active":
        raise Forbidden("client_not_active", client_id)
    if state.expires_at and parse_time(state.expires_at) <= now:
        raise Forbidden("client_expired", client_id)
    if not ip_allowed(source_ip, state.ip_allowlist):
        raise Forbidden("ip_not_allowed", client_id)
    return state


class ClientStateCache:
    """Client states per container for `ttl_s` (misses too)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._cache: TtlCache[ClientState] = TtlCache(ttl_s, clock)

    def get(self, dynamodb: Any, table_name: str, client_id: str) -> ClientState | None:
        return self._cache.get(client_id, lambda: read_client(dynamodb, table_name, client_id))
