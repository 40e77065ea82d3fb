"""DynamoClientStore and DynamoAuditReader against moto's DynamoDB (functions/routes/dal)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest

from functions.routes.dal.audit_store import DynamoAuditReader
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.logic.catalog import RateLimits
from functions.routes.logic.clients import Client, ConcurrentChange, DuplicateName
from gateway_core.audit import Actor, state_hash
from gateway_core.clock import iso, utc_now
from gateway_core.errors import BadRequest
from gateway_core.pagination import encode_cursor
from gateway_core.secrets_hashing import generate_client_secret, hash_secret
from tests.integration.conftest import create_data_table, table_items
from tests.integration.helpers import REGION

TABLE = "gateway-data-clients"
ACTOR = Actor("admin-1", "api_key", "k1", "req-store-1")
SECRET = generate_client_secret("test")
SECRET_HASH = hash_secret(SECRET)


@pytest.fixture
def dynamodb(aws: None) -> Any:
    create_data_table(TABLE)
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def store(dynamodb: Any) -> DynamoClientStore:
    return DynamoClientStore(dynamodb, TABLE)


@pytest.fixture
def reader(dynamodb: Any) -> DynamoAuditReader:
    return DynamoAuditReader(dynamodb, TABLE)


def _client(**overrides: Any) -> Client:
    values: dict[str, Any] = {
        "client_id": "cl_" + "a" * 32,
        "name": "Acme",
        "description": "",
        "client_type": "integration",
        "organization": "",
        "contact_email": "ops@acme.example",
        "allowed_scopes": ["data:read"],
        "allowed_endpoints": [],
        "ip_allowlist": [],
        "tier": "free",
        "rate_limits": None,
        "monthly_quota": None,
        "expires_at": None,
        "status": "active",
        "created_at": "2026-11-22T12:00:00.000Z",
        "updated_at": "2026-11-22T12:00:00.000Z",
        "version": 1,
        "secret_hash": SECRET_HASH,
    }
    values.update(overrides)
    return Client(**values)


def _bumped(client: Client, **changes: Any) -> Client:
    return replace(client, **changes, version=client.version + 1, updated_at="2026-11-22T13:00:00.000Z")


def _scan(dynamodb: Any) -> list[dict[str, Any]]:
    return table_items(dynamodb, TABLE)


def _audit_items(dynamodb: Any) -> list[dict[str, Any]]:
    """Audit events of today (UTC) straight from the table, oldest first."""
    day = iso(utc_now())[:10]
    page = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"AUDIT#{day}"}},
        ConsistentRead=True,
    )
    return list(page["Items"])


def _next_millisecond() -> None:
    """Events are ordered by millisecond stamps: make the next write's stamp strictly later."""
    start = iso(utc_now())
    while iso(utc_now()) == start:
        pass


# --- round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "description": "Treasury sync",
            "client_type": "webhook",
            "organization": "Acme Corp",
            "allowed_scopes": ["banking:read", "data:read", "payments:write"],
            "allowed_endpoints": ["/api/v1/accounts/{id}", "/api/v1/prices"],
            "ip_allowlist": ["10.0.0.0/8", "2001:db8::/32"],
            "tier": "professional",
            "rate_limits": RateLimits(5, 50, 500),
            "monthly_quota": 1234,
            "expires_at": "2027-01-01T00:00:00.000Z",
            "status": "suspended",
            "version": 7,
        },
    ],
    ids=["defaults-and-empties", "every-field-set"],
)
def test_given_a_client_when_created_then_get_returns_every_field_unchanged(
    store: DynamoClientStore, overrides: dict[str, Any]
) -> None:
    # Given
    client = _client(**overrides)

    # When
    store.create(client, ACTOR)
    loaded = store.get(client.client_id)

    # Then
    assert loaded == client
    assert loaded is not None
    assert isinstance(loaded.version, int)
    assert loaded.monthly_quota is None or isinstance(loaded.monthly_quota, int)
    assert loaded.rate_limits is None or isinstance(loaded.rate_limits.per_minute, int)


def test_given_no_such_client_when_read_then_none(store: DynamoClientStore) -> None:
    store.create(_client(), ACTOR)

    assert store.get("cl_missing") is None


# --- audit events --------------------------------------------------------------------------------


