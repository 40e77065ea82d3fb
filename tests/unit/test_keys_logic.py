"""API key rules (functions/routes/logic/keys.py) against in-memory stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from functions.routes.logic import keys
from functions.routes.logic.catalog import RateLimits
from functions.routes.logic.clients import Client, ConcurrentChange
from functions.routes.logic.keys import ApiKey
from gateway_core.audit import Actor
from gateway_core.credentials import hash_api_key
from gateway_core.errors import Conflict, NotFound, ValidationFailed
from tests.unit.factories import make_client

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ACTOR = Actor("admin", "api_key", "k0", "req-1")


def _client(**overrides: object) -> Client:
    return make_client(**{"ip_allowlist": ["203.0.113.0/24"], **overrides})


class Clients:
    def __init__(self, *clients: Client) -> None:
        self.items = {c.client_id: c for c in clients}

    def get(self, client_id: str) -> Client | None:
        return self.items.get(client_id)

    def create(self, client: Client, actor: Actor) -> None:
        self.items[client.client_id] = client

    def list(self, status: str | None, limit: int, cursor: str | None) -> tuple[list[Client], str | None]:
        return [c for c in self.items.values() if status in (None, c.status)][:limit], None

    def replace(self, before: Client, after: Client, action: str, actor: Actor) -> None:
        self.items[after.client_id] = after

    def delete(self, client: Client, actor: Actor) -> None:
        del self.items[client.client_id]


class Keys:
    def __init__(self) -> None:
        self.items: dict[str, ApiKey] = {}
        self.actions: list[str] = []

    def create(self, key: ApiKey, actor: Actor) -> None:
        self.items[key.key_id] = key
        self.actions.append("key.create")

    def get(self, key_id: str) -> ApiKey | None:
        return self.items.get(key_id)

    def replace(self, before: ApiKey, after: ApiKey, action: str, actor: Actor) -> None:
        if self.items[before.key_id].version != before.version:
            raise ConcurrentChange(before.key_id)
        self.items[after.key_id] = after
        self.actions.append(action)

    def rotate(self, before: ApiKey, after: ApiKey, new_key: ApiKey, actor: Actor) -> None:
        self.replace(before, after, "key.rotate", actor)
        self.create(new_key, actor)

    def list_for_client(self, client_id: str, limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]:
        return [k for k in self.items.values() if k.client_id == client_id][:limit], None

    def sync_client(self, client: Client, status: str | None = None) -> int:
        mine = [k for k in self.items.values() if k.client_id == client.client_id]
        for key in mine:
            self.items[key.key_id] = replace(key, client_status=status or client.status, tier=client.tier)
        return len(mine)


def _create(store: Keys, clients: Clients, **overrides: object) -> tuple[ApiKey, str]:
    arguments: dict[str, object] = {
        "client_id": "cl_1",
        "name": "k",
        "scopes": None,
        "expires_at": None,
        "rate_limits": None,
        "actor": ACTOR,
        "now": NOW,
        "environment": "test",
    }
    arguments.update(overrides)
    return keys.create(store, clients, **arguments)  # type: ignore[arg-type]


def test_a_new_key_is_shown_once_stored_hashed_and_copies_its_client() -> None:
    store = Keys()
    key, secret = _create(store, Clients(_client()))
    assert secret.startswith("gk_test_")
    assert len(secret) - len("gk_test_") >= 43
    assert key.key_hash == hash_api_key(secret)
    assert secret not in repr(key.public())
    assert (key.prefix, key.last_four) == ("gk_test_", secret[-4:])
    assert key.scopes == ["banking:read", "data:read"]
    assert (key.tier, key.client_status, key.ip_allowlist) == ("basic", "active", ["203.0.113.0/24"])
    assert "key_hash" not in key.public()


def test_keys_are_issued_only_within_the_clients_scopes_to_active_clients() -> None:
    store = Keys()
    with pytest.raises(ValidationFailed) as outside:
        _create(store, Clients(_client()), scopes=["admin"])
    assert outside.value.code == "scope_not_allowed"
    with pytest.raises(Conflict) as suspended:
        _create(store, Clients(_client(status="suspended")))
    assert suspended.value.code == "client_not_active"
    with pytest.raises(NotFound):
        _create(store, Clients())
    with pytest.raises(ValidationFailed):
        _create(store, Clients(_client()), expires_at="2020-01-01T00:00:00Z")
    with pytest.raises(ValidationFailed):
        _create(store, Clients(_client()), rate_limits=RateLimits(100, 10, 1000))
    assert store.items == {}


def test_rotation_keeps_the_old_key_for_the_grace_and_links_the_new_one() -> None:
    store, clients = Keys(), Clients(_client())
    old, _ = _create(store, clients)
    new, secret, retired = keys.rotate(store, clients, old.key_id, None, ACTOR, NOW, "test")
    assert retired.grace_until == "2026-11-23T12:00:00.000Z"
    assert retired.rotated_to == new.key_id
    assert new.key_hash == hash_api_key(secret)
    assert new.scopes == old.scopes
    with pytest.raises(Conflict) as again:
        keys.rotate(store, clients, old.key_id, None, ACTOR, NOW, "test")
    assert again.value.code == "key_already_rotated"
    with pytest.raises(ValidationFailed):
        keys.rotate(store, clients, new.key_id, timedelta(days=31), ACTOR, NOW, "test")


def test_revocation_is_idempotent_and_final() -> None:
    store, clients = Keys(), Clients(_client())
    key, _ = _create(store, clients)
    first = keys.revoke(store, key.key_id, ACTOR, NOW)
    second = keys.revoke(store, key.key_id, ACTOR, NOW + timedelta(minutes=1))
    assert first == second
    assert first.status == "revoked"
    assert store.actions.count("key.revoke") == 1
    for change in (
        lambda: keys.update(store, clients, key.key_id, {"name": "x"}, ACTOR, NOW, None),
        lambda: keys.rotate(store, clients, key.key_id, None, ACTOR, NOW, "test"),
    ):
        with pytest.raises(Conflict):
            change()


def test_update_narrows_scopes_within_the_client_and_detects_concurrent_changes() -> None:
    store, clients = Keys(), Clients(_client())
    key, _ = _create(store, clients)
    narrowed = keys.update(store, clients, key.key_id, {"scopes": ["data:read"]}, ACTOR, NOW, None)
    assert (narrowed.scopes, narrowed.version) == (["data:read"], 2)
    with pytest.raises(ValidationFailed):
        keys.update(store, clients, key.key_id, {"scopes": ["payments:write"]}, ACTOR, NOW, None)
    store.items[key.key_id] = replace(store.items[key.key_id], version=9)  # someone else wrote meanwhile
    with pytest.raises(Conflict) as raced:
        keys._save(store, narrowed, replace(narrowed, name="y"), "key.update", ACTOR)
    assert raced.value.code == "concurrent_change"


def test_sync_client_copies_suspension_and_deletion_onto_keys() -> None:
    store, clients = Keys(), Clients(_client())
    key, _ = _create(store, clients)
    assert keys.sync_client(store, _client(status="suspended", tier="enterprise")) == 1
    assert (store.items[key.key_id].client_status, store.items[key.key_id].tier) == ("suspended", "enterprise")
    keys.sync_client(store, _client(), deleted=True)
    assert store.items[key.key_id].client_status == "deleted"


def test_a_listed_key_shows_what_it_is_good_for_now_not_only_what_is_stored() -> None:
    store, clients = Keys(), Clients(_client())
    expiring, _ = _create(store, clients, expires_at=(NOW + timedelta(hours=1)).isoformat())
    rotated, _ = _create(store, clients)
    _, _, old = keys.rotate(store, clients, rotated.key_id, timedelta(minutes=5), ACTOR, NOW, "test")
    revoked = keys.revoke(store, expiring.key_id, ACTOR, NOW + timedelta(hours=2))
    # Stored: all three still say "active" until revoked; shown: what the authorizer decides.
    assert (expiring.shown_at(NOW)["status"], expiring.shown_at(NOW + timedelta(hours=1))["status"]) == (
        "active",
        "expired",
    )
    assert old.status == "active"
    assert old.shown_at(NOW + timedelta(minutes=4))["status"] == "active"  # within its grace
    assert old.shown_at(NOW + timedelta(minutes=5))["status"] == "rotated"
    assert revoked.shown_at(NOW + timedelta(hours=2))["status"] == "revoked"
