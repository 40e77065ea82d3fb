"""The global IP denylist: validated, normalized CIDRs replacing the previous list."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any, Protocol

from functions.routes.logic.clients import ConcurrentChange
from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.errors import Conflict, ValidationFailed


class DenylistStore(Protocol):
    def get(self) -> dict[str, Any]: ...
    def replace(self, before: dict[str, Any], after: dict[str, Any], actor: Actor) -> None: ...


def replace_denylist(store: DenylistStore, cidrs: list[str], actor: Actor, now: datetime) -> dict[str, Any]:
    networks, bad = set(), []
    for cidr in cidrs:
        try:
            networks.add(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError:
            bad.append(cidr)
    if bad:
        raise ValidationFailed(f"Not an IPv4 or IPv6 network (CIDR): {', '.join(bad)}", code="invalid_cidr")
    before = store.get()
    after = {"cidrs": sorted(networks), "updated_at": iso(now), "version": before["version"] + 1}
    try:
        store.replace(before, after, actor)
    except ConcurrentChange as error:
        raise Conflict("The denylist changed meanwhile; read it again and retry.", code="concurrent_change") from error
    return after