def test_given_a_new_client_when_created_then_one_audit_event_with_only_an_after_hash(
    store: DynamoClientStore, dynamodb: Any
) -> None:
    # Given
    client = _client()

    # When
    store.create(client, ACTOR)

    # Then
    events = _audit_items(dynamodb)
    assert len(events) == 1
    event = events[0]
    assert event["action"] == {"S": "client.register"}
    assert event["target"] == {"S": f"client/{client.client_id}"}
    assert event["actor"] == {"S": "admin-1"}
    assert event["actor_credential"] == {"S": "api_key:k1"}
    assert event["request_id"] == {"S": "req-store-1"}
    assert event["after_hash"] == {"S": state_hash(client.public())}
    assert "before_hash" not in event
    assert event["GSI1PK"] == {"S": f"AUDIT#TARGET#client/{client.client_id}"}
    assert int(event["ttl"]["N"]) > 0
    # the client, its name guard and the event: nothing else
    assert len(_scan(dynamodb)) == 3


def test_given_a_client_when_replaced_then_one_more_event_with_both_hashes(
    store: DynamoClientStore, dynamodb: Any
) -> None:
    # Given
    before = _client()
    store.create(before, ACTOR)
    after = _bumped(before, description="changed")

    # When
    store.replace(before, after, "client.update", Actor("admin-2", "oauth", "tok-9", "req-store-2"))

    # Then
    assert store.get(before.client_id) == after
    events = _audit_items(dynamodb)
    assert len(events) == 2
    update = next(e for e in events if e["action"]["S"] == "client.update")
    assert update["target"] == {"S": f"client/{before.client_id}"}
    assert update["actor"] == {"S": "admin-2"}
    assert update["actor_credential"] == {"S": "oauth:tok-9"}
    assert update["request_id"] == {"S": "req-store-2"}
    assert update["before_hash"] == {"S": state_hash(before.public())}
    assert update["after_hash"] == {"S": state_hash(after.public())}
    assert update["before_hash"] != update["after_hash"]


def test_given_a_client_when_deleted_then_it_and_its_name_go_and_one_event_has_only_a_before_hash(
    store: DynamoClientStore, dynamodb: Any
) -> None:
    # Given
    client = _client()
    store.create(client, ACTOR)

    # When
    store.delete(client, ACTOR)

    # Then
    assert store.get(client.client_id) is None
    events = _audit_items(dynamodb)
    assert len(events) == 2
    deletion = next(e for e in events if e["action"]["S"] == "client.delete")
    assert deletion["target"] == {"S": f"client/{client.client_id}"}
    assert deletion["before_hash"] == {"S": state_hash(client.public())}
    assert "after_hash" not in deletion
    assert all(item["PK"]["S"].startswith("AUDIT#") for item in _scan(dynamodb))
    # the name is free again
    successor = _client(client_id="cl_" + "b" * 32)
    store.create(successor, ACTOR)
    assert store.get(successor.client_id) == successor


def test_given_a_client_lifecycle_when_audited_then_no_event_carries_a_secret_or_its_hash(
    store: DynamoClientStore, dynamodb: Any
) -> None:
    # Given a client, a rotation to a new secret and a deletion
    client = _client()
    store.create(client, ACTOR)
    new_secret = generate_client_secret("test")
    rotated = _bumped(client, secret_hash=hash_secret(new_secret))
    store.replace(client, rotated, "client.secret.rotate", ACTOR)
    store.delete(rotated, ACTOR)

    # When
    events = _audit_items(dynamodb)

    # Then
    assert sorted(e["action"]["S"] for e in events) == ["client.delete", "client.register", "client.secret.rotate"]
    text = json.dumps(events)
    for secret_material in (SECRET, SECRET_HASH, new_secret, rotated.secret_hash):
        assert secret_material not in text
    assert "secret_hash" not in text


# --- uniqueness and versions ---------------------------------------------------------------------


def test_given_a_name_taken_in_another_case_when_creating_then_duplicate_name_and_nothing_written(
    store: DynamoClientStore, dynamodb: Any
) -> None:
    # Given
    store.create(_client(name="Acme"), ACTOR)
    items_before = _scan(dynamodb)

    # When
    other = _client(client_id="cl_" + "b" * 32, name="acme")
    with pytest.raises(DuplicateName):
        store.create(other, ACTOR)

    # Then
    assert _scan(dynamodb) == items_before
    assert store.get(other.client_id) is None


def test_given_a_stale_version_when_replacing_then_concurrent_change_and_nothing_written(
    store: DynamoClientStore, dynamodb: Any
) -> None:
    # Given two admins read version 1; the first one saves
    original = _client()
    store.create(original, ACTOR)
    first = _bumped(original, description="first")
    store.replace(original, first, "client.update", ACTOR)
    items_before = _scan(dynamodb)

    # When the second saves from the same stale read
    with pytest.raises(ConcurrentChange):
        store.replace(original, _bumped(original, description="second"), "client.update", ACTOR)

    # Then
    assert _scan(dynamodb) == items_before
    assert store.get(original.client_id) == first


