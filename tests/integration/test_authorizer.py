"""The API key authorizer (REQUEST type) against a moto DynamoDB table."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from functions.authorizer.core import Denied
from gateway_core.credentials import api_key_item, generate_api_key, hash_api_key
from tests.integration.conftest import create_table
from tests.integration.helpers import REGION

Authorizer = Callable[[dict[str, Any], Any], dict[str, Any]]
TABLE = "gateway-auth-data"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/v1/whoami"
API_WILDCARD = "arn:aws:execute-api:us-east-1:123456789012:abc123/*/*"


@pytest.fixture
def table(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    create_table(TABLE)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    return TABLE


@pytest.fixture
def authorizer(table: str) -> Authorizer:
    from functions.authorizer.api_key_handler import lambda_handler

    return lambda_handler


def store_key(
    *,
    client_id: str = "c-1",
    key_id: str = "k-1",
    scopes: list[str] | None = None,
    tier: str = "free",
    **overrides: dict[str, Any],
) -> str:
    """Create a key the way the admin tools do and store its record; return the key itself."""
    key = generate_api_key("test")
    item = api_key_item(
        key_hash=hash_api_key(key),
        key_id=key_id,
        client_id=client_id,
        scopes=["admin", "read"] if scopes is None else scopes,
        tier=tier,
        name="integration test",
        created_at="2026-11-01T00:00:00Z",
        last_four=key[-4:],
        prefix="gk_test_",
    )
    item.update(overrides)
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=TABLE, Item=item)
    return key


def request_event(headers: dict[str, str] | None) -> dict[str, Any]:
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers}


def assert_refused(authorizer: Authorizer, event: dict[str, Any], reason: str) -> None:
    with pytest.raises(Denied) as refused:
        authorizer(event, None)
    # API Gateway answers 401 only for this exact error message
    assert str(refused.value) == "Unauthorized"
    assert refused.value.reason == reason


def test_given_an_active_key_when_authorized_then_allow_for_the_whole_api_with_a_flat_context(
    authorizer: Authorizer,
) -> None:
    # Given
    key = store_key(client_id="c-1", key_id="k-1", scopes=["admin", "read"], tier="free")

    # When
    result = authorizer(request_event({"x-api-key": key}), None)

    # Then
    assert result["principalId"] == "c-1"
    assert result["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": API_WILDCARD}
    ]
    context = result["context"]
    assert all(isinstance(v, str | int | bool) for v in context.values()), context
    assert context == {
        "client_id": "c-1",
        "credential_kind": "api_key",
        "credential_id": "k-1",
        "scopes": "admin read",
        "tier": "free",
        "cert_thumbprint": "",
        "rate_limits": "",
        "not_after": "",
        "key_lineage": "k-1",
    }
    json.dumps(result)  # the answer must be serialisable as Lambda returns it


@pytest.mark.parametrize("header_name", ["X-Api-Key", "X-API-KEY", "x-Api-kEy"])
def test_given_the_header_in_any_case_when_authorized_then_allowed(authorizer: Authorizer, header_name: str) -> None:
    key = store_key()

    result = authorizer(request_event({"Accept": "*/*", header_name: key}), None)

    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_given_a_key_without_scopes_when_authorized_then_scopes_is_an_empty_string(authorizer: Authorizer) -> None:
    key = store_key(scopes=[])

    result = authorizer(request_event({"x-api-key": key}), None)

    assert result["context"]["scopes"] == ""


def test_given_an_unknown_key_when_authorized_then_unauthorized(authorizer: Authorizer) -> None:
    store_key()

    assert_refused(authorizer, request_event({"x-api-key": generate_api_key("test")}), "unknown_key")


@pytest.mark.parametrize(
    "headers",
    [None, {}, {"Authorization": "Bearer x"}, {"x-api-key": ""}],
    ids=["no-headers", "empty", "other-header", "blank-key"],
)
def test_given_no_key_when_authorized_then_unauthorized(authorizer: Authorizer, headers: dict[str, str] | None) -> None:
    assert_refused(authorizer, request_event(headers), "missing_credential")


@pytest.mark.parametrize("status", ["revoked", "suspended", "ACTIVE"])
def test_given_a_key_that_is_not_active_when_authorized_then_unauthorized(authorizer: Authorizer, status: str) -> None:
    key = store_key(status={"S": status})

    assert_refused(authorizer, request_event({"x-api-key": key}), "key_not_active")


@pytest.mark.parametrize("expires_at", ["2020-01-01T00:00:00+00:00", "2026-01-01T00:00:00Z"])
def test_given_an_expired_key_when_authorized_then_unauthorized(authorizer: Authorizer, expires_at: str) -> None:
    key = store_key(expires_at={"S": expires_at})

    assert_refused(authorizer, request_event({"x-api-key": key}), "key_expired")


def test_given_a_key_expiring_in_the_future_when_authorized_then_allowed(authorizer: Authorizer) -> None:
    key = store_key(expires_at={"S": "2099-12-31T23:59:59Z"})

    result = authorizer(request_event({"x-api-key": key}), None)

    assert result["principalId"] == "c-1"


def test_given_an_expiry_without_offset_when_authorized_then_it_is_refused_not_a_crash(authorizer: Authorizer) -> None:
    key = store_key(expires_at={"S": "2020-01-01T00:00:00"})

    assert_refused(authorizer, request_event({"x-api-key": key}), "key_expired")


def test_given_a_stored_key_when_the_table_is_read_then_only_its_sha256_is_there(table: str) -> None:
    # Given
    key = store_key()

    # When
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=table)["Items"]

    # Then
    assert len(items) == 1
    stored = json.dumps(items[0])
    assert key not in stored
    assert key.removeprefix("gk_test_") not in stored
    assert items[0]["PK"] == {"S": f"APIKEY#{hash_api_key(key)}"}


def test_given_a_refused_key_when_logged_then_the_reason_is_there_and_the_key_is_not(
    authorizer: Authorizer, caplog: pytest.LogCaptureFixture
) -> None:
    # Given
    key = store_key(status={"S": "revoked"})

    # When
    with caplog.at_level(logging.INFO), pytest.raises(Denied):
        authorizer(request_event({"x-api-key": key}), None)

    # Then
    refused = [r for r in caplog.records if r.getMessage() == "credential refused"]
    assert len(refused) == 1
    assert refused[0].__dict__["reason"] == "key_not_active"
    assert refused[0].__dict__["kind"] == "api_key"
    assert all(key not in json.dumps(r.__dict__, default=str) for r in caplog.records)


def _last_used(key: str) -> str | None:
    from gateway_core.credentials import key_lookup_key

    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=TABLE, Key=key_lookup_key(hash_api_key(key)), ConsistentRead=True
    )["Item"]
    return item.get("last_used_at", {}).get("S")


def test_given_a_key_in_use_when_authorized_repeatedly_then_its_last_use_is_written_at_most_hourly(
    authorizer: Authorizer,
) -> None:
    # Given a key never used
    key = store_key()
    assert _last_used(key) is None
    writes: list[str] = []

    def count(model: Any = None, **_: Any) -> None:
        if model is not None and model.name == "UpdateItem":
            writes.append(model.name)

    from gateway_core import aws as gateway_aws

    gateway_aws.client("dynamodb").meta.events.register("before-call.*.*", count)

    # When it is used five times
    for _ in range(5):
        authorizer(request_event({"x-api-key": key}), None)

    # Then its last use is recorded, with one write
    first = _last_used(key)
    assert first is not None
    assert writes == ["UpdateItem"]

    # And when the recorded use is more than an hour old, the next use records it again
    from gateway_core.credentials import key_lookup_key

    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=TABLE,
        Key=key_lookup_key(hash_api_key(key)),
        UpdateExpression="SET last_used_at = :t",
        ExpressionAttributeValues={":t": {"S": "2026-01-01T00:00:00.000Z"}},
    )
    authorizer(request_event({"x-api-key": key}), None)
    assert writes == ["UpdateItem", "UpdateItem"]
    assert (_last_used(key) or "") > "2026-01-01T00:00:00.000Z"


def test_given_a_refused_key_when_authorized_then_no_use_is_recorded(authorizer: Authorizer) -> None:
    key = store_key(status={"S": "revoked"})

    with pytest.raises(Denied):
        authorizer(request_event({"x-api-key": key}), None)

    assert _last_used(key) is None
