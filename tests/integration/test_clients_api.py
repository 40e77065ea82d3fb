"""/api/v1/clients and /api/v1/audit/events through the management function's entry point, on moto."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest

from functions.routes.dal.clients_store import DynamoClientStore
from gateway_core.clock import iso, parse_iso, utc_now
from gateway_core.secrets_hashing import verify_secret
from gateway_core.settings import settings
from tests.integration.conftest import create_data_table, table_items
from tests.integration.helpers import ADMIN, REGION, FakeLambdaContext, proxy_event, response_header

TABLE = "gateway-data-clients-api"
PROBLEM = "application/problem+json"
READER = {**ADMIN, "client_id": "reader-1", "scopes": "data:read", "credential_id": "k2"}
REGISTRATION: dict[str, Any] = {
    "name": "Acme Treasury",
    "client_type": "integration",
    "contact_email": "ops@acme.example",
    "allowed_scopes": ["data:read", "banking:read"],
    "ip_allowlist": ["10.0.0.1/8"],
}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, Any]
    raw: dict[str, Any]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    def header(self, name: str) -> str | None:
        return response_header(self.raw, name)


class Api:
    """Calls the management function as API Gateway would, behind our authorizer."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls = 0

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: str | None = None,
        query: dict[str, str] | None = None,
        authorizer: dict[str, Any] | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        self.calls += 1
        text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        event = proxy_event(
            method,
            path,
            body=text,
            headers={"Content-Type": "application/json", **(headers or {})},
            authorizer=ADMIN if authorizer is None else authorizer,
            request_id=request_id or f"req-{self.calls}",
        )
        if query:
            event["queryStringParameters"] = query
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
        response = self.handler(event, FakeLambdaContext())
        return Reply(response["statusCode"], response.get("headers") or {}, response, response.get("body") or "")

    def change(self, method: str, path: str, body: Any = None, *, read: str | None = None, **kwargs: Any) -> Reply:
        """A PUT or PATCH as an admin client makes it: with the ETag a GET of `read` (default
        `path`) answered as its If-Match."""
        etag = self.call("GET", read or path).header("ETag")
        assert etag, f"no ETag on GET {read or path}"
        return self.call(method, path, body, headers={"If-Match": etag, **kwargs.pop("headers", {})}, **kwargs)

    def register(self, **overrides: Any) -> Reply:
        reply = self.call("POST", "/api/v1/clients/register", {**REGISTRATION, **overrides})
        assert reply.status == 201, reply.text
        return reply


