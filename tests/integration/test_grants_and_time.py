"""Issue 11, grants and time, in the authorizers on moto: an API key's scopes are narrowed to its
client's current grant (from the copy on the key, or the client record for keys written before
the copy), every Allow says when it stops holding (`not_after`), and a rotated key's successor
shares its lineage. Keys and clients are made with the keys API's own rules and stores."""

from __future__ import annotations

import importlib
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.routes.dal.certificates_store import DynamoCertificateStore
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.dal.keys_store import DynamoKeyStore
from functions.routes.logic import certificates, keys
from functions.routes.logic.catalog import RateLimits
from functions.routes.logic.clients import Client
from gateway_core.audit import Actor
from gateway_core.clock import parse_iso, utc_now
from gateway_core.credentials import api_key_items, generate_api_key, hash_api_key, new_key_record
from tests.certificates import make_certificate
from tests.integration.conftest import create_data_table
from tests.integration.helpers import REGION
from tests.integration.test_jwt_authorizer import AUDIENCE, ISSUER, Kms, our_token
from tests.unit.factories import make_client

TABLE = "gateway-grants-and-time"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/v1/clients"
ADMIN = Actor("admin", "api_key", "k0", "req-0")
SKEW_S = 60  # the JWT authorizer's clock skew allowance


@pytest.fixture
def table(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    create_data_table(TABLE)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    return TABLE


def dynamodb() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def stores() -> tuple[DynamoKeyStore, DynamoClientStore]:
    return DynamoKeyStore(dynamodb(), TABLE), DynamoClientStore(dynamodb(), TABLE)


def register(**overrides: Any) -> Client:
    client = make_client(
        **{"client_id": "cl_fund", "name": "fund", "allowed_scopes": ["admin", "data:read"]} | overrides
    )
    stores()[1].create(client, ADMIN)
    return client


def change_client(client: Client, **fields: Any) -> Client:
    """What PUT /api/v1/clients/{id} does after the rules: store the change, bring the keys in step."""
    key_store, client_store = stores()
    after = replace(client, version=client.version + 1, **fields)
    client_store.replace(client, after, "client.update", ADMIN)
    keys.sync_client(key_store, after)
    return after


def issue(client_id: str = "cl_fund", **arguments: Any) -> tuple[keys.ApiKey, str]:
    values: dict[str, Any] = {"name": "k", "scopes": None, "expires_at": None, "rate_limits": None} | arguments
    return keys.create(*stores(), client_id=client_id, actor=ADMIN, now=utc_now(), environment="test", **values)


def rotate(key_id: str, grace: timedelta | None = None) -> tuple[keys.ApiKey, str, keys.ApiKey]:
    return keys.rotate(*stores(), key_id, grace, ADMIN, utc_now(), "test")


def authorize(handler: str, headers: dict[str, str]) -> dict[str, Any]:
    module = importlib.import_module(f"functions.authorizer.{handler}")
    event = {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers,
        "requestContext": {"identity": {"sourceIp": "203.0.113.7"}},
    }
    result: dict[str, Any] = module.lambda_handler(event, None)
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow", result
    return result


def key_context(secret: str, handler: str = "api_key_handler") -> dict[str, Any]:
    context: dict[str, Any] = authorize(handler, {"x-api-key": secret})["context"]
    return context


def epoch(text: str) -> str:
    return f"{parse_iso(text).timestamp():.3f}"


# --- scopes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", ["api_key_handler", "gateway_handler"])
@pytest.mark.parametrize(
    ("narrowed_to", "expected"),
    [(["data:read"], "data:read"), ([], ""), (["data:read", "banking:read"], "data:read")],
    ids=["lost-admin", "lost-everything", "swapped-admin-for-another"],
)
def test_given_a_client_narrowed_after_its_key_was_issued_when_the_key_is_used_then_only_what_remains(
    table: str, handler: str, narrowed_to: list[str], expected: str
) -> None:
    # Given a key issued with the client's admin and data:read
    client = register()
    _, secret = issue()
    assert key_context(secret, handler)["scopes"] == "admin data:read"

    # When the client is narrowed
    change_client(client, allowed_scopes=narrowed_to)

    # Then the key carries only what its client may still hold, and the grant itself
    context = key_context(secret, handler)
    assert context["scopes"] == expected
    assert context["client_scopes"] == " ".join(narrowed_to)


def test_given_a_client_widened_again_when_the_key_is_used_then_it_gets_back_no_more_than_its_own(
    table: str,
) -> None:
    client = register(allowed_scopes=["admin", "data:read", "banking:read"])
    _, secret = issue(scopes=["admin", "data:read"])
    client = change_client(client, allowed_scopes=["data:read"])

    change_client(client, allowed_scopes=["admin", "data:read", "banking:read"])

    assert key_context(secret)["scopes"] == "admin data:read"


def legacy_key(client_id: str, scopes: list[str]) -> str:
    """A key stored before keys carried the client's grant (no `client_allowed_scopes`)."""
    secret = generate_api_key("test")
    record = new_key_record(
        key_hash=hash_api_key(secret),
        key_id="key_legacy",
        client_id=client_id,
        scopes=scopes,
        tier="basic",
        name="legacy",
        created_at="2026-01-01T00:00:00.000Z",
        last_four=secret[-4:],
        prefix="gk_test_",
    )
    lookup, pointer = api_key_items(record)
    assert "client_allowed_scopes" not in lookup
    assert "lineage_id" not in lookup
    for item in (lookup, pointer):
        dynamodb().put_item(TableName=TABLE, Item=item)
    return secret


@pytest.mark.parametrize("handler", ["api_key_handler", "gateway_handler"])
def test_given_a_key_without_the_copy_when_used_then_its_client_record_narrows_it(table: str, handler: str) -> None:
    # Given a client narrowed before its keys carried its grant
    register(allowed_scopes=["data:read"])
    secret = legacy_key("cl_fund", ["admin", "data:read"])

    context = key_context(secret, handler)

    assert context["scopes"] == "data:read"
    assert context["client_scopes"] == "data:read"


def test_given_a_key_without_the_copy_and_without_a_client_record_when_used_then_it_keeps_its_own(
    table: str,
) -> None:
    # An operator key of a client id that is no registered client (infra.admin): nothing narrows
    # it, as before; it gets no more than its own scopes.
    secret = legacy_key("bootstrap-admin", ["admin"])

    context = key_context(secret)

    assert context["scopes"] == "admin"
    assert "client_scopes" not in context


def test_given_a_client_change_when_synced_then_every_key_carries_the_clients_grant(table: str) -> None:
    client = register()
    first, _ = issue()
    second, _ = issue(scopes=["data:read"])
    key_store = stores()[0]
    assert key_store.get(first.key_id).client_allowed_scopes == ["admin", "data:read"]  # type: ignore[union-attr]

    change_client(client, allowed_scopes=["banking:read"])

    for key in (first, second):
        stored = key_store.get(key.key_id)
        assert stored is not None
        assert stored.client_allowed_scopes == ["banking:read"]
        assert stored.scopes == key.scopes  # the key's own scopes are kept: a wider grant gives them back


def test_given_a_narrowed_client_when_a_key_is_rotated_then_the_new_key_holds_only_what_remains(table: str) -> None:
    client = register()
    old, old_secret = issue()
    change_client(client, allowed_scopes=["data:read"])

    new, new_secret, _ = rotate(old.key_id)

    assert new.scopes == ["data:read"]
    assert stores()[0].get(new.key_id).scopes == ["data:read"]  # type: ignore[union-attr]
    assert key_context(new_secret)["scopes"] == "data:read"
    assert key_context(old_secret)["scopes"] == "data:read"  # the old one, in its grace, too


# --- not_after --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_expiry", "client_expiry", "expected"),
    [
        ("2099-01-01T00:00:00.000Z", None, "2099-01-01T00:00:00.000Z"),
        (None, "2098-06-01T12:30:00.500Z", "2098-06-01T12:30:00.500Z"),
        ("2099-01-01T00:00:00.000Z", "2098-06-01T12:30:00.500Z", "2098-06-01T12:30:00.500Z"),
        ("2097-03-01T00:00:00.000Z", "2098-06-01T12:30:00.500Z", "2097-03-01T00:00:00.000Z"),
    ],
    ids=["key", "client", "client-first", "key-first"],
)
@pytest.mark.parametrize("handler", ["api_key_handler", "gateway_handler"])
def test_given_a_key_with_time_bounds_when_allowed_then_not_after_is_the_earliest(
    table: str, handler: str, key_expiry: str | None, client_expiry: str | None, expected: str
) -> None:
    register(expires_at=client_expiry)
    _, secret = issue(expires_at=key_expiry)

    assert key_context(secret, handler)["not_after"] == epoch(expected)


