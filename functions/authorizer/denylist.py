"""The global IP denylist, as the authorizers see it: read from the data table on every decision
API Gateway did not cache (or at most once per `denylistCacheSeconds` per container when that is
set above its default of 0; see entry.state_cache_seconds for why 0)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from typing import Any

DENYLIST_KEY = {"PK": {"S": "CONFIG"}, "SK": {"S": "IP_DENYLIST"}}
TTL_S = 30.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DenylistCache:
    def __init__(self, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._networks: list[Network] = []
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def networks(self, dynamodb: Any, table_name: str) -> list[Network]:
        with self._lock:
            now = self._clock()
            if self._loaded_at is None or now - self._loaded_at >= self._ttl:
                item = dynamodb.get_item(TableName=table_name, Key=DENYLIST_KEY, ConsistentRead=True).get("Item") or {}
                cidrs = [c["S"] for c in item.get("cidrs", {}).get("L", [])]
                self._networks = [ipaddress.ip_network(c) for c in cidrs]
                self._loaded_at = now
            return self._networks


def denied(source_ip: str, networks: list[Network]) -> bool:
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False  # no address to judge; the allowlist (if any) refuses unknown addresses
    return any(address in network for network in networks)
