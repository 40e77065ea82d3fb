"""Cached upstream answers per route: a small in-container LRU in front of DynamoDB
(`CACHE#<route id>#<sha256 of the key>`/`CACHE`, expiring by TTL), so a hit in a warm container
reads nothing and other containers share what one fetched. Expiry is checked on read: DynamoDB's
TTL deletes late."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from functions.routes.logic.proxy_ports import CachedAnswer

__all__ = ["CachedAnswer", "ResponseCache"]

MEMORY_ENTRIES = 256
MEMORY_BYTES = 32 * 1024 * 1024  # of a 1 GB function: bodies may be large, entries are not equal
MAX_CACHED_BYTES = 350_000  # one DynamoDB item


class ResponseCache:
    def __init__(self, dynamodb: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.clock = clock
        self._memory: OrderedDict[str, CachedAnswer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(route_id: str, key: str) -> dict[str, Any]:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return {"PK": {"S": f"CACHE#{route_id}#{digest}"}, "SK": {"S": "CACHE"}}

    def get(self, route_id: str, key: str) -> CachedAnswer | None:
        name = self._key(route_id, key)["PK"]["S"]
        now = self.clock()
        with self._lock:
            hit = self._memory.get(name)
            if hit is not None and hit.expires_at > now:
                self._memory.move_to_end(name)
                return hit
        item = self.dynamodb.get_item(TableName=self.table, Key=self._key(route_id, key)).get("Item")
        if not item or float(item["expires_at"]["N"]) <= now:
            return None
        answer = CachedAnswer(
            status=int(item["status"]["N"]),
            headers=[(str(name), str(value)) for name, value in json.loads(item["headers"]["S"])],
            body=zlib.decompress(bytes(item["body"]["B"])),
            expires_at=float(item["expires_at"]["N"]),
        )
        self._remember(name, answer)
        return answer

    def put(self, route_id: str, key: str, answer: CachedAnswer) -> bool:
        body = zlib.compress(answer.body, 6)
        if len(body) > MAX_CACHED_BYTES:
            return False
        name = self._key(route_id, key)
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                **name,
                "status": {"N": str(answer.status)},
                "headers": {"S": json.dumps(answer.headers)},
                "body": {"B": body},
                "expires_at": {"N": repr(answer.expires_at)},
                "ttl": {"N": str(int(answer.expires_at) + 60)},
            },
        )
        self._remember(name["PK"]["S"], answer)
        return True

    def _remember(self, name: str, answer: CachedAnswer) -> None:
        with self._lock:
            previous = self._memory.pop(name, None)
            if previous is not None:
                self._bytes -= len(previous.body)
            self._memory[name] = answer
            self._bytes += len(answer.body)
            while len(self._memory) > MEMORY_ENTRIES or self._bytes > MEMORY_BYTES:
                _, dropped = self._memory.popitem(last=False)
                self._bytes -= len(dropped.body)