def test_given_a_key_without_time_bounds_when_allowed_then_not_after_is_empty(table: str) -> None:
    register()
    _, secret = issue()

    assert key_context(secret)["not_after"] == ""


def test_given_a_rotated_key_when_allowed_in_its_grace_then_not_after_is_its_grace_end(table: str) -> None:
    register()
    old, old_secret = issue(expires_at="2099-01-01T00:00:00.000Z")

    _, new_secret, retired = rotate(old.key_id, timedelta(hours=2))

    assert retired.grace_until is not None
    assert key_context(old_secret)["not_after"] == epoch(retired.grace_until)
    assert key_context(new_secret)["not_after"] == epoch("2099-01-01T00:00:00.000Z")


# --- lineage ----------------------------------------------------------------------------------


def test_given_rotations_when_each_key_is_used_then_all_share_the_first_keys_lineage(table: str) -> None:
    register()
    first, first_secret = issue(rate_limits=RateLimits(per_minute=3, per_hour=50, per_day=500))

    second, second_secret, _ = rotate(first.key_id)
    third, third_secret, _ = rotate(second.key_id)

    assert third.rate_limits == first.rate_limits
    for secret, credential in ((first_secret, first), (second_secret, second), (third_secret, third)):
        context = key_context(secret)
        assert context["credential_id"] == credential.key_id
        assert context["key_lineage"] == first.key_id


