"""What the proxy serves: deployed gateway versions compiled for matching, and the choice of the
gateway (longest base path) and version (active, or the canary for callers in its share)."""

from __future__ import annotations

from typing import Any, NamedTuple

from functions.routes.logic.balancer import Balancer, Target
from functions.routes.logic.paths import Match, RouteTable
from gateway_core.deployed import DeployedRoute, DeployedVersion, Deployment, serves_canary


class CompiledVersion:
    """A deployed version ready to serve: its route table and one balancer per route."""

    __slots__ = ("balancers", "table", "version")

    def __init__(
        self, version: DeployedVersion, table: RouteTable[DeployedRoute], balancers: dict[str, Balancer]
    ) -> None:
        self.version = version
        self.table = table
        self.balancers = balancers

    @classmethod
    def compile(cls, version: DeployedVersion) -> CompiledVersion:
        table: RouteTable[DeployedRoute] = RouteTable()
        balancers: dict[str, Balancer] = {}
        for route in version.routes:
            if not route.active:
                continue  # an inactive route is not served, not even advertised in a 405's Allow
            table.add(route.method, route.path, route)
            balancers[route.route_id] = Balancer(
                route.route_id, [Target(t.url, t.weight) for t in route.targets], route.load_balancing
            )
        return cls(version=version, table=table, balancers=balancers)

    def match(self, method: str, path: str) -> Match[DeployedRoute] | None:
        return self.table.match(method, path)


class ServingGateway(NamedTuple):
    gateway_id: str
    base_path: str
    status: str
    deployment: Deployment

    @classmethod
    def from_index(cls, entry: dict[str, Any]) -> ServingGateway:
        return cls(
            gateway_id=str(entry["gateway_id"]),
            base_path=str(entry.get("base_path", "")),
            status=str(entry.get("status", "active")),
            deployment=Deployment(
                latest_version=int(entry.get("latest_version", 0)),
                active_version=entry.get("active_version"),
                canary_version=entry.get("canary_version"),
                canary_percent=int(entry.get("canary_percent", 0)),
            ),
        )


def select_gateway(gateways: list[ServingGateway], path: str) -> tuple[ServingGateway, str] | None:
    """The gateway whose base path is the longest prefix of `path` (at a segment boundary), and
    the rest of the path; None if no active, deployed gateway serves it."""
    best: tuple[ServingGateway, str] | None = None
    for gateway in gateways:
        if gateway.status != "active" or gateway.deployment.active_version is None:
            continue
        base = gateway.base_path
        if base and not (path == base or path.startswith(base + "/")):
            continue
        if best is None or len(base) > len(best[0].base_path):
            best = (gateway, path[len(base) :] or "/")
    return best


def select_version(gateway: ServingGateway, caller_key: str) -> int:
    deployment = gateway.deployment
    if serves_canary(deployment, caller_key) and deployment.canary_version is not None:
        return deployment.canary_version
    assert deployment.active_version is not None
    return deployment.active_version
