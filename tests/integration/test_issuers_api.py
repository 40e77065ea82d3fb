"""/api/v1/gateway/issuers through the management function's entry point, on moto: what an admin
stores is what the JWT authorizer reads back, every change is audited and flushes the authorizer
cache, bad input changes nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import boto3
import pytest

from functions.authorizer.issuers import IssuerDirectory, external_issuer
from functions.authorizer.jwt_token import Issuer
from functions.routes.dal.issuers_store import DynamoIssuerStore
from functions.routes.logic.clients import ConcurrentChange
from functions.routes.logic.issuers import DuplicateIssuer
from gateway_core.audit import Actor
from gateway_core.issuer_keys import issuer_id, issuer_key
from gateway_core.settings import settings
from tests.integration.conftest import create_data_table, table_items
from tests.integration.helpers import REGION
from tests.integration.test_clients_api import ADMIN, READER, Api, _assert_problem, _next_millisecond

TABLE = "gateway-data-clients-api"  # the table the shared Api helper's tests use
OWN_ISSUER = "https://gateway.bank.example/prod"
REST_API_ID = "abc123"
IDP = "https://login.partner.example/tenant-7/v2.0"
ISSUERS = "/api/v1/gateway/issuers"
NEW_ISSUER: dict[str, Any] = {
    "issuer": IDP,
    "jwks_url": "https://login.partner.example/tenant-7/keys",
    "audiences": ["api://bank-gateway"],
    "algorithms": ["RS256", "ES256"],
    "allowed_scopes": ["banking:read", "data:read"],
    "tier": "professional",
}


@pytest.fixture
def dynamodb(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    create_data_table(TABLE)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("TOKEN_ISSUER", OWN_ISSUER)
    monkeypatch.setenv("REST_API_ID", REST_API_ID)
    monkeypatch.setenv("STAGE", "test")
    settings.cache_clear()
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def flushes(dynamodb: Any) -> list[tuple[str, str]]:
    """(rest api id, stage) of every FlushStageAuthorizersCache call the management function makes,
    seen on its boto3 client (moto does not implement the operation; the call is still made)."""
    from gateway_core import aws as gateway_aws

    calls: list[tuple[str, str]] = []

    def record(model: Any = None, params: Any = None, **_: Any) -> None:
        if model is not None and model.name == "FlushStageAuthorizersCache":
            # the serialized request: /restapis/<id>/stages/<stage>/cache/authorizers
            parts = params["url_path"].split("/")
            calls.append((parts[2], parts[4]))

    gateway_aws.client("apigateway").meta.events.register("before-call.*.*", record)
    return calls


@pytest.fixture
def api(dynamodb: Any, flushes: list[tuple[str, str]]) -> Api:
    from functions.routes.management_handler import lambda_handler

    return Api(lambda_handler)


def _register(api: Api, **overrides: Any) -> dict[str, Any]:
    reply = api.call("POST", ISSUERS, {**NEW_ISSUER, **overrides})
    assert reply.status == 201, reply.text
    body: dict[str, Any] = reply.json
    return body


def _stored(dynamodb: Any, identifier: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = dynamodb.get_item(
        TableName=TABLE, Key=issuer_key(identifier), ConsistentRead=True
    ).get("Item")
    return item


# --- what the JWT authorizer reads back -------------------------------------------------------------


def test_given_an_issuer_when_registered_then_the_jwt_authorizer_reads_it_back(
    api: Api, dynamodb: Any, flushes: list[tuple[str, str]]
) -> None:
    # When
    reply = api.call("POST", ISSUERS, NEW_ISSUER)

    # Then
    assert reply.status == 201, reply.text
    body = reply.json
    assert body["issuer_id"] == issuer_id(IDP)
    assert reply.header("Location") == f"{ISSUERS}/{issuer_id(IDP)}"
    assert (body["status"], body["version"], body["algorithms"]) == ("active", 1, ["ES256", "RS256"])
    found = IssuerDirectory(ttl_s=0).find(dynamodb, TABLE, None, IDP)
    assert found == Issuer(
        issuer=IDP,
        jwks_url=NEW_ISSUER["jwks_url"],
        audiences=("api://bank-gateway",),
        algorithms=("ES256", "RS256"),
        issuer_id=issuer_id(IDP),
        allowed_scopes=("banking:read", "data:read"),
        tier="professional",
    )
    assert found.own is False
    assert flushes == [(REST_API_ID, "test")]


def test_given_a_registered_issuer_when_its_item_is_read_then_the_attributes_have_the_authorizers_types(
    api: Api, dynamodb: Any
) -> None:
    # Given
    identifier = _register(api)["issuer_id"]

    # When
    item = _stored(dynamodb, identifier)

    # Then
    assert item is not None
    assert {k: item[k] for k in ("issuer", "jwks_url", "issuer_id", "tier", "status")} == {
        "issuer": {"S": IDP},
        "jwks_url": {"S": NEW_ISSUER["jwks_url"]},
        "issuer_id": {"S": identifier},
        "tier": {"S": "professional"},
        "status": {"S": "active"},
    }
    assert item["audiences"] == {"L": [{"S": "api://bank-gateway"}]}
    assert item["algorithms"] == {"L": [{"S": "ES256"}, {"S": "RS256"}]}
    assert item["allowed_scopes"] == {"L": [{"S": "banking:read"}, {"S": "data:read"}]}
    assert item["version"] == {"N": "1"}
    assert item["GSI1PK"] == {"S": "ISSUERS"}
    assert item["GSI1SK"] == {"S": f"{item['created_at']['S']}#{identifier}"}
    assert external_issuer(item) == IssuerDirectory(ttl_s=0).find(dynamodb, TABLE, None, IDP)


def test_given_an_issuer_without_scopes_when_registered_then_defaults_apply_and_the_authorizer_reads_them(
    api: Api, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8")  # a local identity provider, as `make local` allows
    reply = api.call("POST", ISSUERS, {"issuer": IDP, "jwks_url": "http://127.0.0.1:9000/jwks", "audiences": ["aud"]})

    assert reply.status == 201, reply.text
    body = reply.json
    assert (body["algorithms"], body["allowed_scopes"], body["tier"]) == (["RS256"], [], "free")
    found = IssuerDirectory(ttl_s=0).find(dynamodb, TABLE, None, IDP)
    assert found is not None
    assert (found.jwks_url, found.algorithms, found.allowed_scopes, found.tier) == (
        "http://127.0.0.1:9000/jwks",
        ("RS256",),
        (),
        "free",
    )


# --- the lifecycle -------------------------------------------------------------------------------


def test_given_an_issuer_when_read_listed_changed_disabled_and_deleted_then_each_step_shows(
    api: Api, dynamodb: Any, flushes: list[tuple[str, str]]
) -> None:
    identifier = _register(api)["issuer_id"]
    path = f"{ISSUERS}/{identifier}"

    assert api.call("GET", path).json["issuer"] == IDP
    assert [i["issuer_id"] for i in api.call("GET", ISSUERS).json["items"]] == [identifier]
    changed = api.change("PATCH", path, {"allowed_scopes": ["data:read"], "tier": "basic"})
    assert changed.status == 200, changed.text
    assert (changed.json["allowed_scopes"], changed.json["tier"], changed.json["version"]) == (
        ["data:read"],
        "basic",
        2,
    )
    found = IssuerDirectory(ttl_s=0).find(dynamodb, TABLE, None, IDP)
    assert found is not None
    assert (found.allowed_scopes, found.tier) == (("data:read",), "basic")

    disabled = api.change("PATCH", path, {"status": "disabled"})
    assert (disabled.json["status"], disabled.json["version"]) == ("disabled", 3)
    stored = _stored(dynamodb, identifier)
    assert stored is not None
    assert external_issuer(stored) is None
    assert IssuerDirectory(ttl_s=0).find(dynamodb, TABLE, None, IDP) is None  # its tokens are refused

    assert api.call("DELETE", path).status == 204
    _assert_problem(api.call("GET", path), 404, "issuer_not_found")
    assert _stored(dynamodb, identifier) is None
    assert len(flushes) == 4  # register, change, disable, delete

    audit = api.call("GET", "/api/v1/audit/events", query={"target": f"issuer/{identifier}"}).json["items"]
    assert sorted(e["action"] for e in audit) == ["issuer.delete", "issuer.register", "issuer.update", "issuer.update"]
    assert {e["actor"] for e in audit} == {ADMIN["client_id"]}
    assert {e["target"] for e in audit} == {f"issuer/{identifier}"}
    register_event = next(e for e in audit if e["action"] == "issuer.register")
    delete_event = next(e for e in audit if e["action"] == "issuer.delete")
    assert (register_event["before_hash"], delete_event["after_hash"]) == (None, None)
    assert register_event["after_hash"]
    assert delete_event["before_hash"]


def test_given_a_disabled_issuer_when_enabled_again_then_the_authorizer_accepts_it_again(
    api: Api, dynamodb: Any
) -> None:
    path = f"{ISSUERS}/{_register(api)['issuer_id']}"
    assert api.change("PATCH", path, {"status": "disabled"}).status == 200

    enabled = api.change("PATCH", path, {"status": "active"})

    assert (enabled.status, enabled.json["status"]) == (200, "active")
    assert IssuerDirectory(ttl_s=0).find(dynamodb, TABLE, None, IDP) is not None


def test_given_issuers_when_listed_then_newest_first_over_pages(api: Api) -> None:
    # Given
    ids = []
    for n in range(3):
        ids.append(_register(api, issuer=f"https://idp-{n}.partner.example/")["issuer_id"])
        _next_millisecond()

    # When
    everyone = api.call("GET", ISSUERS)
    page_one = api.call("GET", ISSUERS, query={"limit": "2"})
    cursor = page_one.json["next_cursor"]
    page_two = api.call("GET", ISSUERS, query={"limit": "2", "cursor": cursor or ""})

    # Then
    assert [i["issuer_id"] for i in everyone.json["items"]] == ids[::-1]
    assert everyone.json["next_cursor"] is None
    assert [i["issuer_id"] for i in page_one.json["items"]] == ids[:0:-1]
    assert cursor
    assert [i["issuer_id"] for i in page_two.json["items"]] == ids[:1]
    assert page_two.json["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"limit": "0"}, 422, "validation_failed"),
        ({"limit": "101"}, 422, "validation_failed"),
        ({"cursor": "!!!"}, 400, "invalid_cursor"),
    ],
)
def test_given_bad_list_parameters_when_listing_then_a_problem(
    api: Api, query: dict[str, str], status: int, code: str
) -> None:
    _assert_problem(api.call("GET", ISSUERS, query=query), status, code)


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"algorithms": ["HS256"]}, 422, "unsupported_algorithm"),
        ({"algorithms": ["none"]}, 422, "unsupported_algorithm"),
        ({"allowed_scopes": ["admin"]}, 422, "scope_not_grantable"),
        ({"allowed_scopes": ["banking:everything"]}, 422, "unknown_scope"),
        ({"jwks_url": "http://idp.partner.example/keys"}, 422, "invalid_url"),
        ({"jwks_url": "http://127.0.0.2:9000/keys"}, 422, "invalid_url"),
        ({"jwks_url": "https://user:pw@idp.partner.example/keys"}, 422, "invalid_url"),
        ({"jwks_url": "https://169.254.169.254/latest/meta-data/"}, 422, "url_not_allowed"),
        ({"jwks_url": "https://[fd00:ec2::254]/jwks"}, 422, "url_not_allowed"),
        ({"jwks_url": "https://2852039166/jwks"}, 422, "url_not_allowed"),
        ({"jwks_url": "https://0xa9.0xfe.0xa9.0xfe/jwks"}, 422, "url_not_allowed"),
        ({"jwks_url": "https://192.168.0.10/jwks"}, 422, "url_not_allowed"),
        ({"issuer": "not a url"}, 422, "invalid_url"),
        ({"issuer": IDP + "?tenant=7"}, 422, "invalid_url"),
        ({"issuer": IDP + "#frag"}, 422, "invalid_url"),
        ({"issuer": "http://login.partner.example/v2.0"}, 422, "invalid_url"),
        ({"issuer": OWN_ISSUER}, 409, "own_issuer"),
        ({"issuer": OWN_ISSUER + "/"}, 409, "own_issuer"),
        ({"audiences": [" "]}, 422, "invalid_audiences"),
        ({"audiences": []}, 422, "validation_failed"),
        ({"audiences": [f"aud-{n}" for n in range(11)]}, 422, "validation_failed"),
        ({"issuer": "https://idp.example/" + "i" * 600}, 422, "validation_failed"),
        ({"tier": "platinum"}, 422, "validation_failed"),
        ({"unexpected": 1}, 422, "validation_failed"),
    ],
)
def test_given_bad_input_when_registering_then_a_clear_4xx_and_nothing_stored(
    api: Api, dynamodb: Any, flushes: list[tuple[str, str]], change: dict[str, Any], status: int, code: str
) -> None:
    before = table_items(dynamodb, TABLE)

    reply = api.call("POST", ISSUERS, {**NEW_ISSUER, **change})

    _assert_problem(reply, status, code)
    assert table_items(dynamodb, TABLE) == before
    assert flushes == []


def test_given_a_configured_issuer_when_registered_again_then_409_and_nothing_changes(api: Api, dynamodb: Any) -> None:
    _register(api)
    before = table_items(dynamodb, TABLE)

    again = api.call("POST", ISSUERS, {**NEW_ISSUER, "tier": "enterprise"})

    _assert_problem(again, 409, "duplicate_issuer")
    assert table_items(dynamodb, TABLE) == before


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"algorithms": ["HS512"]}, "unsupported_algorithm"),
        ({"algorithms": ["none"]}, "unsupported_algorithm"),
        ({"allowed_scopes": ["admin", "data:read"]}, "scope_not_grantable"),
        ({"allowed_scopes": ["root"]}, "unknown_scope"),
        ({"jwks_url": "http://keys.partner.example/"}, "invalid_url"),
        ({"jwks_url": "https://169.254.169.254/latest/meta-data/"}, "url_not_allowed"),
        ({"jwks_url": "https://[::ffff:169.254.169.254]/jwks"}, "url_not_allowed"),
        ({"jwks_url": "https://0251.0376.0251.0376/jwks"}, "url_not_allowed"),
        ({"jwks_url": "https://10.0.0.8/jwks"}, "url_not_allowed"),
        ({"jwks_url": None}, "null_not_allowed"),
        ({"audiences": [""]}, "invalid_audiences"),
        ({"audiences": []}, "validation_failed"),
        ({"issuer": "https://other.partner.example/"}, "validation_failed"),  # the identity never changes
        ({"status": "suspended"}, "validation_failed"),
        ({"tier": "platinum"}, "validation_failed"),
        ({"version": 9}, "validation_failed"),
    ],
)
def test_given_a_configured_issuer_when_changed_badly_then_422_and_nothing_changes(
    api: Api, dynamodb: Any, flushes: list[tuple[str, str]], change: dict[str, Any], code: str
) -> None:
    # Given
    identifier = _register(api)["issuer_id"]
    before = table_items(dynamodb, TABLE)
    flushes.clear()

    # When
    reply = api.change("PATCH", f"{ISSUERS}/{identifier}", change)

    # Then
    _assert_problem(reply, 422, code)
    assert table_items(dynamodb, TABLE) == before
    assert flushes == []


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("PATCH", {"status": "disabled"}), ("DELETE", None)])
def test_given_an_unknown_issuer_id_when_addressed_then_404_and_nothing_changes(
    api: Api, dynamodb: Any, method: str, body: dict[str, Any] | None
) -> None:
    _register(api)
    before = table_items(dynamodb, TABLE)

    reply = api.call(method, f"{ISSUERS}/iss_000000000000000000000000", body)

    _assert_problem(reply, 404, "issuer_not_found")
    assert table_items(dynamodb, TABLE) == before


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "", NEW_ISSUER),
        ("GET", "", None),
        ("GET", "/IDENT", None),
        ("PATCH", "/IDENT", {"status": "disabled"}),
        ("DELETE", "/IDENT", None),
    ],
)
def test_given_a_caller_without_the_admin_scope_when_managing_issuers_then_403(
    api: Api, dynamodb: Any, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    identifier = _register(api, issuer="https://existing.partner.example/")["issuer_id"]
    before = table_items(dynamodb, TABLE)

    reply = api.call(method, ISSUERS + suffix.replace("IDENT", identifier), body, authorizer=READER)

    problem = _assert_problem(reply, 403, "insufficient_scope")
    assert problem["required_scope"] == "admin"
    assert table_items(dynamodb, TABLE) == before


def test_given_a_stale_version_when_the_store_writes_then_concurrent_change_and_nothing_written(
    api: Api, dynamodb: Any
) -> None:
    # Given: an issuer another admin has changed since it was read
    identifier = _register(api)["issuer_id"]
    store = DynamoIssuerStore(dynamodb, TABLE)
    stale = store.get(identifier)
    assert stale is not None
    assert api.change("PATCH", f"{ISSUERS}/{identifier}", {"tier": "basic"}).status == 200
    before = table_items(dynamodb, TABLE)
    actor = Actor("admin-2", "api_key", "k9", "req-9")

    # When / Then
    with pytest.raises(ConcurrentChange):
        store.replace(stale, replace(stale, status="disabled", version=stale.version + 1), actor)
    with pytest.raises(ConcurrentChange):
        store.delete(stale, actor)
    with pytest.raises(DuplicateIssuer):
        store.create(stale, actor)
    assert table_items(dynamodb, TABLE) == before


def test_given_an_issuer_deleted_after_it_was_read_when_the_stale_read_is_written_then_it_stays_deleted(
    api: Api, dynamodb: Any
) -> None:
    # Given: an issuer at version 1, read by one admin, then deleted by another
    identifier = _register(api)["issuer_id"]
    store = DynamoIssuerStore(dynamodb, TABLE)
    read = store.get(identifier)
    assert read is not None
    assert read.version == 1
    assert api.call("DELETE", f"{ISSUERS}/{identifier}").status == 204
    before = table_items(dynamodb, TABLE)

    # When / Then: the first admin's change does not bring it back (it would be trusted again)
    with pytest.raises(ConcurrentChange):
        store.replace(read, replace(read, status="disabled", version=2), Actor("admin-2", "api_key", "k9", "req-9"))
    assert table_items(dynamodb, TABLE) == before
    assert store.get(identifier) is None
