"""A per-container cache of lookups with a TTL, misses included (so an unknown id cannot make
every request read the table), bounded so junk identifiers cannot grow it without end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._max = max_entries
        self._entries: dict[str, tuple[float, V | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], V | None]) -> V | None:
        now = self._clock()
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and now - cached[0] < self._ttl:
                return cached[1]
        value = load()  # outside the lock: a slow read must not block other keys
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (now, value)
        return value
