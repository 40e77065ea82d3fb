"""Admin operations on gateways, their routes and their deployments. No HTTP, no boto3: the store
is passed in (functions/routes/dal/gateways_store.py in the function, a fake in unit tests)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Protocol

from functions.routes.logic import secrets as upstream_secrets
from functions.routes.logic.gateways import (
    Deployment,
    DeployRequest,
    Gateway,
    GatewaySpec,
    GatewayVersion,
    UnknownVersion,
    activate,
    next_deployment,
    previous_version,
    promote,
    set_canary,
)
from functions.routes.logic.redaction import UNMASKED
from functions.routes.logic.route_spec import Route, RouteSpec
from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.errors import Conflict, NotFound
from gateway_core.preconditions import Expected, check, no_lost_update


class GatewayStore(Protocol):
    def create_gateway(self, gateway: Gateway, actor: Actor) -> None: ...
    def replace_gateway(self, before: Gateway, after: Gateway, actor: Actor, action: str = ...) -> None: ...
    def delete_gateway(self, gateway: Gateway, actor: Actor) -> None: ...
    def gateway(self, gateway_id: str) -> Gateway | None: ...
    def create_route(self, route: Route, actor: Actor) -> None: ...
    def replace_route(self, before: Route, after: Route, actor: Actor) -> None: ...
    def delete_route(self, route: Route, actor: Actor) -> None: ...
    def route(self, route_id: str) -> Route | None: ...
    def routes(self, gateway_id: str) -> list[Route]: ...
    def publish(self, before: Gateway, after: Gateway, snapshot: GatewayVersion, actor: Actor) -> None: ...
    def version(self, gateway_id: str, version: int) -> GatewayVersion | None: ...
    def secret_names(self, gateway_id: str) -> set[str]: ...


def _gateway_or_404(store: GatewayStore, gateway_id: str) -> Gateway:
    gateway = store.gateway(gateway_id)
    if gateway is None:
        raise NotFound(f"No gateway {gateway_id}.", code="gateway_not_found")
    return gateway


def _route_or_404(store: GatewayStore, route_id: str) -> Route:
    route = store.route(route_id)
    if route is None:
        raise NotFound(f"No route {route_id}.", code="route_not_found")
    return route


def create_gateway(store: GatewayStore, spec: GatewaySpec, actor: Actor, now: datetime) -> Gateway:
    stamp = iso(now)
    gateway = Gateway(
        **spec.model_dump(),
        gateway_id=f"gw_{secrets.token_hex(8)}",
        created_at=stamp,
        updated_at=stamp,
        version=1,
    )
    store.create_gateway(gateway, actor)
    return gateway


def get_gateway(store: GatewayStore, gateway_id: str) -> Gateway:
    return _gateway_or_404(store, gateway_id)


def update_gateway(
    store: GatewayStore, gateway_id: str, spec: GatewaySpec, actor: Actor, now: datetime, expected_version: Expected
) -> Gateway:
    before = _gateway_or_404(store, gateway_id)
    check(f"The gateway {gateway_id}", before.version, expected_version)
    after = Gateway.model_validate(
        {**before.model_dump(), **spec.model_dump(), "updated_at": iso(now), "version": before.version + 1}
    )
    with no_lost_update(f"The gateway {gateway_id}", expected_version):
        store.replace_gateway(before, after, actor)
    return after


def delete_gateway(store: GatewayStore, gateway_id: str, actor: Actor, expected_version: Expected = None) -> None:
    """`expected_version`: an If-Match sent with the DELETE (optional there)."""
    found = _gateway_or_404(store, gateway_id)
    check(f"The gateway {gateway_id}", found.version, expected_version)
    with no_lost_update(f"The gateway {gateway_id}", expected_version):
        store.delete_gateway(found, actor)


def _require_secrets(store: GatewayStore, gateway_id: str, specs: list[RouteSpec]) -> None:
    """Every secret the routes send upstream exists on their gateway (422 `unknown_secret`)."""
    needed = {name for spec in specs for name in upstream_secrets.route_references(spec)}
    if needed:
        upstream_secrets.require_secrets(gateway_id, needed, store.secret_names(gateway_id))


def create_route(store: GatewayStore, spec: RouteSpec, actor: Actor, now: datetime) -> Route:
    _gateway_or_404(store, spec.gateway_id)
    _require_secrets(store, spec.gateway_id, [spec])
    stamp = iso(now)
    route = Route.stored(
        {
            **spec.model_dump(mode="json", context=UNMASKED),
            "route_id": f"rt_{secrets.token_hex(8)}",
            "version": 1,
            "created_at": stamp,
            "updated_at": stamp,
            "created_by": actor.client_id,
        }
    )
    store.create_route(route, actor)
    return route


def get_route(store: GatewayStore, route_id: str) -> Route:
    return _route_or_404(store, route_id)


def update_route(
    store: GatewayStore, route_id: str, spec: RouteSpec, actor: Actor, now: datetime, expected_version: Expected
) -> Route:
    before = _route_or_404(store, route_id)
    # The precondition first (RFC 9110 §13.2.1): a change without If-Match is 428 whatever it asks.
    check(f"The route {route_id}", before.version, expected_version)
    if spec.gateway_id != before.gateway_id:
        raise Conflict("A route stays on its gateway; create it on the other one instead.", code="gateway_change")
    _require_secrets(store, spec.gateway_id, [spec])
    after = Route.stored(
        {
            **spec.model_dump(mode="json", context=UNMASKED),
            "route_id": route_id,
            "version": before.version + 1,
            "created_at": before.created_at,
            "updated_at": iso(now),
            "created_by": before.created_by,
        }
    )
    with no_lost_update(f"The route {route_id}", expected_version):
        store.replace_route(before, after, actor)
    return after


def delete_route(store: GatewayStore, route_id: str, actor: Actor, expected_version: Expected = None) -> None:
    """`expected_version`: an If-Match sent with the DELETE (optional there)."""
    found = _route_or_404(store, route_id)
    check(f"The route {route_id}", found.version, expected_version)
    with no_lost_update(f"The route {route_id}", expected_version):
        store.delete_route(found, actor)


def list_routes(store: GatewayStore, gateway_id: str) -> list[Route]:
    _gateway_or_404(store, gateway_id)
    return store.routes(gateway_id)


def _with_deployment(before: Gateway, deployment: Deployment, now: datetime) -> Gateway:
    return before.model_copy(update={"deployment": deployment, "updated_at": iso(now), "version": before.version + 1})


def deploy(store: GatewayStore, gateway_id: str, request: DeployRequest, actor: Actor, now: datetime) -> Gateway:
    before = _gateway_or_404(store, gateway_id)
    deployment = next_deployment(before.deployment, request)
    after = _with_deployment(before, deployment, now)
    routes = store.routes(gateway_id)
    # A secret deleted since a route was written would fail every call of the new version.
    _require_secrets(store, gateway_id, [r for r in routes if r.active])
    snapshot = GatewayVersion(
        gateway_id=gateway_id,
        version=deployment.latest_version,
        description=request.description,
        created_at=iso(now),
        created_by=actor.client_id,
        settings=GatewaySpec.model_validate(before.spec(), context={"stored": True}),
        routes=routes,
    )
    with no_lost_update(f"The gateway {gateway_id}", None):
        store.publish(before, after, snapshot, actor)
    return after


def _move(
    store: GatewayStore,
    gateway_id: str,
    change: Any,
    actor: Actor,
    now: datetime,
    action: str,
    expected_version: Expected = None,
) -> Gateway:
    before = _gateway_or_404(store, gateway_id)
    check(f"The gateway {gateway_id}", before.version, expected_version)
    after = _with_deployment(before, change(before.deployment), now)
    with no_lost_update(f"The gateway {gateway_id}", expected_version):
        store.replace_gateway(before, after, actor, action)
    return after


def activate_version(store: GatewayStore, gateway_id: str, version: int, actor: Actor, now: datetime) -> Gateway:
    return _move(store, gateway_id, lambda d: activate(d, version), actor, now, "gateway.activate")


def rollback(store: GatewayStore, gateway_id: str, version: int | None, actor: Actor, now: datetime) -> Gateway:
    def change(current: Deployment) -> Deployment:
        target = version if version is not None else previous_version(current)
        if target > current.latest_version:
            raise UnknownVersion(f"Version {target} was never deployed (latest is {current.latest_version}).")
        if current.active_version is not None and target >= current.active_version:
            raise Conflict(
                f"Roll back to a version before {current.active_version}; use activate otherwise.",
                code="not_a_rollback",
            )
        return activate(current, target)

    return _move(store, gateway_id, change, actor, now, "gateway.rollback")


def canary(
    store: GatewayStore, gateway_id: str, percent: int, actor: Actor, now: datetime, expected_version: Expected
) -> Gateway:
    """The canary is part of its gateway: `expected_version` is the gateway's (If-Match; None: `*`)."""
    return _move(store, gateway_id, lambda d: set_canary(d, percent), actor, now, "gateway.canary", expected_version)


def promote_canary(store: GatewayStore, gateway_id: str, actor: Actor, now: datetime) -> Gateway:
    return _move(store, gateway_id, promote, actor, now, "gateway.promote")


def get_version(store: GatewayStore, gateway_id: str, version: int) -> GatewayVersion:
    _gateway_or_404(store, gateway_id)
    found = store.version(gateway_id, version)
    if found is None:
        raise UnknownVersion(f"Gateway {gateway_id} has no version {version}.")
    return found
