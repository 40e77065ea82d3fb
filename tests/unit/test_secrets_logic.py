"""Upstream secrets, the admin side (functions.routes.logic.secrets) over an in-memory store, and
the references routes make to them (functions.routes.logic.gateway_admin)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.routes.logic import gateway_admin, secrets
from functions.routes.logic.clients import ConcurrentChange
from functions.routes.logic.gateways import DeployRequest
from functions.routes.logic.route_spec import RouteSpec
from functions.routes.logic.secrets import Secret, SecretNotFound, UnknownSecret
from gateway_core.audit import Actor
from gateway_core.errors import BadRequest, Conflict, NotFound, PreconditionFailed, PreconditionRequired
from gateway_core.preconditions import Conditions
from tests.unit.test_gateways_logic import FakeGatewayStore, gateway_spec, route_spec

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
ACTOR = Actor("admin-1", "api_key", "k1", "req-1")
OTHER = Actor("admin-2", "api_key", "k2", "req-2")
VALUE = "sk_live_0123456789"


class FakeSecretStore:
    """SecretStore in memory, with the real store's conditions (version read, gateway exists)."""

    def __init__(self, gateways: set[str]) -> None:
        self.gateways = gateways
        self.items: dict[tuple[str, str], tuple[str, bytes]] = {}  # metadata JSON, ciphertext
        self.events: list[dict[str, Any]] = []

    def gateway_exists(self, gateway_id: str) -> bool:
        return gateway_id in self.gateways

    def secret(self, gateway_id: str, name: str) -> Secret | None:
        found = self.items.get((gateway_id, name))
        return Secret.model_validate_json(found[0]) if found else None

    def secrets(self, gateway_id: str) -> list[Secret]:
        return [Secret.model_validate_json(doc) for (gw, _), (doc, _) in self.items.items() if gw == gateway_id]

    def put_secret(self, before: Secret | None, after: Secret, ciphertext: bytes, actor: Actor) -> None:
        current = self.secret(after.gateway_id, after.name)
        if (current.version if current else None) != (before.version if before else None):
            raise ConcurrentChange(after.name)
        if after.gateway_id not in self.gateways:
            raise NotFound("no gateway", code="gateway_not_found")
        self.items[(after.gateway_id, after.name)] = (after.model_dump_json(), ciphertext)
        self.events.append({"before": before.public() if before else None, "after": after.public()})

    def delete_secret(self, secret: Secret, actor: Actor) -> None:
        current = self.secret(secret.gateway_id, secret.name)
        if current is None or current.version != secret.version:
            raise ConcurrentChange(secret.name)
        del self.items[(secret.gateway_id, secret.name)]
        self.events.append({"before": secret.public(), "after": None})


class FakeSealer:
    """Seals by tagging the value with its gateway and name (a fake, so tests can see the binding)."""

    def seal(self, gateway_id: str, name: str, value: str) -> bytes:
        return f"sealed:{gateway_id}:{name}:{value}".encode()


def _typed(store: FakeSecretStore) -> secrets.SecretStore:
    return store  # mypy checks here that the fake meets the Protocol


@pytest.fixture
def store() -> FakeSecretStore:
    return FakeSecretStore({"gw_1"})


def _set(store: FakeSecretStore, name: str = "orders_token", value: str = VALUE, **kwargs: Any) -> tuple[Secret, bool]:
    """Without `conditions`: If-Match with `expected_version`, or `*` where the secret exists (a
    replace needs If-Match) and none where it does not (a create takes none)."""
    gateway_id = kwargs.pop("gateway_id", "gw_1")
    conditions = kwargs.pop("conditions", None)
    if conditions is None:
        if "expected_version" in kwargs:
            conditions = Conditions(if_match=True, version=kwargs.pop("expected_version"))
        else:
            conditions = Conditions(if_match=(gateway_id, name) in store.items)
    return secrets.set_secret(
        _typed(store),
        FakeSealer(),
        gateway_id,
        name,
        value,
        kwargs.pop("actor", ACTOR),
        kwargs.pop("now", NOW),
        conditions,
    )


# -- set, read, delete ---------------------------------------------------------------------------


def test_given_a_new_name_when_set_then_version_one_is_created_and_only_the_ciphertext_holds_the_value(
    store: FakeSecretStore,
) -> None:
    saved, created = _set(store)

    assert created is True
    assert saved.model_dump() == {
        "gateway_id": "gw_1",
        "name": "orders_token",
        "version": 1,
        "created_at": "2026-05-01T09:00:00.000Z",
        "updated_at": "2026-05-01T09:00:00.000Z",
        "created_by": "admin-1",
        "updated_by": "admin-1",
    }
    doc, ciphertext = store.items[("gw_1", "orders_token")]
    assert VALUE not in doc  # the metadata, which reads return
    assert ciphertext == f"sealed:gw_1:orders_token:{VALUE}".encode()  # bound to gateway and name
    assert VALUE not in json.dumps(store.events)  # the audit hashes the metadata only