@pytest.fixture
def dynamodb(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    create_data_table(TABLE)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("STAGE", "test")
    settings.cache_clear()
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def api(dynamodb: Any) -> Api:
    from functions.routes.management_handler import lambda_handler

    return Api(lambda_handler)


def _items(dynamodb: Any) -> list[dict[str, Any]]:
    return table_items(dynamodb, TABLE)


def _next_millisecond() -> None:
    """Listings and audit events are ordered by millisecond stamps: make the next one later."""
    start = iso(utc_now())
    while iso(utc_now()) == start:
        pass


def _assert_problem(reply: Reply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, reply.text
    assert reply.header("Content-Type") == PROBLEM
    body: dict[str, Any] = reply.json
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == f"urn:gateway:problem:{code}"
    return body


# --- register and read ---------------------------------------------------------------------------


def test_given_a_valid_registration_when_posted_then_201_with_location_secret_and_no_store(api: Api) -> None:
    # When
    reply = api.register()

    # Then
    body = reply.json
    client_id = body["client_id"]
    assert client_id.startswith("cl_")
    assert reply.header("Location") == f"/api/v1/clients/{client_id}"
    assert reply.header("Cache-Control") == "no-store"
    assert reply.header("Content-Type") == "application/json"
    assert body["client_secret"].startswith("gs_test_")
    assert "secret_hash" not in body
    assert body["status"] == "active"
    assert body["version"] == 1
    assert body["name"] == "Acme Treasury"
    assert body["allowed_scopes"] == ["banking:read", "data:read"]
    assert body["ip_allowlist"] == ["10.0.0.0/8"]
    assert body["rate_limits"] == {"per_minute": 60, "per_hour": 1000, "per_day": 10000}
    assert body["rate_limits_overridden"] is False
    assert body["monthly_quota"] == 100000


def test_given_a_registered_client_when_read_then_200_without_any_secret(api: Api, dynamodb: Any) -> None:
    # Given
    registered = api.register().json
    secret = registered.pop("client_secret")

    # When
    reply = api.call("GET", f"/api/v1/clients/{registered['client_id']}")

    # Then
    assert reply.status == 200
    assert reply.json == registered
    assert not any("secret" in field for field in reply.json)
    assert secret not in reply.text
    stored = DynamoClientStore(dynamodb, TABLE).get(registered["client_id"])
    assert stored is not None
    assert verify_secret(secret, stored.secret_hash)
    assert stored.secret_hash not in reply.text


def test_given_clients_when_listed_then_newest_first_paginated_and_filtered(api: Api) -> None:
    # Given
    first = api.register(name="First").json["client_id"]
    _next_millisecond()
    second = api.register(name="Second").json["client_id"]
    _next_millisecond()
    third = api.register(name="Third").json["client_id"]
    assert api.call("POST", f"/api/v1/clients/{second}/suspend").status == 200

    # When
    everyone = api.call("GET", "/api/v1/clients")
    page_one = api.call("GET", "/api/v1/clients", query={"limit": "2"})
    cursor = page_one.json["next_cursor"]
    page_two = api.call("GET", "/api/v1/clients", query={"limit": "2", "cursor": cursor or ""})
    suspended = api.call("GET", "/api/v1/clients", query={"status": "suspended"})

    # Then
    assert everyone.status == 200
    assert [c["client_id"] for c in everyone.json["items"]] == [third, second, first]
    assert everyone.json["next_cursor"] is None
    assert [c["client_id"] for c in page_one.json["items"]] == [third, second]
    assert cursor
    assert [c["client_id"] for c in page_two.json["items"]] == [first]
    assert page_two.json["next_cursor"] is None
    assert [c["client_id"] for c in suspended.json["items"]] == [second]
    assert "client_secret" not in everyone.text
    assert "secret_hash" not in everyone.text


@pytest.mark.parametrize(
    "query", [{"status": "deleted"}, {"limit": "0"}, {"limit": "101"}], ids=["status", "limit-0", "limit-101"]
)
def test_given_bad_list_parameters_when_listing_then_422_validation_failed(api: Api, query: dict[str, str]) -> None:
    _assert_problem(api.call("GET", "/api/v1/clients", query=query), 422, "validation_failed")


def test_given_an_invalid_cursor_when_listing_then_400_invalid_cursor(api: Api) -> None:
    api.register()

    _assert_problem(api.call("GET", "/api/v1/clients", query={"cursor": "!!!"}), 400, "invalid_cursor")


# --- change, suspend, rotate, delete -------------------------------------------------------------


def test_given_a_client_when_updated_then_200_only_given_fields_change_and_the_read_agrees(api: Api) -> None:
    # Given
    before = api.register().json
    before.pop("client_secret")

    # When
    reply = api.change(
        "PUT",
        f"/api/v1/clients/{before['client_id']}",
        {"description": "Treasury sync", "rate_limits": {"per_minute": 10, "per_hour": 100, "per_day": 1000}},
    )

    # Then
    after = reply.json
    assert reply.status == 200
    assert after["description"] == "Treasury sync"
    assert after["rate_limits"] == {"per_minute": 10, "per_hour": 100, "per_day": 1000}
    assert after["rate_limits_overridden"] is True
    assert after["version"] == 2
    assert reply.header("ETag") == '"2"'
    changed = {"description", "rate_limits", "rate_limits_overridden", "version", "updated_at"}
    assert {k: v for k, v in after.items() if k not in changed} == {k: v for k, v in before.items() if k not in changed}
    read = api.call("GET", f"/api/v1/clients/{before['client_id']}")
    assert (read.json, read.header("ETag")) == (after, '"2"')


def test_given_a_client_when_updated_with_bad_limits_then_422_and_nothing_changes(api: Api, dynamodb: Any) -> None:
    client_id = api.register().json["client_id"]
    items_before = _items(dynamodb)

    reply = api.change(
        "PUT", f"/api/v1/clients/{client_id}", {"rate_limits": {"per_minute": 100, "per_hour": 10, "per_day": 1000}}
    )

    _assert_problem(reply, 422, "invalid_limits")
    assert _items(dynamodb) == items_before


def test_given_a_taken_name_when_registering_again_in_another_case_then_409_duplicate_name(
    api: Api, dynamodb: Any
) -> None:
    api.register(name="Acme")
    items_before = _items(dynamodb)

    reply = api.call("POST", "/api/v1/clients/register", {**REGISTRATION, "name": "ACME"})

    _assert_problem(reply, 409, "duplicate_name")
    assert _items(dynamodb) == items_before


def test_given_a_client_when_suspended_and_reactivated_then_status_and_version_follow(api: Api) -> None:
    client_id = api.register().json["client_id"]

    suspended = api.call("POST", f"/api/v1/clients/{client_id}/suspend")
    again = api.call("POST", f"/api/v1/clients/{client_id}/suspend")
    reactivated = api.call("POST", f"/api/v1/clients/{client_id}/reactivate")

    assert (suspended.status, suspended.json["status"], suspended.json["version"]) == (200, "suspended", 2)
    assert (again.status, again.json["status"], again.json["version"]) == (200, "suspended", 2)
    assert (reactivated.status, reactivated.json["status"], reactivated.json["version"]) == (200, "active", 3)
    assert api.call("GET", f"/api/v1/clients/{client_id}").json["status"] == "active"


def test_given_a_client_when_its_secret_is_rotated_then_a_new_secret_is_shown_once_and_the_old_fails(
    api: Api, dynamodb: Any
) -> None:
    # Given
    registered = api.register().json
    client_id, old_secret = registered["client_id"], registered["client_secret"]

    # When
    reply = api.call("POST", f"/api/v1/clients/{client_id}/secret")

    # Then
    new_secret = reply.json["client_secret"]
    assert reply.status == 200
    assert reply.header("Cache-Control") == "no-store"
    assert new_secret.startswith("gs_test_")
    assert new_secret != old_secret
    assert reply.json["version"] == 2
    stored = DynamoClientStore(dynamodb, TABLE).get(client_id)
    assert stored is not None
    assert verify_secret(new_secret, stored.secret_hash)
    assert not verify_secret(old_secret, stored.secret_hash)
    read = api.call("GET", f"/api/v1/clients/{client_id}").text
    assert new_secret not in read
    assert old_secret not in read


@pytest.mark.parametrize(
    ("body", "grace_seconds"), [(None, 86_400), ({}, 86_400), ({"grace_seconds": 600}, 600), ({"grace_seconds": 0}, 0)]
)
def test_given_a_grace_or_none_when_the_secret_is_rotated_then_the_old_one_is_kept_that_long(
    api: Api, dynamodb: Any, body: dict[str, Any] | None, grace_seconds: int
) -> None:
    # Given
    registered = api.register().json
    client_id, old_secret = registered["client_id"], registered["client_secret"]

    # When
    reply = api.call("POST", f"/api/v1/clients/{client_id}/secret", body)

    # Then: the stored record keeps the old secret's hash until the grace ends, and says until when
    assert reply.status == 200, reply.text
    stored = DynamoClientStore(dynamodb, TABLE).get(client_id)
    assert stored is not None
    if grace_seconds:
        assert stored.previous_secret_hash is not None
        assert verify_secret(old_secret, stored.previous_secret_hash)
        until = parse_iso(reply.json["grace_until"])
        assert until - parse_iso(reply.json["updated_at"]) == timedelta(seconds=grace_seconds)
        assert stored.grace_until == reply.json["grace_until"]
    else:
        assert (stored.previous_secret_hash, stored.grace_until) == (None, None)
        assert reply.json["grace_until"] is None
    assert "previous_secret_hash" not in reply.text
    assert "previous_secret_hash" not in api.call("GET", f"/api/v1/clients/{client_id}").text


@pytest.mark.parametrize("body", [{"grace_seconds": -1}, {"grace_seconds": 2_592_001}, {"grace": 5}, [1]])
def test_given_a_bad_grace_when_rotating_the_secret_then_422_and_nothing_changes(
    api: Api, dynamodb: Any, body: Any
) -> None:
    client_id = api.register().json["client_id"]
    before = _items(dynamodb)

    reply = api.call("POST", f"/api/v1/clients/{client_id}/secret", body)

    _assert_problem(reply, 422, "validation_failed")
    assert _items(dynamodb) == before


def test_given_a_client_when_deleted_then_204_and_then_404_client_not_found(api: Api) -> None:
    client_id = api.register().json["client_id"]

    deleted = api.call("DELETE", f"/api/v1/clients/{client_id}")
    read = api.call("GET", f"/api/v1/clients/{client_id}", request_id="req-after-delete")

    assert deleted.status == 204
    assert deleted.text == ""
    body = _assert_problem(read, 404, "client_not_found")
    assert body["request_id"] == "req-after-delete"
    assert body["instance"] == f"/api/v1/clients/{client_id}"
    assert api.call("GET", "/api/v1/clients").json["items"] == []


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/suspend"), ("POST", "/reactivate"), ("POST", "/secret")],
)
def test_given_an_unknown_client_when_operated_on_then_404_client_not_found(api: Api, method: str, suffix: str) -> None:
    body = {"description": "x"} if method == "PUT" else None

    reply = api.call(method, f"/api/v1/clients/cl_missing{suffix}", body)

    _assert_problem(reply, 404, "client_not_found")


# --- audit ---------------------------------------------------------------------------------------


def test_given_a_client_lifecycle_when_its_audit_events_are_read_then_every_change_newest_first(api: Api) -> None:
    # Given a client registered, changed, suspended, reactivated, rotated and deleted
    client_id = api.call("POST", "/api/v1/clients/register", REGISTRATION, request_id="req-register").json["client_id"]
    steps = [
        ("PUT", "", {"description": "changed"}, "req-update"),
        ("POST", "/suspend", None, "req-suspend"),
        ("POST", "/reactivate", None, "req-reactivate"),
        ("POST", "/secret", None, "req-rotate"),
        ("DELETE", "", None, "req-delete"),
    ]
    for method, suffix, body, request_id in steps:
        _next_millisecond()
        send = api.change if method == "PUT" else api.call
        reply = send(method, f"/api/v1/clients/{client_id}{suffix}", body, request_id=request_id)
        assert reply.status in (200, 204), reply.text

    # When
    reply = api.call("GET", "/api/v1/audit/events", query={"target": f"client/{client_id}"})

    # Then
    assert reply.status == 200
    events = reply.json["items"]
    assert [e["action"] for e in events] == [
        "client.delete",
        "client.secret.rotate",
        "client.reactivate",
        "client.suspend",
        "client.update",
        "client.register",
    ]
    assert [e["request_id"] for e in events] == [
        "req-delete",
        "req-rotate",
        "req-reactivate",
        "req-suspend",
        "req-update",
        "req-register",
    ]
    assert {e["target"] for e in events} == {f"client/{client_id}"}
    assert {e["actor"] for e in events} == {"admin-1"}
    assert {e["actor_credential"] for e in events} == {"api_key:k1"}
    assert events[-1]["before_hash"] is None
    assert events[-1]["after_hash"]
    assert events[0]["before_hash"]
    assert events[0]["after_hash"] is None
    assert reply.json["next_cursor"] is None


def test_given_todays_events_when_read_by_day_with_an_action_filter_then_only_those(api: Api) -> None:
    first = api.register(name="One").json["client_id"]
    second = api.register(name="Two").json["client_id"]
    api.call("POST", f"/api/v1/clients/{first}/suspend")

    registrations = api.call("GET", "/api/v1/audit/events", query={"action": "client.register"})
    suspensions = api.call(
        "GET", "/api/v1/audit/events", query={"day": iso(utc_now())[:10], "action": "client.suspend"}
    )

    assert registrations.status == 200
    assert {e["target"] for e in registrations.json["items"]} == {f"client/{first}", f"client/{second}"}
    assert [e["target"] for e in suspensions.json["items"]] == [f"client/{first}"]


# --- refusals ------------------------------------------------------------------------------------

ADMIN_ONLY = [
    ("POST", "/api/v1/clients/register", REGISTRATION),
    ("GET", "/api/v1/clients", None),
    ("GET", "/api/v1/clients/{id}", None),
    ("PUT", "/api/v1/clients/{id}", {"description": "hijacked"}),
    ("POST", "/api/v1/clients/{id}/suspend", None),
    ("POST", "/api/v1/clients/{id}/reactivate", None),
    ("POST", "/api/v1/clients/{id}/secret", None),
    ("DELETE", "/api/v1/clients/{id}", None),
    ("GET", "/api/v1/audit/events", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY, ids=[f"{m} {p}" for m, p, _ in ADMIN_ONLY])
def test_given_a_caller_without_admin_when_calling_then_403_insufficient_scope_and_nothing_written(
    api: Api, dynamodb: Any, method: str, path: str, body: Any
) -> None:
    # Given
    client_id = api.register(name="Existing").json["client_id"]
    items_before = _items(dynamodb)

    # When
    reply = api.call(method, path.format(id=client_id), body, authorizer=READER)

    # Then
    problem = _assert_problem(reply, 403, "insufficient_scope")
    assert problem["required_scope"] == "admin"
    assert _items(dynamodb) == items_before
    assert "Acme" not in reply.text


def test_given_no_identity_when_registering_then_401_and_nothing_written(api: Api, dynamodb: Any) -> None:
    reply = api.call("POST", "/api/v1/clients/register", REGISTRATION, authorizer={})

    _assert_problem(reply, 401, "no_identity")
    assert _items(dynamodb) == []


def test_given_an_unknown_scope_when_registering_then_422_unknown_scope_and_nothing_written(
    api: Api, dynamodb: Any
) -> None:
    reply = api.call(
        "POST", "/api/v1/clients/register", {**REGISTRATION, "allowed_scopes": ["data:read", "payments:everything"]}
    )

    problem = _assert_problem(reply, 422, "unknown_scope")
    assert problem["unknown"] == ["payments:everything"]
    assert _items(dynamodb) == []
    assert api.call("GET", "/api/v1/audit/events").json["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {**REGISTRATION, "status": "suspended"},
        {**REGISTRATION, "rate_limits": {"per_minute": 1, "per_hour": 2, "per_day": 3, "per_week": 4}},
        {k: v for k, v in REGISTRATION.items() if k != "contact_email"},
        {**REGISTRATION, "allowed_scopes": []},
    ],
    ids=["extra-status", "extra-limit", "missing-email", "no-scopes"],
)
def test_given_a_body_off_the_schema_when_registering_then_422_validation_failed_and_nothing_written(
    api: Api, dynamodb: Any, body: dict[str, Any]
) -> None:
    reply = api.call("POST", "/api/v1/clients/register", body)

    problem = _assert_problem(reply, 422, "validation_failed")
    assert problem["errors"]
    assert _items(dynamodb) == []


def test_given_an_extra_field_when_registering_then_the_error_names_it(api: Api) -> None:
    reply = api.call("POST", "/api/v1/clients/register", {**REGISTRATION, "owner": "mallory"})

    problem = _assert_problem(reply, 422, "validation_failed")
    assert any(error["loc"][-1] == "owner" for error in problem["errors"])


def test_given_an_extra_field_when_updating_then_422_validation_failed_and_nothing_changes(
    api: Api, dynamodb: Any
) -> None:
    client_id = api.register().json["client_id"]
    items_before = _items(dynamodb)

    reply = api.call("PUT", f"/api/v1/clients/{client_id}", {"version": 99})

    _assert_problem(reply, 422, "validation_failed")
    assert _items(dynamodb) == items_before


@pytest.mark.parametrize(
    ("raw_body", "status", "code"),
    [
        ('{"name": "Acme",', 400, "invalid_body"),
        ("not json", 400, "invalid_body"),
        ("[]", 422, "validation_failed"),
    ],
    ids=["truncated", "text", "array"],
)
def test_given_malformed_json_when_registering_then_4xx_and_nothing_written(
    api: Api, dynamodb: Any, raw_body: str, status: int, code: str
) -> None:
    reply = api.call("POST", "/api/v1/clients/register", raw_body=raw_body)

    _assert_problem(reply, status, code)
    assert _items(dynamodb) == []


@pytest.mark.parametrize("field", ["name", "description", "allowed_scopes"])
def test_given_null_for_a_required_field_when_updating_then_refused_or_ignored_and_the_client_stays_readable(
    api: Api, field: str
) -> None:
    # Given
    registered = api.register(description="kept", organization="Acme Corp").json

    # When
    reply = api.call("PUT", f"/api/v1/clients/{registered['client_id']}", {field: None})

    # Then: either refused (422) or treated as "keep", never a crash or a stored null
    assert reply.status in (200, 422), reply.text
    read = api.call("GET", f"/api/v1/clients/{registered['client_id']}")
    assert read.status == 200, read.text
    assert read.json[field] == registered[field]


# --- secrets stay out of logs --------------------------------------------------------------------


def test_given_debug_logging_when_clients_are_registered_rotated_and_read_then_no_secret_is_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # Given everything logged, down to DEBUG (boto3 then logs every request it sends)
    caplog.set_level(logging.DEBUG)

    # When
    registered = api.register().json
    client_id = registered["client_id"]
    rotated = api.call("POST", f"/api/v1/clients/{client_id}/secret").json
    assert api.change("PUT", f"/api/v1/clients/{client_id}", {"description": "after rotation"}).status == 200
    read = api.call("GET", f"/api/v1/clients/{client_id}")
    listed = api.call("GET", "/api/v1/clients")

    # Then the capture worked: the store's writes were logged ...
    logs = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    assert client_id in logs
    assert "TransactWriteItems" in logs
    # ... and neither secret appears in them, nor in any read
    for secret in (registered["client_secret"], rotated["client_secret"]):
        assert secret not in logs
        assert secret not in read.text
        assert secret not in listed.text


# --- keys across clients -------------------------------------------------------------------------


def _create_key(api: Api, client_id: str, name: str) -> str:
    _next_millisecond()
    reply = api.call("POST", "/api/v1/gateway/keys", {"client_id": client_id, "name": name})
    assert reply.status == 201, reply.text
    key_id: str = reply.json["key_id"]
    return key_id


def test_given_keys_of_several_clients_when_listed_without_a_client_then_all_newest_first_paged(api: Api) -> None:
    # Given: keys of two clients, interleaved
    first, second = api.register().json["client_id"], api.register(name="Beta Payroll").json["client_id"]
    created = [
        _create_key(api, first, "a1"),
        _create_key(api, second, "b1"),
        _create_key(api, first, "a2"),
        _create_key(api, second, "b2"),
    ]

    # When: listed across clients, two a page
    page_one = api.call("GET", "/api/v1/gateway/keys", query={"limit": "2"})
    cursor = page_one.json["next_cursor"]
    page_two = api.call("GET", "/api/v1/gateway/keys", query={"limit": "2", "cursor": cursor})
    everything = api.call("GET", "/api/v1/gateway/keys").json

    # Then: every key, newest first, split across the pages; a client's own listing is unchanged
    assert page_one.status == 200, page_one.text
    listed = [k["key_id"] for k in page_one.json["items"] + page_two.json["items"]]
    assert listed == list(reversed(created))
    assert [k["key_id"] for k in everything["items"]] == list(reversed(created))
    assert everything["next_cursor"] is None
    assert all("api_key" not in k for k in everything["items"])
    own = api.call("GET", "/api/v1/gateway/keys", query={"client_id": first}).json["items"]
    assert [k["key_id"] for k in own] == [created[2], created[0]]


@pytest.mark.parametrize("other_list", ["/api/v1/clients", "/api/v1/gateway/keys?client_id"])
def test_given_a_cursor_of_another_list_when_listing_all_keys_then_400_invalid_cursor(
    api: Api, other_list: str
) -> None:
    # Given: a cursor a different listing issued
    client_id = api.register().json["client_id"]
    api.register(name="Beta Payroll")
    _create_key(api, client_id, "a1")
    _create_key(api, client_id, "a2")
    if other_list.endswith("client_id"):
        cursor = api.call("GET", "/api/v1/gateway/keys", query={"client_id": client_id, "limit": "1"})
    else:
        cursor = api.call("GET", "/api/v1/clients", query={"limit": "1"})
    assert cursor.json["next_cursor"]

    # When
    reply = api.call("GET", "/api/v1/gateway/keys", query={"limit": "1", "cursor": cursor.json["next_cursor"]})

    # Then
    _assert_problem(reply, 400, "invalid_cursor")


def test_given_a_key_stored_before_the_listing_index_when_it_next_changes_then_it_joins_the_listing(
    api: Api, dynamodb: Any
) -> None:
    # Given: a key whose item lacks the across-clients index attributes (written before them)
    client_id = api.register().json["client_id"]
    key_id = _create_key(api, client_id, "legacy")
    lookup = next(i for i in _items(dynamodb) if i["PK"]["S"].startswith("APIKEY#"))
    dynamodb.update_item(
        TableName=TABLE, Key={"PK": lookup["PK"], "SK": lookup["SK"]}, UpdateExpression="REMOVE GSI2PK, GSI2SK"
    )
    assert api.call("GET", "/api/v1/gateway/keys").json["items"] == []

    # When: the key is changed
    changed = api.change("PUT", f"/api/v1/gateway/keys/{key_id}", {"name": "renamed"})

    # Then: the write backfills it
    assert changed.status == 200, changed.text
    assert [k["key_id"] for k in api.call("GET", "/api/v1/gateway/keys").json["items"]] == [key_id]
