"""/api/v1/gateway/issuers through the routes function's entry point, on moto: what an admin
stores is what the JWT authorizer reads back, every change is audited, bad input changes nothing."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from functions.authorizer.issuers import IssuerDirectory
from gateway_core.issuer_keys import issuer_id
from gateway_core.settings import settings
from tests.integration.conftest import create_data_table
from tests.integration.helpers import REGION
from tests.integration.test_clients_api import ADMIN, READER, Api, _items

TABLE = "gateway-data-clients-api"  # the table the shared Api helper's tests use
OWN_ISSUER = "https://gateway.bank.example/prod"
IDP = "https://login.partner.example/tenant-7/v2.0"
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
    settings.cache_clear()  # type: ignore[attr-defined]
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def api(dynamodb: Any) -> Api:
    from functions.routes.handler import lambda_handler

    return Api(lambda_handler)


def test_given_an_issuer_when_registered_then_the_jwt_authorizer_reads_it_back(api: Api, dynamodb: Any) -> None:
    # When
    reply = api.call("POST", "/api/v1/gateway/issuers", NEW_ISSUER)

    # Then
    assert reply.status == 201, reply.text
    body = reply.json
    assert body["issuer_id"] == issuer_id(IDP)
    assert reply.header("Location") == f"/api/v1/gateway/issuers/{issuer_id(IDP)}"
    assert (body["status"], body["version"], body["algorithms"]) == ("active", 1, ["ES256", "RS256"])
    found = IssuerDirectory(ttl_s=0).find(dynamodb, TABLE, None, IDP)
    assert found is not None
    assert found.jwks_url == NEW_ISSUER["jwks_url"]
    assert found.audiences == ("api://bank-gateway",)
    assert found.algorithms == ("ES256", "RS256")
    assert found.allowed_scopes == ("banking:read", "data:read")
    assert (found.tier, found.issuer_id, found.own) == ("professional", issuer_id(IDP), False)


def test_given_an_issuer_when_read_listed_changed_disabled_and_deleted_then_each_step_shows(
    api: Api, dynamodb: Any
) -> None:
    identifier = api.call("POST", "/api/v1/gateway/issuers", NEW_ISSUER).json["issuer_id"]
    path = f"/api/v1/gateway/issuers/{identifier}"

    assert api.call("GET", path).json["issuer"] == IDP
    assert [i["issuer_id"] for i in api.call("GET", "/api/v1/gateway/issuers").json["items"]] == [identifier]
    changed = api.call("PATCH", path, {"allowed_scopes": ["data:read"], "tier": "basic"})
    assert changed.status == 200, changed.text
    assert (changed.json["allowed_scopes"], changed.json["tier"], changed.json["version"]) == (
        ["data:read"],
        "basic",
        2,
    )
    disabled = api.call("PATCH", path, {"status": "disabled"})
    assert disabled.json["status"] == "disabled"
    assert IssuerDirectory(ttl_s=0).find(dynamodb, TABLE, None, IDP) is None  # its tokens are refused
    assert api.call("DELETE", path).status == 204
    assert api.call("GET", path).json["code"] == "issuer_not_found"

    audit = api.call("GET", "/api/v1/audit/events", query={"target": f"issuer/{identifier}"}).json["items"]
    assert sorted(e["action"] for e in audit) == ["issuer.delete", "issuer.register", "issuer.update", "issuer.update"]
    assert {e["actor"] for e in audit} == {ADMIN["client_id"]}


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"algorithms": ["HS256"]}, 422, "unsupported_algorithm"),
        ({"algorithms": ["none"]}, 422, "unsupported_algorithm"),
        ({"allowed_scopes": ["admin"]}, 422, "scope_not_grantable"),
        ({"allowed_scopes": ["banking:everything"]}, 422, "unknown_scope"),
        ({"jwks_url": "http://idp.partner.example/keys"}, 422, "invalid_url"),
        ({"jwks_url": "https://user:pw@idp.partner.example/keys"}, 422, "invalid_url"),
        ({"issuer": "not a url"}, 422, "invalid_url"),
        ({"issuer": OWN_ISSUER}, 409, "own_issuer"),
        ({"audiences": []}, 422, "validation_failed"),
        ({"tier": "platinum"}, 422, "validation_failed"),
        ({"unexpected": 1}, 422, "validation_failed"),
    ],
)
def test_given_bad_input_when_registering_then_a_clear_4xx_and_nothing_stored(
    api: Api, dynamodb: Any, change: dict[str, Any], status: int, code: str
) -> None:
    before = _items(dynamodb)

    reply = api.call("POST", "/api/v1/gateway/issuers", {**NEW_ISSUER, **change})

    assert (reply.status, reply.json["code"]) == (status, code), reply.text
    assert reply.header("Content-Type") == "application/problem+json"
    assert _items(dynamodb) == before


def test_given_a_configured_issuer_when_registered_again_or_changed_badly_then_409_or_422_and_nothing_changes(
    api: Api, dynamodb: Any
) -> None:
    identifier = api.call("POST", "/api/v1/gateway/issuers", NEW_ISSUER).json["issuer_id"]
    before = _items(dynamodb)

    again = api.call("POST", "/api/v1/gateway/issuers", NEW_ISSUER)
    bad_change = api.call("PATCH", f"/api/v1/gateway/issuers/{identifier}", {"algorithms": ["HS512"]})
    null_change = api.call("PATCH", f"/api/v1/gateway/issuers/{identifier}", {"jwks_url": None})

    assert (again.status, again.json["code"]) == (409, "duplicate_issuer")
    assert (bad_change.status, bad_change.json["code"]) == (422, "unsupported_algorithm")
    assert (null_change.status, null_change.json["code"]) == (422, "null_not_allowed")
    assert _items(dynamodb) == before


def test_given_a_caller_without_the_admin_scope_when_managing_issuers_then_403(api: Api, dynamodb: Any) -> None:
    before = _items(dynamodb)

    reply = api.call("POST", "/api/v1/gateway/issuers", NEW_ISSUER, authorizer=READER)

    assert (reply.status, reply.json["code"]) == (403, "insufficient_scope")
    assert _items(dynamodb) == before