def test_given_a_secret_when_set_again_then_the_next_version_keeps_its_creation(store: FakeSecretStore) -> None:
    _set(store)
    saved, created = _set(store, value="rotated-value", actor=OTHER, now=LATER)

    assert created is False
    assert (saved.version, saved.created_at, saved.created_by, saved.updated_by) == (
        2,
        "2026-05-01T09:00:00.000Z",
        "admin-1",
        "admin-2",
    )
    assert store.items[("gw_1", "orders_token")][1].endswith(b":rotated-value")


def test_given_if_match_when_set_then_only_the_current_version_is_replaced(store: FakeSecretStore) -> None:
    _set(store)
    with pytest.raises(PreconditionFailed) as stale:
        _set(store, value="other", expected_version=7)
    assert (stale.value.status, stale.value.code) == (412, "version_mismatch")
    with pytest.raises(PreconditionFailed):
        _set(store, name="absent", expected_version=1)  # If-Match on nothing matches nothing
    with pytest.raises(PreconditionFailed):
        _set(store, name="absent", conditions=Conditions(if_match=True))  # not even `*`
    assert _set(store, value="other", expected_version=1)[0].version == 2
    assert _set(store, value="any", conditions=Conditions(if_match=True))[0].version == 3  # `*`


def test_given_a_secret_when_replaced_without_if_match_then_428_and_it_is_unchanged(store: FakeSecretStore) -> None:
    _set(store)
    before = dict(store.items)

    with pytest.raises(PreconditionRequired) as refused:
        _set(store, value="other", conditions=Conditions())

    assert (refused.value.status, refused.value.code) == (428, "precondition_required")
    assert "ETag" in refused.value.detail
    assert store.items == before


def test_given_if_none_match_any_when_set_then_it_only_creates(store: FakeSecretStore) -> None:
    assert _set(store, conditions=Conditions(if_none_match_any=True))[1] is True
    before = dict(store.items)

    with pytest.raises(PreconditionFailed) as refused:
        _set(store, value="other", conditions=Conditions(if_none_match_any=True))

    assert (refused.value.status, refused.value.code) == (412, "precondition_failed")
    assert store.items == before


def test_given_a_concurrent_change_when_set_then_409_concurrent_change(store: FakeSecretStore) -> None:
    class Racing(FakeSecretStore):
        def put_secret(self, before: Secret | None, after: Secret, ciphertext: bytes, actor: Actor) -> None:
            raise ConcurrentChange(after.name)

    with pytest.raises(Conflict) as lost:
        _set(Racing({"gw_1"}))
    assert lost.value.code == "concurrent_change"


@pytest.mark.parametrize(
    "name", ["", "Orders", "1token", "_token", "-token", "a" * 65, "a.b", "a/b", "a b", "ä", "../x", "a%2Fb"]
)
def test_given_a_name_that_is_not_a_secret_name_when_used_then_400_and_nothing_changes(
    store: FakeSecretStore, name: str
) -> None:
    for attempt in (
        lambda: _set(store, name=name),
        lambda: secrets.get_secret(store, "gw_1", name),
        lambda: secrets.delete_secret(store, "gw_1", name, ACTOR, None),
    ):
        with pytest.raises(BadRequest) as refused:
            attempt()
        assert refused.value.code == "invalid_secret_name"
    assert store.items == {}


def test_given_no_such_gateway_when_secrets_are_used_then_404_gateway_not_found(store: FakeSecretStore) -> None:
    for attempt in (
        lambda: _set(store, gateway_id="gw_missing"),
        lambda: secrets.list_secrets(store, "gw_missing"),
        lambda: secrets.get_secret(store, "gw_missing", "orders_token"),
        lambda: secrets.delete_secret(store, "gw_missing", "orders_token", ACTOR, None),
    ):
        with pytest.raises(NotFound) as missing:
            attempt()
        assert missing.value.code == "gateway_not_found"


def test_given_secrets_when_listed_then_by_name_without_values(store: FakeSecretStore) -> None:
    _set(store, name="zeta")
    _set(store, name="alpha")
    listed = secrets.list_secrets(store, "gw_1")
    assert [s.name for s in listed] == ["alpha", "zeta"]
    assert VALUE not in json.dumps([s.public() for s in listed])


def test_given_a_secret_when_deleted_then_gone_and_a_second_delete_is_404(store: FakeSecretStore) -> None:
    _set(store)
    with pytest.raises(PreconditionFailed):
        secrets.delete_secret(store, "gw_1", "orders_token", ACTOR, 9)
    secrets.delete_secret(store, "gw_1", "orders_token", ACTOR, 1)
    assert store.items == {}
    with pytest.raises(SecretNotFound) as gone:
        secrets.delete_secret(store, "gw_1", "orders_token", ACTOR, None)
    assert gone.value.status == 404


