"""What the proxy reads, kept warm per container so a request usually reads nothing:

* the deployments index and the targets' health (`CONFIG`/`DEPLOYMENTS`, `CONFIG`/`TARGET_HEALTH`):
  one BatchGetItem at most every `refresh_seconds` (2 s), so a deploy, a rollback or a changed
  canary share serves within seconds;
* deployed versions, compiled: read once per container (a version never changes);
* each client's limits and tier (`CLIENT#<id>`): one GetItem at most every 5 s per client, so
  limits an admin changes apply within seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from functions.routes.dal.deployed_versions import DEPLOYMENTS_KEY, HEALTH_KEY, DeployedVersions, index_entries
from functions.routes.logic.proxy_ports import ClientLimits
from functions.routes.logic.serving import CompiledVersion, ServingGateway
from gateway_core.deployed import DeployedVersion
from gateway_core.errors import DependencyUnavailable

__all__ = ["HEALTH_KEY", "ClientLimits", "ServingCache"]

MAX_CLIENTS = 20_000
_deserializer = TypeDeserializer()


class ServingCache:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        refresh_seconds: float = 2.0,
        client_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.refresh_seconds = refresh_seconds
        self.client_seconds = client_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._loaded_at = -1e18
        self._gateways: list[ServingGateway] = []
        self._health: dict[str, str] = {}
        self._versions: OrderedDict[tuple[str, int], CompiledVersion] = OrderedDict()
        self._clients: dict[str, tuple[float, ClientLimits | None]] = {}
        self.reads = 0  # for the benchmark: reads this cache made

    def _refresh(self) -> None:
        if self.clock() - self._loaded_at < self.refresh_seconds:
            return
        with self._lock:
            if self.clock() - self._loaded_at < self.refresh_seconds:
                return
            try:
                answer = self.dynamodb.batch_get_item(
                    RequestItems={self.table: {"Keys": [DEPLOYMENTS_KEY, HEALTH_KEY], "ConsistentRead": True}}
                )
            except Exception as error:
                if self._loaded_at < 0:
                    raise DependencyUnavailable("The gateway's configuration could not be read; try again.") from error
                return  # keep serving what we have; the next request tries again
            self.reads += 1
            items = {i["SK"]["S"]: i for i in answer.get("Responses", {}).get(self.table, [])}
            if answer.get("UnprocessedKeys"):
                if self._loaded_at < 0:
                    raise DependencyUnavailable("The gateway's configuration could not be read; try again.")
                return  # keep serving what we have; the next request tries again
            self._gateways = [
                ServingGateway.from_index(e) for e in index_entries(items.get("DEPLOYMENTS", {})).values()
            ]
            health = items.get("TARGET_HEALTH", {})
            self._health = {
                json.loads(v["S"])["url"]: json.loads(v["S"])["status"]
                for k, v in health.items()
                if k.startswith("t_") and "S" in v
            }
            self._loaded_at = self.clock()

    def gateways(self) -> list[ServingGateway]:
        self._refresh()
        return self._gateways

    def health(self) -> dict[str, str]:
        self._refresh()
        return self._health

    def version(self, gateway_id: str, version: int) -> CompiledVersion | None:
        key = (gateway_id, version)
        cached = self._versions.get(key)
        if cached is not None:
            return cached
        found = DeployedVersions(self.dynamodb, self.table).document(gateway_id, version)
        self.reads += 1
        if found is None:
            return None
        compiled = CompiledVersion.compile(DeployedVersion.from_json(found))
        with self._lock:
            self._versions[key] = compiled
            while len(self._versions) > 16:  # active + canary of a few gateways
                self._versions.popitem(last=False)
        return compiled

    def client_limits(self, client_id: str) -> ClientLimits | None:
        """The client's tier and limits; None for a subject that is not one of our clients
        (an external issuer's), whose tier comes with its token."""
        now = self.clock()
        cached = self._clients.get(client_id)
        if cached is not None and now - cached[0] < self.client_seconds:
            return cached[1]
        item = self.dynamodb.get_item(
            TableName=self.table,
            Key={"PK": {"S": f"CLIENT#{client_id}"}, "SK": {"S": "CLIENT"}},
            ProjectionExpression="tier, rate_limits, monthly_quota",
        ).get("Item")
        self.reads += 1
        limits = _client_limits(item) if item else None
        self._clients[client_id] = (now, limits)
        while len(self._clients) > MAX_CLIENTS:  # oldest first: bounded memory for many callers
            self._clients.pop(next(iter(self._clients)), None)
        return limits


def _client_limits(item: dict[str, Any]) -> ClientLimits:
    data = {k: _deserializer.deserialize(v) for k, v in item.items()}
    raw = data.get("rate_limits") or {}
    quota = data.get("monthly_quota")

    def number(name: str) -> int | None:
        value = raw.get(name)
        return int(value) if value is not None else None

    return ClientLimits(
        tier=str(data.get("tier", "free")),
        per_minute=number("per_minute"),
        per_hour=number("per_hour"),
        per_day=number("per_day"),
        burst=number("burst"),
        monthly_quota=int(quota) if quota is not None else None,
        overridden=bool(raw),
    )