def test_given_a_stale_version_when_deleting_then_concurrent_change_and_nothing_written(
    store: DynamoClientStore, dynamodb: Any
) -> None:
    original = _client()
    store.create(original, ACTOR)
    store.replace(original, _bumped(original, status="suspended"), "client.suspend", ACTOR)
    items_before = _scan(dynamodb)

    with pytest.raises(ConcurrentChange):
        store.delete(original, ACTOR)

    assert _scan(dynamodb) == items_before


def test_given_a_rename_when_saved_then_the_old_name_is_free_and_the_new_one_taken(
    store: DynamoClientStore,
) -> None:
    # Given
    original = _client(name="Acme")
    store.create(original, ACTOR)

    # When
    store.replace(original, _bumped(original, name="Beta"), "client.update", ACTOR)

    # Then another client can take the old name ...
    store.create(_client(client_id="cl_" + "b" * 32, name="ACME"), ACTOR)
    # ... but not the new one
    with pytest.raises(DuplicateName):
        store.create(_client(client_id="cl_" + "c" * 32, name="beta"), ACTOR)


def test_given_a_change_of_case_only_when_renamed_then_the_name_stays_reserved(
    store: DynamoClientStore,
) -> None:
    original = _client(name="acme")
    store.create(original, ACTOR)

    store.replace(original, _bumped(original, name="ACME"), "client.update", ACTOR)

    loaded = store.get(original.client_id)
    assert loaded is not None
    assert loaded.name == "ACME"
    with pytest.raises(DuplicateName):
        store.create(_client(client_id="cl_" + "b" * 32, name="Acme"), ACTOR)


def test_given_a_rename_to_a_taken_name_when_saved_then_duplicate_name_and_nothing_written(
    store: DynamoClientStore, dynamodb: Any
) -> None:
    store.create(_client(name="Taken"), ACTOR)
    mine = _client(client_id="cl_" + "b" * 32, name="Mine")
    store.create(mine, ACTOR)
    items_before = _scan(dynamodb)

    with pytest.raises(DuplicateName):
        store.replace(mine, _bumped(mine, name="taken"), "client.update", ACTOR)

    assert _scan(dynamodb) == items_before
    assert store.get(mine.client_id) == mine


# --- listing -------------------------------------------------------------------------------------


def _five_clients(store: DynamoClientStore, statuses: tuple[str, ...] = ("active",) * 5) -> list[Client]:
    created = []
    for number, status in enumerate(statuses, start=1):
        client = _client(
            client_id=f"cl_{number:032d}",
            name=f"Client {number}",
            status=status,
            created_at=f"2026-11-0{number}T08:00:00.000Z",
            updated_at=f"2026-11-0{number}T08:00:00.000Z",
        )
        store.create(client, ACTOR)
        created.append(client)
    return created


def test_given_five_clients_when_listed_two_at_a_time_then_three_pages_newest_first(
    store: DynamoClientStore,
) -> None:
    # Given
    created = _five_clients(store)

    # When
    pages: list[list[Client]] = []
    cursor: str | None = None
    while True:
        items, cursor = store.list(None, 2, cursor)
        pages.append(items)
        if cursor is None:
            break
        assert len(pages) < 10, "pagination does not end"

    # Then
    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [client for page in pages for client in page]
    assert listed == list(reversed(created))


def test_given_clients_of_both_statuses_when_listed_by_status_then_only_those_come_back(
    store: DynamoClientStore,
) -> None:
    created = _five_clients(store, ("active", "suspended", "active", "suspended", "active"))

    suspended, suspended_cursor = store.list("suspended", 100, None)
    active, _ = store.list("active", 100, None)
    everyone, _ = store.list(None, 100, None)

    assert [c.client_id for c in suspended] == [created[3].client_id, created[1].client_id]
    assert suspended_cursor is None
    assert [c.client_id for c in active] == [created[4].client_id, created[2].client_id, created[0].client_id]
    assert len(everyone) == 5


def test_given_no_clients_when_listed_then_an_empty_page_without_cursor(store: DynamoClientStore) -> None:
    assert store.list(None, 10, None) == ([], None)


@pytest.mark.parametrize(
    "cursor", ["!!!", "bm90IGpzb24", "W10", "MTIz"], ids=["junk", "not-json", "a-list", "a-number"]
)
def test_given_an_invalid_cursor_when_listing_then_bad_request_invalid_cursor(
    store: DynamoClientStore, cursor: str
) -> None:
    _five_clients(store)

    with pytest.raises(BadRequest) as error:
        store.list(None, 2, cursor)

    assert error.value.code == "invalid_cursor"
    assert error.value.status == 400