# -- routes refer to secrets -----------------------------------------------------------------------


def _gateways() -> tuple[FakeGatewayStore, str]:
    store = FakeGatewayStore()
    gateway = gateway_admin.create_gateway(store, gateway_spec(), ACTOR, NOW)
    return store, gateway.gateway_id


REFERRING: list[dict[str, Any]] = [
    {"request_transform": {"headers": {"add": {"Authorization": "Bearer {{ secrets.orders_token }}"}}}},
    {"request_transform": {"query": {"add": {"api_key": "{{ secrets.orders_token }}"}}}},
    {"request_transform": {"body": {"auth": {"password": "{{ secrets.orders_token }}"}}}, "method": "POST"},
    {
        "method": "POST",
        "protocol": "graphql",
        "graphql": {"query": "query { a }", "variables": {"key": "{{ secrets.orders_token | trim }}"}},
    },
]


def _referring(gateway_id: str, overrides: dict[str, Any]) -> RouteSpec:
    return RouteSpec.model_validate(
        {
            "gateway_id": gateway_id,
            "name": "orders",
            "method": "GET",
            "path": "/orders/{id}",
            "targets": [{"url": "https://upstream-a.example"}],
            **overrides,
        },
        context={"stored": True},  # no SSRF lookup of the example target
    )


@pytest.mark.parametrize("overrides", REFERRING)
def test_given_a_route_naming_a_secret_its_gateway_lacks_when_created_then_422_unknown_secret_and_nothing_stored(
    overrides: dict[str, Any],
) -> None:
    store, gateway_id = _gateways()
    spec = _referring(gateway_id, overrides)
    assert secrets.route_references(spec) == {"orders_token"}

    with pytest.raises(UnknownSecret) as refused:
        gateway_admin.create_route(store, spec, ACTOR, NOW)

    assert (refused.value.status, refused.value.code) == (422, "unknown_secret")
    assert refused.value.extensions == {"missing_secrets": ["orders_token"]}
    assert store.routes(gateway_id) == []


@pytest.mark.parametrize("overrides", REFERRING)
def test_given_the_secret_exists_when_the_route_is_created_updated_and_deployed_then_accepted(
    overrides: dict[str, Any],
) -> None:
    store, gateway_id = _gateways()
    store.secrets[gateway_id] = {"orders_token"}
    route = gateway_admin.create_route(store, _referring(gateway_id, overrides), ACTOR, NOW)
    gateway_admin.update_route(store, route.route_id, _referring(gateway_id, overrides), ACTOR, LATER, 1)
    deployed = gateway_admin.deploy(store, gateway_id, DeployRequest(), ACTOR, LATER)
    assert deployed.deployment.active_version == 1


def test_given_a_secret_on_another_gateway_when_a_route_names_it_then_422() -> None:
    store, gateway_id = _gateways()
    other = gateway_admin.create_gateway(store, gateway_spec(name="other", base_path="/other"), ACTOR, NOW)
    store.secrets[other.gateway_id] = {"orders_token"}
    with pytest.raises(UnknownSecret):
        gateway_admin.create_route(store, _referring(gateway_id, REFERRING[0]), ACTOR, NOW)


def test_given_a_route_whose_secret_was_deleted_when_updated_or_deployed_then_422_and_nothing_changes() -> None:
    store, gateway_id = _gateways()
    store.secrets[gateway_id] = {"orders_token"}
    route = gateway_admin.create_route(store, _referring(gateway_id, REFERRING[0]), ACTOR, NOW)
    store.secrets[gateway_id] = set()  # deleted since

    with pytest.raises(UnknownSecret):
        gateway_admin.update_route(store, route.route_id, _referring(gateway_id, REFERRING[0]), ACTOR, LATER, None)
    with pytest.raises(UnknownSecret):
        gateway_admin.deploy(store, gateway_id, DeployRequest(), ACTOR, LATER)
    assert store.versions == {}
    assert gateway_admin.get_gateway(store, gateway_id).deployment.latest_version == 0
    assert store.route(route.route_id) == route


def test_given_only_an_inactive_route_lacks_its_secret_when_deployed_then_it_deploys() -> None:
    store, gateway_id = _gateways()
    store.secrets[gateway_id] = {"orders_token"}
    gateway_admin.create_route(store, _referring(gateway_id, {**REFERRING[0], "active": False}), ACTOR, NOW)
    gateway_admin.create_route(store, route_spec(gateway_id, path="/plain"), ACTOR, NOW)
    store.secrets[gateway_id] = set()
    assert gateway_admin.deploy(store, gateway_id, DeployRequest(), ACTOR, LATER).deployment.active_version == 1
