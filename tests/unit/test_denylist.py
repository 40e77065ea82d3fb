"""The authorizer's view of the global IP denylist: matching and the per-container cache."""

from __future__ import annotations

from typing import Any

from functions.authorizer.denylist import DENYLIST_KEY, DenylistCache, denied


class FakeDynamo:
    def __init__(self, cidrs: list[str]) -> None:
        self.cidrs = cidrs
        self.reads = 0

    def get_item(self, TableName: str, Key: dict[str, Any], ConsistentRead: bool = False) -> dict[str, Any]:
        assert Key == DENYLIST_KEY
        assert ConsistentRead, "a read that feeds a cached decision must be strongly consistent"
        self.reads += 1
        return {"Item": {**DENYLIST_KEY, "cidrs": {"L": [{"S": c} for c in self.cidrs]}}}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_addresses_inside_any_network_are_denied_v4_and_v6() -> None:
    cache = DenylistCache()
    networks = cache.networks(FakeDynamo(["198.51.100.0/24", "2001:db8::/32"]), "t")
    assert denied("198.51.100.7", networks)
    assert denied("2001:db8::1", networks)
    assert not denied("198.51.101.7", networks)
    assert not denied("2001:db9::1", networks)
    assert not denied("not-an-address", networks)


def test_the_list_is_read_once_per_ttl_and_then_again() -> None:
    dynamo, clock = FakeDynamo(["10.0.0.0/8"]), Clock()
    cache = DenylistCache(ttl_s=30, clock=clock)
    for _ in range(5):
        cache.networks(dynamo, "t")
    assert dynamo.reads == 1  # warm decisions make no AWS call
    dynamo.cidrs = []
    clock.now = 29.9
    assert cache.networks(dynamo, "t")  # still the cached list
    clock.now = 30.0
    assert cache.networks(dynamo, "t") == []
    assert dynamo.reads == 2


def test_an_absent_list_denies_nobody() -> None:
    class Empty(FakeDynamo):
        def get_item(self, TableName: str, Key: dict[str, Any], ConsistentRead: bool = False) -> dict[str, Any]:
            return {}

    assert DenylistCache().networks(Empty([]), "t") == []