def test_given_a_cursor_that_is_a_json_object_but_no_key_when_listing_then_bad_request_invalid_cursor(
    store: DynamoClientStore,
) -> None:
    _five_clients(store)

    with pytest.raises(BadRequest) as error:
        store.list(None, 2, encode_cursor({"not": "a key"}))

    assert error.value.code == "invalid_cursor"


# --- audit reader --------------------------------------------------------------------------------


def _audit_story(store: DynamoClientStore) -> tuple[Client, Client]:
    """x registered, y registered (by admin-2), x updated: three events in that order."""
    x = _client(client_id="cl_" + "1" * 32, name="X")
    y = _client(client_id="cl_" + "2" * 32, name="Y")
    store.create(x, ACTOR)
    _next_millisecond()
    store.create(y, Actor("admin-2", "oauth", "tok-2", "req-y"))
    _next_millisecond()
    store.replace(x, _bumped(x, description="changed"), "client.update", ACTOR)
    return x, y


def _query(reader: DynamoAuditReader, **filters: Any) -> tuple[list[dict[str, Any]], str | None]:
    arguments: dict[str, Any] = {
        "day": None,
        "target": None,
        "action": None,
        "actor": None,
        "limit": 50,
        "cursor": None,
    }
    arguments.update(filters)
    return reader.query(**arguments)


def test_given_events_today_when_queried_by_day_then_all_newest_first(
    store: DynamoClientStore, reader: DynamoAuditReader
) -> None:
    # Given
    x, y = _audit_story(store)

    # When
    events, cursor = _query(reader, day=iso(utc_now())[:10])

    # Then
    assert [(e["action"], e["target"]) for e in events] == [
        ("client.update", f"client/{x.client_id}"),
        ("client.register", f"client/{y.client_id}"),
        ("client.register", f"client/{x.client_id}"),
    ]
    assert cursor is None
    assert events[1]["actor"] == "admin-2"
    assert events[1]["actor_credential"] == "oauth:tok-2"
    assert events[1]["request_id"] == "req-y"
    assert events[1]["before_hash"] is None
    assert events[1]["after_hash"] is not None
    assert events[0]["before_hash"] is not None
    assert set(events[0]) == {
        "event_id",
        "at",
        "actor",
        "actor_credential",
        "action",
        "target",
        "request_id",
        "before_hash",
        "after_hash",
    }


def test_given_another_day_when_queried_by_day_then_nothing(
    store: DynamoClientStore, reader: DynamoAuditReader
) -> None:
    _audit_story(store)

    events, _ = _query(reader, day="2001-01-01")

    assert events == []


def test_given_events_on_two_targets_when_queried_by_target_then_only_that_targets_newest_first(
    store: DynamoClientStore, reader: DynamoAuditReader
) -> None:
    x, _ = _audit_story(store)

    events, _ = _query(reader, target=f"client/{x.client_id}")

    assert [e["action"] for e in events] == ["client.update", "client.register"]
    assert {e["target"] for e in events} == {f"client/{x.client_id}"}


def test_given_several_actions_when_queried_with_an_action_filter_then_only_that_action(
    store: DynamoClientStore, reader: DynamoAuditReader
) -> None:
    x, y = _audit_story(store)

    by_day, _ = _query(reader, day=iso(utc_now())[:10], action="client.register")
    by_target, _ = _query(reader, target=f"client/{x.client_id}", action="client.update")

    assert [e["target"] for e in by_day] == [f"client/{y.client_id}", f"client/{x.client_id}"]
    assert {e["action"] for e in by_day} == {"client.register"}
    assert [(e["action"], e["target"]) for e in by_target] == [("client.update", f"client/{x.client_id}")]


def test_given_two_actors_when_queried_with_an_actor_filter_then_only_theirs(
    store: DynamoClientStore, reader: DynamoAuditReader
) -> None:
    _, y = _audit_story(store)

    events, _ = _query(reader, day=iso(utc_now())[:10], actor="admin-2")

    assert [(e["actor"], e["target"]) for e in events] == [("admin-2", f"client/{y.client_id}")]


def test_given_three_events_when_read_one_at_a_time_then_the_cursor_walks_them_all(
    store: DynamoClientStore, reader: DynamoAuditReader
) -> None:
    _audit_story(store)
    day = iso(utc_now())[:10]
    everything, _ = _query(reader, day=day)

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page, cursor = _query(reader, day=day, limit=1, cursor=cursor)
        seen.extend(e["event_id"] for e in page)
        if cursor is None:
            break

    assert seen == [e["event_id"] for e in everything]
    assert len(seen) == 3
