"""Choosing a route's target: round robin, smooth weighted round robin, least outstanding
requests, or consistent hashing on the caller (rendezvous hashing, weighted), among the targets
that are healthy and whose circuit is not open. The answer is an order: the choice first, then the
others to fail over to. State (turns, weights, requests in flight) lives per container."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple


class Target(NamedTuple):
    url: str
    weight: int = 1


class Balancer:
    def __init__(self, route_id: str, targets: list[Target], algorithm: str) -> None:
        if not targets:
            raise ValueError("a route has at least one target")
        self.route_id = route_id
        self.targets = targets
        self.algorithm = algorithm
        self._lock = threading.Lock()
        self._turn = 0
        self._current = {t.url: 0 for t in targets}  # smooth weighted round robin
        self._in_flight = {t.url: 0 for t in targets}

    def order(self, caller_key: str, usable: Callable[[Target], bool]) -> list[Target]:
        """Usable targets, the chosen one first; [] when none is usable."""
        candidates = [t for t in self.targets if usable(t)]
        if len(candidates) <= 1:
            return candidates
        if self.algorithm == "consistent_hash":
            return sorted(candidates, key=lambda t: _rendezvous(caller_key, t), reverse=True)
        with self._lock:
            if self.algorithm == "weighted":
                first = self._weighted(candidates)
            elif self.algorithm == "least_outstanding":
                start = self._turn % len(candidates)
                self._turn += 1
                rotated = candidates[start:] + candidates[:start]
                first = min(rotated, key=lambda t: self._in_flight[t.url])  # ties: the next in turn
            else:
                first = candidates[self._turn % len(candidates)]
                self._turn += 1
        index = candidates.index(first)
        return candidates[index:] + candidates[:index]

    def _weighted(self, candidates: list[Target]) -> Target:
        # nginx's smooth weighted round robin: picks in proportion to weight, evenly interleaved.
        total = 0
        best: Target | None = None
        for target in candidates:
            self._current[target.url] += target.weight
            total += target.weight
            if best is None or self._current[target.url] > self._current[best.url]:
                best = target
        assert best is not None
        self._current[best.url] -= total
        return best

    @contextmanager
    def in_flight(self, target: Target) -> Iterator[None]:
        with self._lock:
            self._in_flight[target.url] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[target.url] -= 1

    def outstanding(self, url: str) -> int:
        return self._in_flight.get(url, 0)


def _rendezvous(caller_key: str, target: Target) -> float:
    """Weighted rendezvous score: each caller ranks targets the same way in every container, and
    removing a target only moves the callers that had it first."""
    digest = hashlib.blake2b(f"{caller_key}|{target.url}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)  # in (0, 1)
    return -target.weight / math.log(unit)
