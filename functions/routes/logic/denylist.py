"""The global IP denylist: validated, normalized CIDRs replacing the previous list."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any, Protocol

from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.errors import ValidationFailed
from gateway_core.preconditions import Expected, check, no_lost_update


class DenylistStore(Protocol):
    def get(self) -> dict[str, Any]: ...
    def replace(self, before: dict[str, Any], after: dict[str, Any], actor: Actor) -> None: ...


def replace_denylist(
    store: DenylistStore, cidrs: list[str], actor: Actor, now: datetime, expected_version: Expected
) -> dict[str, Any]:
    """`expected_version`: the version If-Match names (None: `*`). The list always exists: before
    its first change it is empty at version 0."""
    networks, bad = set(), []
    for cidr in cidrs:
        try:
            networks.add(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError:
            bad.append(cidr)
    if bad:
        raise ValidationFailed(f"Not an IPv4 or IPv6 network (CIDR): {', '.join(bad)}", code="invalid_cidr")
    before = store.get()
    check("The IP denylist", before["version"], expected_version)
    after = {"cidrs": sorted(networks), "updated_at": iso(now), "version": before["version"] + 1}
    with no_lost_update("The IP denylist", expected_version):
        store.replace(before, after, actor)
    return after
