"""Gateways and their deployments (functions/routes/logic/gateways.py), the admin operations over
an in-memory GatewayStore (functions/routes/logic/gateway_admin.py), and the rules a route spec
must meet (functions/routes/logic/route_spec.py)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from functions.routes.logic import gateway_admin, paths
from functions.routes.logic.clients import ConcurrentChange
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
from functions.routes.logic.route_spec import LimitsSpec, Route, RouteSpec
from gateway_core.audit import Actor
from gateway_core.deployed import serves_canary
from gateway_core.errors import Conflict, NotFound, PreconditionFailed

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
ACTOR = Actor("admin-1", "api_key", "k1", "req-1")


def deployment(**values: Any) -> Deployment:
    return Deployment(**values)


# -- deployments (pure) -------------------------------------------------------------------------


def test_deploying_to_all_serves_the_new_version_and_ends_a_canary() -> None:
    assert next_deployment(Deployment(), DeployRequest()) == deployment(latest_version=1, active_version=1)
    current = deployment(latest_version=3, active_version=2, canary_version=3, canary_percent=10)
    assert next_deployment(current, DeployRequest(strategy="all")) == deployment(latest_version=4, active_version=4)


def test_a_canary_deploy_keeps_the_active_version_and_takes_its_share() -> None:
    current = deployment(latest_version=2, active_version=2)
    assert next_deployment(current, DeployRequest(strategy="canary", canary_percent=10)) == deployment(
        latest_version=3, active_version=2, canary_version=3, canary_percent=10
    )


def test_a_canary_needs_a_version_already_serving() -> None:
    with pytest.raises(Conflict) as refused:
        next_deployment(Deployment(), DeployRequest(strategy="canary", canary_percent=10))
    assert refused.value.status == 409
    staged_only = deployment(latest_version=1)
    with pytest.raises(Conflict):
        next_deployment(staged_only, DeployRequest(strategy="canary", canary_percent=10))


@pytest.mark.parametrize(("percent", "ok"), [(0, False), (1, True), (50, True), (99, True), (100, False), (-1, False)])
def test_a_canary_takes_1_to_99_percent(percent: int, ok: bool) -> None:
    current = deployment(latest_version=1, active_version=1)
    request = DeployRequest(strategy="canary", canary_percent=percent)
    if ok:
        assert next_deployment(current, request).canary_percent == percent
    else:
        with pytest.raises(Conflict) as refused:
            next_deployment(current, request)
        assert refused.value.code == "invalid_canary"


def test_a_staged_deploy_publishes_without_serving() -> None:
    current = deployment(latest_version=2, active_version=2)
    assert next_deployment(current, DeployRequest(strategy="staged")) == deployment(latest_version=3, active_version=2)
    assert next_deployment(Deployment(), DeployRequest(strategy="staged")) == deployment(latest_version=1)


def test_activate_serves_any_published_version_and_refuses_others() -> None:
    current = deployment(latest_version=3, active_version=3, canary_version=None)
    assert activate(current, 1) == deployment(latest_version=3, active_version=1)
    assert activate(current, 3) == deployment(latest_version=3, active_version=3)
    for unknown in (0, 4, -1):
        with pytest.raises(UnknownVersion) as refused:
            activate(current, unknown)
        assert (refused.value.status, refused.value.code) == (404, "version_not_found")


def test_activate_ends_a_canary() -> None:
    current = deployment(latest_version=3, active_version=2, canary_version=3, canary_percent=20)
    assert activate(current, 1) == deployment(latest_version=3, active_version=1)


def test_the_previous_version_is_the_active_one_minus_one() -> None:
    assert previous_version(deployment(latest_version=5, active_version=4)) == 3
    for current in (deployment(latest_version=1, active_version=1), Deployment()):
        with pytest.raises(UnknownVersion):
            previous_version(current)


def test_set_canary_changes_the_share_and_zero_ends_it() -> None:
    current = deployment(latest_version=3, active_version=2, canary_version=3, canary_percent=10)
    assert set_canary(current, 40).canary_percent == 40
    assert set_canary(current, 40).canary_version == 3
    assert set_canary(current, 0) == deployment(latest_version=3, active_version=2)


def test_set_canary_without_a_canary_is_a_conflict() -> None:
    with pytest.raises(Conflict) as refused:
        set_canary(deployment(latest_version=1, active_version=1), 10)
    assert refused.value.code == "no_canary"


def test_promote_serves_the_canary_to_everyone() -> None:
    current = deployment(latest_version=3, active_version=2, canary_version=3, canary_percent=10)
    assert promote(current) == deployment(latest_version=3, active_version=3)


def test_promote_without_a_canary_is_a_conflict() -> None:
    with pytest.raises(Conflict) as refused:
        promote(deployment(latest_version=2, active_version=2))
    assert refused.value.code == "no_canary"


def test_serves_canary_is_stable_per_caller_and_follows_the_share() -> None:
    half = deployment(latest_version=2, active_version=1, canary_version=2, canary_percent=50)
    callers = [f"cl_{i}" for i in range(1000)]
    first = [serves_canary(half, c) for c in callers]
    assert first == [serves_canary(half, c) for c in callers]
    assert 400 <= sum(first) <= 600
    ten = half.model_copy(update={"canary_percent": 10})
    on_ten = {c for c in callers if serves_canary(ten, c)}
    on_half = {c for c, yes in zip(callers, first, strict=True) if yes}
    assert 50 <= len(on_ten) <= 150
    assert on_ten <= on_half  # growing the share only adds callers: none switch back and forth
    assert not any(serves_canary(half.model_copy(update={"canary_percent": 0}), c) for c in callers)
    assert not any(serves_canary(deployment(latest_version=1, active_version=1), c) for c in callers)


# -- an in-memory GatewayStore ------------------------------------------------------------------


class FakeGatewayStore:
    """GatewayStore in memory with the real store's guarantees: documents are stored as JSON (a
    read never returns the object that was written), writes are conditional on the version read,
    gateway names and base paths are unique, and (method, path shape) is unique per gateway."""

    def __init__(self) -> None:
        self.gateways: dict[str, str] = {}
        self.routes_by_id: dict[str, str] = {}
        self.versions: dict[tuple[str, int], str] = {}
        self.events: list[str] = []
        self.secrets: dict[str, set[str]] = {}  # gateway id -> the names of its secrets

    def _current(self, gateway_id: str) -> Gateway | None:
        raw = self.gateways.get(gateway_id)
        return Gateway.model_validate_json(raw) if raw else None

    def _unique(self, gateway: Gateway) -> None:
        for other in map(Gateway.model_validate_json, self.gateways.values()):
            if other.gateway_id == gateway.gateway_id:
                continue
            if other.name.lower() == gateway.name.lower() or other.base_path == gateway.base_path:
                raise Conflict("duplicate", code="duplicate_gateway")

    def _check(self, before: Gateway) -> None:
        current = self._current(before.gateway_id)
        if current is None or current.version != before.version:
            raise ConcurrentChange(before.gateway_id)

    def create_gateway(self, gateway: Gateway, actor: Actor) -> None:
        self._unique(gateway)
        self.gateways[gateway.gateway_id] = gateway.model_dump_json()
        self.events.append("gateway.create")

    def replace_gateway(self, before: Gateway, after: Gateway, actor: Actor, action: str = "gateway.update") -> None:
        self._check(before)
        self._unique(after)
        self.gateways[after.gateway_id] = after.model_dump_json()
        self.events.append(action)

    def delete_gateway(self, gateway: Gateway, actor: Actor) -> None:
        if self.routes(gateway.gateway_id):
            raise Conflict("Delete the gateway's routes first.", code="gateway_not_empty")
        self._check(gateway)
        del self.gateways[gateway.gateway_id]
        self.events.append("gateway.delete")

    def gateway(self, gateway_id: str) -> Gateway | None:
        return self._current(gateway_id)

    def _route_clash(self, route: Route) -> None:
        for other in self.routes(route.gateway_id):
            same = (other.method, paths.shape(other.path)) == (route.method, paths.shape(route.path))
            if other.route_id != route.route_id and same:
                raise Conflict("duplicate", code="duplicate_route")

    def create_route(self, route: Route, actor: Actor) -> None:
        if route.gateway_id not in self.gateways:
            raise Conflict("no gateway", code="gateway_not_found")
        self._route_clash(route)
        self.routes_by_id[route.route_id] = route.model_dump_json(context=UNMASKED)
        self.events.append("route.create")

    def replace_route(self, before: Route, after: Route, actor: Actor) -> None:
        current = self.route(before.route_id)
        if current is None or current.version != before.version:
            raise ConcurrentChange(before.route_id)
        self._route_clash(after)
        self.routes_by_id[after.route_id] = after.model_dump_json(context=UNMASKED)
        self.events.append("route.update")

    def delete_route(self, route: Route, actor: Actor) -> None:
        del self.routes_by_id[route.route_id]
        self.events.append("route.delete")

    def route(self, route_id: str) -> Route | None:
        raw = self.routes_by_id.get(route_id)
        return Route.model_validate_json(raw, context={"stored": True}) if raw else None

    def routes(self, gateway_id: str) -> list[Route]:
        found = [Route.model_validate_json(r, context={"stored": True}) for r in self.routes_by_id.values()]
        return sorted((r for r in found if r.gateway_id == gateway_id), key=lambda r: (r.path, r.method))

    def publish(self, before: Gateway, after: Gateway, snapshot: GatewayVersion, actor: Actor) -> None:
        key = (snapshot.gateway_id, snapshot.version)
        if key in self.versions:
            raise Conflict("version exists")
        self._check(before)
        self.versions[key] = snapshot.model_dump_json(context=UNMASKED)
        self.gateways[after.gateway_id] = after.model_dump_json()
        self.events.append("gateway.deploy")

    def version(self, gateway_id: str, version: int) -> GatewayVersion | None:
        raw = self.versions.get((gateway_id, version))
        return GatewayVersion.model_validate_json(raw, context={"stored": True}) if raw else None

    def secret_names(self, gateway_id: str) -> set[str]:
        return set(self.secrets.get(gateway_id, set()))


def _typed(store: FakeGatewayStore) -> gateway_admin.GatewayStore:
    return store  # mypy checks here that the fake meets the Protocol


@pytest.fixture
def store() -> FakeGatewayStore:
    return FakeGatewayStore()


def gateway_spec(**values: Any) -> GatewaySpec:
    return GatewaySpec.model_validate({"name": "partners", "base_path": "/partners", **values})


def route_spec(gateway_id: str, **values: Any) -> RouteSpec:
    data: dict[str, Any] = {
        "gateway_id": gateway_id,
        "name": "orders",
        "method": "GET",
        "path": "/orders/{id}",
        "targets": [{"url": "https://upstream-a.example"}],
        **values,
    }
    return RouteSpec.model_validate(data, context={"stored": True})


def new_gateway(store: FakeGatewayStore, **values: Any) -> Gateway:
    return gateway_admin.create_gateway(_typed(store), gateway_spec(**values), ACTOR, NOW)


# -- gateway admin ------------------------------------------------------------------------------


def test_create_gateway_stores_version_one_without_a_deployment(store: FakeGatewayStore) -> None:
    created = new_gateway(store)
    assert created.gateway_id.startswith("gw_")
    assert created.version == 1
    assert created.created_at == created.updated_at == "2026-05-01T09:00:00.000Z"
    assert created.deployment == Deployment()
    assert gateway_admin.get_gateway(_typed(store), created.gateway_id) == created


def test_an_unknown_gateway_is_404(store: FakeGatewayStore) -> None:
    with pytest.raises(NotFound) as missing:
        gateway_admin.get_gateway(_typed(store), "gw_nope")
    assert missing.value.code == "gateway_not_found"
    with pytest.raises(NotFound):
        gateway_admin.deploy(_typed(store), "gw_nope", DeployRequest(), ACTOR, NOW)
    with pytest.raises(NotFound):
        gateway_admin.create_route(_typed(store), route_spec("gw_nope"), ACTOR, NOW)


def test_update_gateway_with_a_stale_if_match_is_412_version_mismatch(store: FakeGatewayStore) -> None:
    created = new_gateway(store)
    with pytest.raises(PreconditionFailed) as refused:
        gateway_admin.update_gateway(
            _typed(store), created.gateway_id, gateway_spec(description="x"), ACTOR, LATER, expected_version=7
        )
    assert (refused.value.status, refused.value.code) == (412, "version_mismatch")
    assert gateway_admin.get_gateway(_typed(store), created.gateway_id) == created


def test_update_gateway_changes_the_settings_and_keeps_identity_and_deployment(store: FakeGatewayStore) -> None:
    created = new_gateway(store)
    gateway_admin.deploy(_typed(store), created.gateway_id, DeployRequest(), ACTOR, NOW)
    spec = gateway_spec(
        description="partner APIs",
        retry={"max_attempts": 2},
        cors={"allow_origins": ["https://app.example"]},
    )
    updated = gateway_admin.update_gateway(_typed(store), created.gateway_id, spec, ACTOR, LATER, expected_version=2)
    assert updated.version == 3
    assert (updated.gateway_id, updated.created_at) == (created.gateway_id, created.created_at)
    assert updated.updated_at == "2026-05-01T09:05:00.000Z"
    assert updated.deployment == deployment(latest_version=1, active_version=1)
    assert updated.retry.max_attempts == 2
    assert updated.cors is not None
    assert updated.cors.allow_origins == ["https://app.example"]
    assert gateway_admin.get_gateway(_typed(store), created.gateway_id) == updated
    # If-Match: * (the API requires an If-Match): last writer wins
    again = gateway_admin.update_gateway(_typed(store), created.gateway_id, spec, ACTOR, LATER, expected_version=None)
    assert again.version == 4


def test_update_gateway_builds_the_new_gateway_without_serializer_warnings(store: FakeGatewayStore) -> None:
    """update_gateway copies the spec's nested settings into the gateway as plain dicts
    (model_copy does not validate), so dumping it warns on every update; the new gateway should
    be validated from the merged data instead."""
    created = new_gateway(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gateway_admin.update_gateway(
            _typed(store), created.gateway_id, gateway_spec(retry={"max_attempts": 2}), ACTOR, LATER, None
        )


def test_routes_are_created_updated_and_listed(store: FakeGatewayStore) -> None:
    gateway = new_gateway(store)
    route = gateway_admin.create_route(_typed(store), route_spec(gateway.gateway_id), ACTOR, NOW)
    assert route.route_id.startswith("rt_")
    assert (route.version, route.created_by) == (1, "admin-1")
    changed = gateway_admin.update_route(
        _typed(store), route.route_id, route_spec(gateway.gateway_id, name="orders v2"), ACTOR, LATER, 1
    )
    assert (changed.version, changed.name, changed.created_at) == (2, "orders v2", route.created_at)
    assert changed.updated_at == "2026-05-01T09:05:00.000Z"
    assert gateway_admin.list_routes(_typed(store), gateway.gateway_id) == [changed]
    assert gateway_admin.get_route(_typed(store), route.route_id) == changed


def test_update_route_with_a_stale_if_match_is_412_version_mismatch(store: FakeGatewayStore) -> None:
    gateway = new_gateway(store)
    route = gateway_admin.create_route(_typed(store), route_spec(gateway.gateway_id), ACTOR, NOW)
    with pytest.raises(PreconditionFailed) as refused:
        gateway_admin.update_route(_typed(store), route.route_id, route_spec(gateway.gateway_id), ACTOR, LATER, 5)
    assert (refused.value.status, refused.value.code) == (412, "version_mismatch")
    assert gateway_admin.get_route(_typed(store), route.route_id) == route


def test_a_stale_if_match_on_the_canary_or_a_delete_changes_nothing(store: FakeGatewayStore) -> None:
    gateway = new_gateway(store)
    route = gateway_admin.create_route(_typed(store), route_spec(gateway.gateway_id), ACTOR, NOW)
    gateway_admin.deploy(_typed(store), gateway.gateway_id, DeployRequest(), ACTOR, NOW)
    deployed = gateway_admin.deploy(
        _typed(store), gateway.gateway_id, DeployRequest(strategy="canary", canary_percent=10), ACTOR, NOW
    )
    with pytest.raises(PreconditionFailed):
        gateway_admin.canary(_typed(store), gateway.gateway_id, 50, ACTOR, LATER, deployed.version - 1)
    with pytest.raises(PreconditionFailed):
        gateway_admin.delete_route(_typed(store), route.route_id, ACTOR, route.version + 1)
    assert gateway_admin.get_gateway(_typed(store), gateway.gateway_id) == deployed
    assert gateway_admin.get_route(_typed(store), route.route_id) == route
    changed = gateway_admin.canary(_typed(store), gateway.gateway_id, 50, ACTOR, LATER, deployed.version)
    assert (changed.version, changed.deployment.canary_percent) == (deployed.version + 1, 50)
    gateway_admin.delete_route(_typed(store), route.route_id, ACTOR, route.version)
    assert gateway_admin.list_routes(_typed(store), gateway.gateway_id) == []


def test_update_route_cannot_move_it_to_another_gateway(store: FakeGatewayStore) -> None:
    first = new_gateway(store)
    second = new_gateway(store, name="other", base_path="/other")
    route = gateway_admin.create_route(_typed(store), route_spec(first.gateway_id), ACTOR, NOW)
    with pytest.raises(Conflict) as refused:
        gateway_admin.update_route(_typed(store), route.route_id, route_spec(second.gateway_id), ACTOR, LATER, None)
    assert refused.value.code == "gateway_change"
    assert gateway_admin.get_route(_typed(store), route.route_id).gateway_id == first.gateway_id


def test_an_unknown_route_is_404(store: FakeGatewayStore) -> None:
    gateway = new_gateway(store)
    with pytest.raises(NotFound) as missing:
        gateway_admin.update_route(_typed(store), "rt_nope", route_spec(gateway.gateway_id), ACTOR, NOW, None)
    assert missing.value.code == "route_not_found"
    with pytest.raises(NotFound):
        gateway_admin.delete_route(_typed(store), "rt_nope", ACTOR)


def test_deploy_snapshots_the_routes_as_they_are_at_deploy_time(store: FakeGatewayStore) -> None:
    gateway = new_gateway(store)
    route = gateway_admin.create_route(_typed(store), route_spec(gateway.gateway_id), ACTOR, NOW)
    deployed = gateway_admin.deploy(_typed(store), gateway.gateway_id, DeployRequest(description="first"), ACTOR, NOW)
    assert deployed.deployment == deployment(latest_version=1, active_version=1)
    assert deployed.version == gateway.version + 1

    gateway_admin.update_route(
        _typed(store),
        route.route_id,
        route_spec(gateway.gateway_id, path="/v2/orders/{id}", targets=[{"url": "https://upstream-b.example"}]),
        ACTOR,
        LATER,
        1,
    )
    gateway_admin.create_route(
        _typed(store), route_spec(gateway.gateway_id, path="/payments", method="POST"), ACTOR, LATER
    )
    gateway_admin.update_gateway(
        _typed(store), gateway.gateway_id, gateway_spec(default_timeout_seconds=3.0), ACTOR, LATER, None
    )

    published = gateway_admin.get_version(_typed(store), gateway.gateway_id, 1)
    assert published.version == 1
    assert published.description == "first"
    assert published.created_by == "admin-1"
    assert [(r.route_id, r.path, r.targets[0].url) for r in published.routes] == [
        (route.route_id, "/orders/{id}", "https://upstream-a.example")
    ]
    assert published.settings.default_timeout_seconds == 10.0

    second = gateway_admin.deploy(_typed(store), gateway.gateway_id, DeployRequest(), ACTOR, LATER)
    assert second.deployment.active_version == 2
    now_published = gateway_admin.get_version(_typed(store), gateway.gateway_id, 2)
    assert sorted(r.path for r in now_published.routes) == ["/payments", "/v2/orders/{id}"]
    assert now_published.settings.default_timeout_seconds == 3.0
    assert gateway_admin.get_version(_typed(store), gateway.gateway_id, 1) == published


def test_a_version_never_deployed_is_404_version_not_found(store: FakeGatewayStore) -> None:
    gateway = new_gateway(store)
    with pytest.raises(UnknownVersion) as missing:
        gateway_admin.get_version(_typed(store), gateway.gateway_id, 1)
    assert (missing.value.status, missing.value.code) == (404, "version_not_found")
    with pytest.raises(UnknownVersion):
        gateway_admin.activate_version(_typed(store), gateway.gateway_id, 1, ACTOR, NOW)


def deployed_three_times(store: FakeGatewayStore) -> Gateway:
    gateway = new_gateway(store)
    gateway_admin.create_route(_typed(store), route_spec(gateway.gateway_id), ACTOR, NOW)
    for _ in range(3):
        gateway = gateway_admin.deploy(_typed(store), gateway.gateway_id, DeployRequest(), ACTOR, NOW)
    return gateway


def test_activate_and_rollback_through_the_store(store: FakeGatewayStore) -> None:
    gateway = deployed_three_times(store)
    assert gateway.deployment == deployment(latest_version=3, active_version=3)
    rolled = gateway_admin.rollback(_typed(store), gateway.gateway_id, None, ACTOR, LATER)
    assert rolled.deployment.active_version == 2  # active - 1 by default
    rolled = gateway_admin.rollback(_typed(store), gateway.gateway_id, None, ACTOR, LATER)
    assert rolled.deployment.active_version == 1
    with pytest.raises(UnknownVersion):
        gateway_admin.rollback(_typed(store), gateway.gateway_id, None, ACTOR, LATER)  # nothing before 1
    activated = gateway_admin.activate_version(_typed(store), gateway.gateway_id, 3, ACTOR, LATER)
    assert activated.deployment.active_version == 3
    explicit = gateway_admin.rollback(_typed(store), gateway.gateway_id, 1, ACTOR, LATER)
    assert explicit.deployment.active_version == 1
    assert store.events.count("gateway.rollback") == 3
    assert store.events.count("gateway.activate") == 1


@pytest.mark.parametrize(
    ("target", "error", "code"), [(3, Conflict, "not_a_rollback"), (4, UnknownVersion, "version_not_found")]
)
def test_rollback_refuses_the_active_version_and_versions_never_deployed(
    store: FakeGatewayStore, target: int, error: type[Exception], code: str
) -> None:
    gateway = deployed_three_times(store)
    with pytest.raises(error) as refused:
        gateway_admin.rollback(_typed(store), gateway.gateway_id, target, ACTOR, LATER)
    assert getattr(refused.value, "code", None) == code
    assert gateway_admin.get_gateway(_typed(store), gateway.gateway_id).deployment.active_version == 3


def test_a_canary_deploy_share_change_and_promotion_through_the_store(store: FakeGatewayStore) -> None:
    gateway = new_gateway(store)
    gateway_admin.create_route(_typed(store), route_spec(gateway.gateway_id), ACTOR, NOW)
    with pytest.raises(Conflict):
        gateway_admin.deploy(
            _typed(store), gateway.gateway_id, DeployRequest(strategy="canary", canary_percent=5), ACTOR, NOW
        )
    gateway_admin.deploy(_typed(store), gateway.gateway_id, DeployRequest(), ACTOR, NOW)
    with pytest.raises(Conflict) as refused:
        gateway_admin.promote_canary(_typed(store), gateway.gateway_id, ACTOR, NOW)
    assert refused.value.code == "no_canary"

    canary = gateway_admin.deploy(
        _typed(store), gateway.gateway_id, DeployRequest(strategy="canary", canary_percent=5), ACTOR, NOW
    )
    assert canary.deployment == deployment(latest_version=2, active_version=1, canary_version=2, canary_percent=5)
    assert gateway_admin.canary(_typed(store), gateway.gateway_id, 25, ACTOR, NOW, None).deployment.canary_percent == 25
    promoted = gateway_admin.promote_canary(_typed(store), gateway.gateway_id, ACTOR, NOW)
    assert promoted.deployment == deployment(latest_version=2, active_version=2)

    gateway_admin.deploy(
        _typed(store), gateway.gateway_id, DeployRequest(strategy="canary", canary_percent=5), ACTOR, NOW
    )
    ended = gateway_admin.canary(_typed(store), gateway.gateway_id, 0, ACTOR, NOW, None)
    assert ended.deployment == deployment(latest_version=3, active_version=2)


def test_a_staged_deploy_then_activate_is_a_blue_green_switch(store: FakeGatewayStore) -> None:
    gateway = new_gateway(store)
    gateway_admin.create_route(_typed(store), route_spec(gateway.gateway_id), ACTOR, NOW)
    gateway_admin.deploy(_typed(store), gateway.gateway_id, DeployRequest(), ACTOR, NOW)
    staged = gateway_admin.deploy(_typed(store), gateway.gateway_id, DeployRequest(strategy="staged"), ACTOR, NOW)
    assert staged.deployment == deployment(latest_version=2, active_version=1)
    assert gateway_admin.get_version(_typed(store), gateway.gateway_id, 2).version == 2
    switched = gateway_admin.activate_version(_typed(store), gateway.gateway_id, 2, ACTOR, NOW)
    assert switched.deployment.active_version == 2


def test_a_gateway_with_routes_cannot_be_deleted(store: FakeGatewayStore) -> None:
    gateway = new_gateway(store)
    route = gateway_admin.create_route(_typed(store), route_spec(gateway.gateway_id), ACTOR, NOW)
    with pytest.raises(Conflict) as refused:
        gateway_admin.delete_gateway(_typed(store), gateway.gateway_id, ACTOR)
    assert refused.value.code == "gateway_not_empty"
    gateway_admin.delete_route(_typed(store), route.route_id, ACTOR)
    gateway_admin.delete_gateway(_typed(store), gateway.gateway_id, ACTOR)
    assert store.gateway(gateway.gateway_id) is None


# -- route spec validation ----------------------------------------------------------------------

BASE: dict[str, Any] = {
    "gateway_id": "gw_1",
    "name": "orders",
    "method": "GET",
    "path": "/orders/{id}",
    "targets": [{"url": "https://upstream-a.example"}],
}
SOAP = {"namespace": "urn:bank:accounts", "operation": "GetBalance"}


def validate(**changes: Any) -> RouteSpec:
    return RouteSpec.model_validate({**BASE, **changes})


def test_a_minimal_route_spec_is_valid_and_takes_the_defaults() -> None:
    spec = validate(required_scopes=["data:read", "banking:read", "data:read"])
    assert spec.auth_required is True
    assert spec.protocol == "rest"
    assert spec.required_scopes == ["banking:read", "data:read"]  # sorted, once each
    assert spec.targets[0].url == "https://upstream-a.example"
    assert validate(targets=[{"url": "https://upstream-a.example/base/"}]).targets[0].url == (
        "https://upstream-a.example/base"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": "POST", "protocol": "soap"}, "protocol 'soap' and the 'soap' settings go together"),
        ({"method": "POST", "soap": SOAP}, "protocol 'soap' and the 'soap' settings go together"),
        ({"method": "POST", "protocol": "graphql"}, "protocol 'graphql'"),
        ({"method": "PUT", "protocol": "soap", "soap": SOAP}, "SOAP and GraphQL routes are GET or POST"),
        ({"method": "POST", "cache_ttl_seconds": 60}, "only GET and HEAD routes are cached"),
        ({"method": "ANY", "cache_ttl_seconds": 60}, "only GET and HEAD routes are cached"),
        ({"auth_required": False, "required_scopes": ["data:read"]}, "required_scopes need auth_required: true"),
        ({"required_scopes": ["data:read", "root:all"]}, "unknown scopes: root:all"),
        ({"deprecation_date": "2026-01-01"}, "need deprecated: true"),
        ({"sunset_date": "2026-06-30"}, "need deprecated: true"),
        (
            {"deprecated": True, "deprecation_date": "2026-06-30", "sunset_date": "2026-01-01"},
            "sunset_date comes after deprecation_date",
        ),
        ({"upstream_path": "/v2/orders/{order_id}"}, "upstream_path uses parameters the path does not have"),
        ({"upstream_path": "v2/orders"}, "starts with '/'"),
        ({"path": "/orders/{id}/{id}"}, "twice"),
        ({"rate_limits": {"per_minute": 10, "burst": 20}}, "burst needs per_minute and may not exceed it"),
        ({"rate_limits": {"per_hour": 10, "burst": 5}}, "burst needs per_minute and may not exceed it"),
        ({"rate_limits": {}}, "give at least one of per_minute, per_hour, per_day"),
        ({"total_rate_limits": {"burst": 5}}, "give at least one of per_minute, per_hour, per_day"),
        ({"targets": []}, "at least 1 item"),
        ({"targets": [{"url": "http://10.0.0.8"}]}, "private, loopback, link-local or metadata"),
        ({"targets": [{"url": "https://metadata.google.internal"}]}, "names this host"),
        ({"targets": [{"url": "http://upstream-a.example"}]}, "over https"),
        ({"request_transform": {"body": {"x": "{{ config.key }}"}}}, "is not one of"),
        ({"request_transform": {"headers": {"replace": {}}}}, "unknown rule operations"),
        ({"timeout_seconds": 29}, "less than or equal to 28"),
        ({"unknown_field": 1}, "Extra inputs are not permitted"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_route_specs_that_break_a_rule_are_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], message: str
) -> None:
    monkeypatch.delenv("UPSTREAM_ALLOW_CIDRS", raising=False)
    monkeypatch.delenv("UPSTREAM_REQUIRE_HTTPS", raising=False)
    with pytest.raises(ValidationError) as refused:
        validate(**changes)
    assert message in str(refused.value)


def test_limits_spec_needs_at_least_one_window_and_a_burst_within_the_minute() -> None:
    with pytest.raises(ValidationError, match="give at least one"):
        LimitsSpec()
    with pytest.raises(ValidationError, match="burst needs per_minute"):
        LimitsSpec(per_minute=10, burst=11)
    assert LimitsSpec(per_minute=10, burst=10).burst == 10
    assert LimitsSpec(per_day=1000).per_day == 1000


def test_valid_protocol_routes_pass() -> None:
    soap = validate(method="POST", protocol="soap", soap=SOAP)
    assert soap.soap is not None
    assert soap.soap.version == "1.1"
    graphql = validate(protocol="graphql", graphql={"query": "query { accounts { id } }"})
    assert graphql.graphql is not None
    cached = validate(cache_ttl_seconds=60, deprecated=True, deprecation_date="2026-01-01", sunset_date="2026-06-30")
    assert cached.cache_ttl_seconds == 60


def test_stored_routes_skip_the_ssrf_check_of_admin_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSTREAM_ALLOW_CIDRS", raising=False)
    data = {
        **BASE,
        "targets": [{"url": "http://127.0.0.1:8080"}],
        "route_id": "rt_1",
        "version": 1,
        "created_at": "x",
        "updated_at": "x",
        "created_by": "a",
    }
    with pytest.raises(ValidationError):
        Route.model_validate(data)
    assert Route.stored(data).targets[0].url == "http://127.0.0.1:8080"
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8")
    assert Route.model_validate(data).targets[0].url == "http://127.0.0.1:8080"


def test_gateway_spec_rules() -> None:
    with pytest.raises(ValidationError):
        GatewaySpec.model_validate({"name": "x", "base_path": "/Upper"})
    with pytest.raises(ValidationError, match="origins are"):
        GatewaySpec.model_validate({"name": "x", "cors": {"allow_origins": ["app.example"]}})
    with pytest.raises(ValidationError):
        GatewaySpec.model_validate({"name": "x", "default_timeout_seconds": 30})
    assert GatewaySpec.model_validate({"name": "x", "base_path": "/a/b-c"}).base_path == "/a/b-c"
