"""Client rules (functions/routes/logic/clients.py) against an in-memory ClientStore."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.routes.logic import clients
from functions.routes.logic.catalog import RateLimits
from functions.routes.logic.clients import Client, ClientSpec, ConcurrentChange, DuplicateName
from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.errors import Conflict, NotFound, ValidationFailed
from gateway_core.secrets_hashing import verify_secret

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
ACTOR = Actor("admin-1", "api_key", "k1", "req-1")


class FakeClientStore:
    """ClientStore in memory, with the real store's guarantees: unique names (case-insensitive)
    and writes conditional on the version read."""

    def __init__(self) -> None:
        self.items: dict[str, Client] = {}
        self.events: list[tuple[str, str]] = []  # (action, client_id), one per successful write
        self.before_write: Callable[[], None] | None = None  # lets a test act as a concurrent admin

    def _name_taken(self, name: str, by_other_than: str) -> bool:
        return any(c.name.lower() == name.lower() and c.client_id != by_other_than for c in self.items.values())

    def _interleave(self) -> None:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()

    def _check_version(self, client: Client) -> None:
        current = self.items.get(client.client_id)
        if current is None or current.version != client.version:
            raise ConcurrentChange(client.client_id)

    def create(self, client: Client, actor: Actor) -> None:
        if client.client_id in self.items or self._name_taken(client.name, client.client_id):
            raise DuplicateName(client.name)
        self.items[client.client_id] = client
        self.events.append(("client.register", client.client_id))

    def get(self, client_id: str) -> Client | None:
        return self.items.get(client_id)

    def list(self, status: str | None, limit: int, cursor: str | None) -> tuple[list[Client], str | None]:
        matching = sorted(
            (c for c in self.items.values() if status in (None, c.status)),
            key=lambda c: (c.created_at, c.client_id),
            reverse=True,
        )
        start = int(cursor or 0)
        end = start + limit
        return matching[start:end], str(end) if end < len(matching) else None

    def replace(self, before: Client, after: Client, action: str, actor: Actor) -> None:
        self._interleave()
        self._check_version(before)
        if self._name_taken(after.name, after.client_id):
            raise DuplicateName(after.name)
        self.items[after.client_id] = after
        self.events.append((action, after.client_id))

    def delete(self, client: Client, actor: Actor) -> None:
        self._interleave()
        self._check_version(client)
        del self.items[client.client_id]
        self.events.append(("client.delete", client.client_id))


def _spec(**overrides: Any) -> ClientSpec:
    values: dict[str, Any] = {
        "name": "Acme Treasury",
        "client_type": "integration",
        "contact_email": "ops@acme.example",
        "allowed_scopes": ["data:read"],
    }
    values.update(overrides)
    return ClientSpec(**values)


def _register(store: FakeClientStore, **overrides: Any) -> tuple[Client, str]:
    return clients.register(store, _spec(**overrides), ACTOR, NOW, "test")


@pytest.fixture
def store() -> FakeClientStore:
    return FakeClientStore()


def _assert_validation(error: pytest.ExceptionInfo[ValidationFailed], code: str) -> None:
    assert error.value.code == code
    assert error.value.status == 422


# --- register ------------------------------------------------------------------------------------


def test_given_a_valid_spec_when_registering_then_an_active_client_with_a_hashed_secret_is_stored(
    store: FakeClientStore,
) -> None:
    # When
    client, secret = _register(store)

    # Then
    assert client.client_id.startswith("cl_")
    assert len(client.client_id) > len("cl_")
    assert client.status == "active"
    assert client.version == 1
    assert client.created_at == client.updated_at == iso(NOW)
    assert secret.startswith("gs_test_")
    assert len(secret) > len("gs_test_") + 20
    assert verify_secret(secret, client.secret_hash)
    assert secret not in client.secret_hash
    assert store.items == {client.client_id: client}
    assert store.events == [("client.register", client.client_id)]


def test_given_the_live_environment_when_registering_then_the_secret_says_live(store: FakeClientStore) -> None:
    _, secret = clients.register(store, _spec(), ACTOR, NOW, "live")

    assert secret.startswith("gs_live_")


def test_given_two_registrations_when_compared_then_ids_and_secrets_differ(store: FakeClientStore) -> None:
    first, first_secret = _register(store, name="One")
    second, second_secret = _register(store, name="Two")

    assert first.client_id != second.client_id
    assert first_secret != second_secret
    assert not verify_secret(first_secret, second.secret_hash)


def test_given_a_free_client_without_overrides_when_shown_then_tier_defaults_and_no_secret_hash(
    store: FakeClientStore,
) -> None:
    client, secret = _register(store, tier="free")

    public = client.public()

    assert "secret_hash" not in public
    assert secret not in repr(public)
    assert client.secret_hash not in repr(public)
    assert public["rate_limits"] == {"per_minute": 60, "per_hour": 1000, "per_day": 10000}
    assert public["monthly_quota"] == 100000
    assert public["rate_limits_overridden"] is False
    assert client.rate_limits is None  # stored as "the tier's defaults", not a copy of them


def test_given_overrides_when_shown_then_they_replace_the_tier_defaults(store: FakeClientStore) -> None:
    client, _ = _register(store, tier="free", rate_limits=RateLimits(5, 50, 500), monthly_quota=42)

    public = client.public()

    assert public["rate_limits"] == {"per_minute": 5, "per_hour": 50, "per_day": 500}
    assert public["rate_limits_overridden"] is True
    assert public["monthly_quota"] == 42


def test_given_an_enterprise_client_when_shown_then_there_is_no_monthly_cap(store: FakeClientStore) -> None:
    client, _ = _register(store, tier="enterprise")

    assert client.public()["monthly_quota"] is None
    assert client.public()["rate_limits"]["per_minute"] == 10000


def test_given_repeated_and_padded_values_when_registering_then_they_are_normalized(
    store: FakeClientStore,
) -> None:
    client, _ = _register(
        store,
        name="  Acme  ",
        allowed_scopes=["data:read", "banking:read", "data:read"],
        allowed_endpoints=["/api/v1/prices", "/api/v1/accounts/{id}", "/api/v1/prices"],
    )

    assert client.name == "Acme"
    assert client.allowed_scopes == ["banking:read", "data:read"]
    assert client.allowed_endpoints == ["/api/v1/accounts/{id}", "/api/v1/prices"]


# --- validation ----------------------------------------------------------------------------------


def test_given_unknown_scopes_when_registering_then_422_unknown_scope_lists_them_and_nothing_is_stored(
    store: FakeClientStore,
) -> None:
    with pytest.raises(ValidationFailed) as error:
        _register(store, allowed_scopes=["data:read", "payments:everything", "admin:all"])

    _assert_validation(error, "unknown_scope")
    assert error.value.extensions == {"unknown": ["admin:all", "payments:everything"]}
    assert store.items == {}
    assert store.events == []


@pytest.mark.parametrize("cidr", ["10.0.0.1/33", "not-a-network", "2001:db8::g/32", "300.1.1.1/8", ""])
def test_given_a_malformed_cidr_when_registering_then_422_invalid_cidr(store: FakeClientStore, cidr: str) -> None:
    with pytest.raises(ValidationFailed) as error:
        _register(store, ip_allowlist=["192.168.0.0/16", cidr])

    _assert_validation(error, "invalid_cidr")
    assert store.items == {}


def test_given_cidrs_with_host_bits_and_repeats_when_registering_then_they_are_normalized_and_deduplicated(
    store: FakeClientStore,
) -> None:
    client, _ = _register(
        store,
        ip_allowlist=["10.0.0.1/8", "10.0.0.0/8", " 192.168.1.7/24 ", "2001:db8::1/32", "2001:DB8::/32", "203.0.113.9"],
    )

    assert client.ip_allowlist == ["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "203.0.113.9/32"]


@pytest.mark.parametrize("email", ["no-at-sign", "a@b", "a b@c.example", "@c.example", ""])
def test_given_a_bad_email_when_registering_then_422_invalid_email(store: FakeClientStore, email: str) -> None:
    with pytest.raises(ValidationFailed) as error:
        _register(store, contact_email=email)

    _assert_validation(error, "invalid_email")
    assert store.items == {}


@pytest.mark.parametrize("endpoint", ["api/v1/prices", "https://evil.example/api", " /api", "/api v1"])
def test_given_an_endpoint_not_a_path_when_registering_then_422_invalid_endpoint(
    store: FakeClientStore, endpoint: str
) -> None:
    with pytest.raises(ValidationFailed) as error:
        _register(store, allowed_endpoints=["/api/v1/ok", endpoint])

    _assert_validation(error, "invalid_endpoint")
    assert store.items == {}


def test_given_an_unknown_tier_when_registering_then_422_unknown_tier(store: FakeClientStore) -> None:
    with pytest.raises(ValidationFailed) as error:
        _register(store, tier="platinum")

    _assert_validation(error, "unknown_tier")
    assert store.items == {}


@pytest.mark.parametrize(
    "limits",
    [RateLimits(100, 50, 1000), RateLimits(10, 2000, 1000), RateLimits(0, 10, 100), RateLimits(-1, 10, 100)],
    ids=["minute-above-hour", "hour-above-day", "zero", "negative"],
)
def test_given_rate_limits_out_of_order_when_registering_then_422_invalid_limits(
    store: FakeClientStore, limits: RateLimits
) -> None:
    with pytest.raises(ValidationFailed) as error:
        _register(store, rate_limits=limits)

    _assert_validation(error, "invalid_limits")
    assert store.items == {}


def test_given_equal_rate_limits_when_registering_then_they_are_accepted(store: FakeClientStore) -> None:
    client, _ = _register(store, rate_limits=RateLimits(100, 100, 100))

    assert client.rate_limits == RateLimits(100, 100, 100)


@pytest.mark.parametrize("quota", [0, -5])
def test_given_a_non_positive_quota_when_registering_then_422_invalid_quota(store: FakeClientStore, quota: int) -> None:
    with pytest.raises(ValidationFailed) as error:
        _register(store, monthly_quota=quota)

    _assert_validation(error, "invalid_quota")


@pytest.mark.parametrize(
    "expires_at",
    [iso(NOW - timedelta(seconds=1)), iso(NOW), "2020-01-01T00:00:00Z", "tomorrow", "2027-13-01T00:00:00Z"],
    ids=["just-past", "now", "long-past", "words", "month-13"],
)
def test_given_an_expiry_in_the_past_or_malformed_when_registering_then_422_invalid_expiry(
    store: FakeClientStore, expires_at: str
) -> None:
    with pytest.raises(ValidationFailed) as error:
        _register(store, expires_at=expires_at)

    _assert_validation(error, "invalid_expiry")
    assert store.items == {}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2027-01-01T00:00:00+02:00", "2026-12-31T22:00:00.000Z"),
        ("2027-01-01T00:00:00", "2027-01-01T00:00:00.000Z"),
        ("2027-01-01T00:00:00Z", "2027-01-01T00:00:00.000Z"),
    ],
    ids=["offset", "naive-is-utc", "zulu"],
)
def test_given_a_future_expiry_when_registering_then_it_is_stored_as_utc_iso(
    store: FakeClientStore, given: str, stored: str
) -> None:
    client, _ = _register(store, expires_at=given)

    assert client.expires_at == stored


@pytest.mark.parametrize("name", ["", "   ", "x" * 256])
def test_given_a_blank_or_overlong_name_when_registering_then_422_invalid_name(
    store: FakeClientStore, name: str
) -> None:
    with pytest.raises(ValidationFailed) as error:
        _register(store, name=name)

    _assert_validation(error, "invalid_name")


def test_given_a_taken_name_when_registering_then_409_duplicate_name_and_the_store_is_unchanged(
    store: FakeClientStore,
) -> None:
    # Given
    first, _ = _register(store, name="Acme")
    snapshot = dict(store.items)

    # When
    with pytest.raises(Conflict) as error:
        _register(store, name="Acme")

    # Then
    assert error.value.code == "duplicate_name"
    assert error.value.status == 409
    assert store.items == snapshot == {first.client_id: first}
    assert store.events == [("client.register", first.client_id)]


# --- update --------------------------------------------------------------------------------------


def test_given_a_client_when_updating_some_fields_then_only_those_change_and_the_version_is_bumped(
    store: FakeClientStore,
) -> None:
    # Given
    before, secret = _register(store, ip_allowlist=["203.0.113.0/24"], expires_at="2027-06-01T00:00:00Z")

    # When
    after = clients.update(
        store,
        before.client_id,
        {"description": "Treasury sync", "tier": "professional", "allowed_scopes": ["banking:read", "data:read"]},
        ACTOR,
        LATER,
        None,
    )

    # Then
    assert after.description == "Treasury sync"
    assert after.tier == "professional"
    assert after.allowed_scopes == ["banking:read", "data:read"]
    assert after.version == before.version + 1
    assert after.updated_at == iso(LATER)
    assert after.created_at == before.created_at
    unchanged = {"description", "tier", "allowed_scopes", "version", "updated_at"}
    for name in Client.__dataclass_fields__:
        if name not in unchanged:
            assert getattr(after, name) == getattr(before, name), name
    assert verify_secret(secret, after.secret_hash)
    assert store.items[before.client_id] == after
    assert store.events[-1] == ("client.update", before.client_id)


def test_given_overridden_limits_when_updating_them_to_none_then_the_tier_defaults_apply_again(
    store: FakeClientStore,
) -> None:
    before, _ = _register(store, tier="basic", rate_limits=RateLimits(1, 2, 3), monthly_quota=7)

    after = clients.update(store, before.client_id, {"rate_limits": None, "monthly_quota": None}, ACTOR, LATER, None)

    assert after.public()["rate_limits_overridden"] is False
    assert after.public()["rate_limits"] == {"per_minute": 300, "per_hour": 10000, "per_day": 100000}
    assert after.public()["monthly_quota"] == 1_000_000


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"allowed_scopes": ["data:read", "nope"]}, "unknown_scope"),
        ({"ip_allowlist": ["10.0.0.0/40"]}, "invalid_cidr"),
        ({"contact_email": "broken"}, "invalid_email"),
        ({"allowed_endpoints": ["no-slash"]}, "invalid_endpoint"),
        ({"tier": "gold"}, "unknown_tier"),
        ({"rate_limits": RateLimits(10, 5, 100)}, "invalid_limits"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "invalid_expiry"),
        ({"name": " "}, "invalid_name"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_given_an_invalid_value_when_updating_then_422_and_nothing_changes(
    store: FakeClientStore, changes: dict[str, Any], code: str
) -> None:
    # Given
    before, _ = _register(store, description="original")

    # When
    with pytest.raises(ValidationFailed) as error:
        clients.update(store, before.client_id, changes, ACTOR, LATER, None)

    # Then
    _assert_validation(error, code)
    assert store.items[before.client_id] == before
    assert store.events == [("client.register", before.client_id)]


def test_given_another_clients_name_when_renaming_then_409_duplicate_name_and_nothing_changes(
    store: FakeClientStore,
) -> None:
    _register(store, name="Taken")
    before, _ = _register(store, name="Mine")

    with pytest.raises(Conflict) as error:
        clients.update(store, before.client_id, {"name": "TAKEN"}, ACTOR, LATER, None)

    assert error.value.code == "duplicate_name"
    assert store.items[before.client_id] == before


# --- status and secret ---------------------------------------------------------------------------


def test_given_an_active_client_when_suspended_then_reactivated_then_status_and_version_follow(
    store: FakeClientStore,
) -> None:
    client, _ = _register(store)

    suspended = clients.set_status(store, client.client_id, "suspended", ACTOR, LATER)
    reactivated = clients.set_status(store, client.client_id, "active", ACTOR, LATER + timedelta(seconds=1))

    assert (suspended.status, suspended.version) == ("suspended", 2)
    assert suspended.updated_at == iso(LATER)
    assert (reactivated.status, reactivated.version) == ("active", 3)
    assert store.items[client.client_id] == reactivated
    assert [action for action, _ in store.events] == ["client.register", "client.suspend", "client.reactivate"]


def test_given_a_suspended_client_when_suspended_again_then_nothing_changes(store: FakeClientStore) -> None:
    # Given
    client, _ = _register(store)
    first = clients.set_status(store, client.client_id, "suspended", ACTOR, LATER)

    # When
    second = clients.set_status(store, client.client_id, "suspended", ACTOR, LATER + timedelta(hours=1))

    # Then
    assert second == first
    assert second.version == 2
    assert store.items[client.client_id] == first
    assert [action for action, _ in store.events] == ["client.register", "client.suspend"]


def test_given_an_active_client_when_reactivated_then_nothing_changes(store: FakeClientStore) -> None:
    client, _ = _register(store)

    again = clients.set_status(store, client.client_id, "active", ACTOR, LATER)

    assert again == client
    assert store.events == [("client.register", client.client_id)]


def test_given_a_client_when_rotating_its_secret_then_only_the_new_secret_verifies(store: FakeClientStore) -> None:
    # Given
    before, old_secret = _register(store)

    # When
    after, new_secret = clients.rotate_secret(store, before.client_id, ACTOR, LATER, "test")

    # Then: a new secret, and the old one kept (hashed) for the default grace of 24 h
    assert new_secret != old_secret
    assert new_secret.startswith("gs_test_")
    assert verify_secret(new_secret, after.secret_hash)
    assert not verify_secret(old_secret, after.secret_hash)
    assert after.previous_secret_hash == before.secret_hash
    assert after.grace_until == iso(LATER + timedelta(hours=24))
    assert new_secret not in after.secret_hash
    assert after.version == before.version + 1
    assert after.updated_at == iso(LATER)
    assert after.public() == {
        **before.public(),
        "version": 2,
        "updated_at": iso(LATER),
        "grace_until": iso(LATER + timedelta(hours=24)),
    }
    assert "previous_secret_hash" not in after.public()
    assert store.items[before.client_id] == after
    assert store.events[-1] == ("client.secret.rotate", before.client_id)


@pytest.mark.parametrize("grace", [timedelta(0), timedelta(seconds=1), timedelta(hours=1), timedelta(days=30)])
def test_given_a_grace_when_rotating_the_secret_then_the_previous_one_is_kept_exactly_that_long(
    store: FakeClientStore, grace: timedelta
) -> None:
    before, _ = _register(store)

    after, _ = clients.rotate_secret(store, before.client_id, ACTOR, LATER, "test", grace)

    if grace:
        assert (after.previous_secret_hash, after.grace_until) == (before.secret_hash, iso(LATER + grace))
    else:  # no grace: the old secret is gone at once
        assert (after.previous_secret_hash, after.grace_until) == (None, None)


@pytest.mark.parametrize("grace", [timedelta(seconds=-1), timedelta(days=30, seconds=1), timedelta(days=365)])
def test_given_a_grace_out_of_range_when_rotating_then_422_invalid_grace_and_nothing_changes(
    store: FakeClientStore, grace: timedelta
) -> None:
    before, _ = _register(store)

    with pytest.raises(ValidationFailed) as error:
        clients.rotate_secret(store, before.client_id, ACTOR, LATER, "test", grace)

    _assert_validation(error, "invalid_grace")
    assert store.items[before.client_id] == before


def test_given_a_rotation_in_grace_when_rotating_again_then_only_the_secret_just_replaced_stays_valid(
    store: FakeClientStore,
) -> None:
    # Given: a first rotation whose grace has not ended
    before, first = _register(store)
    middle, second = clients.rotate_secret(store, before.client_id, ACTOR, LATER, "test")

    # When: rotated again
    after, third = clients.rotate_secret(store, before.client_id, ACTOR, LATER + timedelta(minutes=1), "test")

    # Then: at most two secrets work: the newest and the one it replaced, never the first
    assert verify_secret(third, after.secret_hash)
    assert after.previous_secret_hash == middle.secret_hash
    assert after.previous_secret_hash is not None
    assert verify_secret(second, after.previous_secret_hash)
    assert not verify_secret(first, after.previous_secret_hash)


def test_given_a_client_when_deleted_then_it_is_gone(store: FakeClientStore) -> None:
    client, _ = _register(store)

    clients.delete(store, client.client_id, ACTOR)

    assert store.items == {}
    assert store.events[-1] == ("client.delete", client.client_id)
    with pytest.raises(NotFound):
        clients.get(store, client.client_id)


def test_given_a_client_when_read_then_it_is_returned(store: FakeClientStore) -> None:
    client, _ = _register(store)

    assert clients.get(store, client.client_id) == client


# --- unknown ids and concurrent changes ----------------------------------------------------------

Operation = Callable[[FakeClientStore, str], object]
OPERATIONS: dict[str, Operation] = {
    "get": lambda s, cid: clients.get(s, cid),
    "delete": lambda s, cid: clients.delete(s, cid, ACTOR),
    "update": lambda s, cid: clients.update(s, cid, {"description": "x"}, ACTOR, LATER, None),
    "suspend": lambda s, cid: clients.set_status(s, cid, "suspended", ACTOR, LATER),
    "rotate": lambda s, cid: clients.rotate_secret(s, cid, ACTOR, LATER, "test"),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_given_an_unknown_id_when_operating_then_404_client_not_found(store: FakeClientStore, operation: str) -> None:
    # Given another client exists, so the store is not simply empty
    other, _ = _register(store)

    # When
    with pytest.raises(NotFound) as error:
        OPERATIONS[operation](store, "cl_missing")

    # Then
    assert error.value.code == "client_not_found"
    assert error.value.status == 404
    assert store.items == {other.client_id: other}


@pytest.mark.parametrize("operation", ["delete", "update", "suspend", "rotate"])
def test_given_a_concurrent_change_when_writing_then_409_concurrent_change_and_the_other_write_stands(
    store: FakeClientStore, operation: str
) -> None:
    # Given another admin changes the client between our read and our write
    client, _ = _register(store)
    theirs = replace(client, description="changed by someone else", version=client.version + 1)

    def other_admin() -> None:
        store.items[client.client_id] = theirs

    store.before_write = other_admin

    # When
    with pytest.raises(Conflict) as error:
        OPERATIONS[operation](store, client.client_id)

    # Then
    assert error.value.code == "concurrent_change"
    assert error.value.status == 409
    assert store.items[client.client_id] == theirs
    assert store.events == [("client.register", client.client_id)]


def test_given_an_expired_client_when_updating_other_fields_then_the_update_is_allowed(store: FakeClientStore) -> None:
    # Given a client whose expiry has passed since registration
    client, _ = _register(store, expires_at=iso(NOW + timedelta(days=1)))
    later = NOW + timedelta(days=2)
    # When an admin changes its description, Then that works and the expiry stays as it was
    updated = clients.update(store, client.client_id, {"description": "renewal pending"}, ACTOR, later, None)
    assert updated.description == "renewal pending"
    assert updated.expires_at == client.expires_at
    # But setting a new expiry in the past is still refused
    with pytest.raises(ValidationFailed) as refused:
        clients.update(store, client.client_id, {"expires_at": iso(NOW)}, ACTOR, later, None)
    assert refused.value.code == "invalid_expiry"


def test_given_null_for_a_required_field_when_updating_then_422_null_not_allowed(store: FakeClientStore) -> None:
    client, _ = _register(store)
    with pytest.raises(ValidationFailed) as refused:
        clients.update(store, client.client_id, {"name": None, "allowed_scopes": None}, ACTOR, NOW, None)
    assert refused.value.code == "null_not_allowed"
    assert store.items[client.client_id] == client