def test_given_a_key_written_before_lineages_when_used_and_rotated_then_it_heads_its_lineage(table: str) -> None:
    register()
    secret = legacy_key("cl_fund", ["data:read"])
    assert key_context(secret)["key_lineage"] == "key_legacy"

    new, new_secret, _ = rotate("key_legacy")

    assert new.lineage_id == "key_legacy"
    assert key_context(new_secret)["key_lineage"] == "key_legacy"


# --- the JWT and mTLS authorizers' not_after ----------------------------------------------------


@pytest.fixture
def kms(table: str, monkeypatch: pytest.MonkeyPatch) -> Kms:
    signers = Kms()
    monkeypatch.setenv("TOKEN_ISSUER", ISSUER)
    monkeypatch.setenv("TOKEN_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("TOKEN_SIGNING_KEY_ID", signers.current.key_id)
    monkeypatch.setenv("TOKEN_VERIFY_KEY_IDS", signers.current.key_id)
    import functions.authorizer.jwt_handler as module

    importlib.reload(module)  # a fresh container: empty key, issuer and client caches
    return signers


def token_context(token: str) -> dict[str, Any]:
    context: dict[str, Any] = authorize("jwt_handler", {"Authorization": f"Bearer {token}"})["context"]
    return context


def test_given_our_token_when_allowed_then_not_after_is_its_exp_plus_the_skew_it_is_accepted_with(
    kms: Kms,
) -> None:
    register(client_id="cl_pay", allowed_scopes=["banking:read", "payments:write"])
    exp = int(time.time()) + 600

    context = token_context(our_token(kms.current, exp=exp))

    assert context["not_after"] == f"{exp + SKEW_S:.3f}"
    assert context["client_scopes"] == "banking:read payments:write"


def test_given_our_token_of_a_client_expiring_first_when_allowed_then_not_after_is_the_clients_expiry(
    kms: Kms,
) -> None:
    expiry = (datetime.now(UTC) + timedelta(seconds=90)).isoformat(timespec="milliseconds")
    register(client_id="cl_pay", allowed_scopes=["banking:read"], expires_at=expiry)

    context = token_context(our_token(kms.current, exp=int(time.time()) + 3600))

    assert context["not_after"] == epoch(expiry)
    assert context["scopes"] == "banking:read"


@pytest.mark.parametrize(
    ("client_expires_in", "bound"),
    [(None, "certificate"), (timedelta(days=90), "certificate"), (timedelta(hours=1), "client")],
)
def test_given_a_certificate_when_allowed_then_not_after_is_the_earliest_of_certificate_and_client(
    table: str, client_expires_in: timedelta | None, bound: str
) -> None:
    # Given a certificate valid for 29 more days, and a client expiring before or after it
    pem, fingerprint = make_certificate("payments.bank.example")
    client_expiry = (utc_now() + client_expires_in).isoformat(timespec="milliseconds") if client_expires_in else None
    client = register(client_id="cl_bank", allowed_scopes=["payments:write"])
    cert_store = DynamoCertificateStore(dynamodb(), TABLE)
    certificates.register(cert_store, stores()[1], "cl_bank", pem, ADMIN, utc_now())
    if client_expiry:
        change_client(client, expires_at=client_expiry)
    cert_not_after: str = dynamodb().get_item(
        TableName=TABLE, Key={"PK": {"S": f"CERT#{fingerprint}"}, "SK": {"S": "CERT"}}
    )["Item"]["not_after"]["S"]
    import functions.authorizer.mtls_handler as module

    importlib.reload(module)
    event = {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {},
        "requestContext": {"identity": {"sourceIp": "198.51.100.4", "clientCert": {"clientCertPem": pem}}},
    }

    context = module.lambda_handler(event, None)["context"]

    assert context["not_after"] == epoch(client_expiry if client_expiry and bound == "client" else cert_not_after)
    assert context["client_scopes"] == "payments:write"
