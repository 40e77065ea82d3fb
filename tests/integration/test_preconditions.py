"""Two admins cannot overwrite each other (README, traffic management): every resource the
management API changes in place answers its version as `ETag`, and every PUT or PATCH of an
existing one needs it back in `If-Match` (428 without, 412 when stale, `*` for whatever is there);
DELETE honours an `If-Match` when one is sent. Through the management function's entry point, on
moto; upstream secrets, which a PUT may also create, are in test_upstream_secrets.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from gateway_core.settings import settings
from tests.integration.conftest import create_data_table, table_items
from tests.integration.helpers import REGION
from tests.integration.test_clients_api import REGISTRATION, _assert_problem
from tests.integration.test_gateways_api import GATEWAYS, NEW_GATEWAY, ROUTES, Api, Reply, route_spec
from tests.integration.test_issuers_api import NEW_ISSUER, OWN_ISSUER, REST_API_ID

TABLE = "gateway-data-preconditions"


@dataclass(frozen=True)
class Target:
    """A resource to change: `method` `path` with `body`; its ETag is read from `read`."""

    method: str
    path: str
    body: dict[str, Any]
    read: str
    delete: str | None  # the DELETE that honours If-Match, where there is one
    created: Reply | None  # the create answer, where the resource has one


def _client(api: Api) -> Target:
    created = api.call("POST", "/api/v1/clients/register", REGISTRATION)
    path = f"/api/v1/clients/{created.json['client_id']}"
    return Target("PUT", path, {"description": "changed"}, path, path, created)


def _key(api: Api) -> Target:
    client_id = api.call("POST", "/api/v1/clients/register", REGISTRATION).json["client_id"]
    created = api.call("POST", "/api/v1/gateway/keys", {"client_id": client_id, "name": "ci"})
    path = f"/api/v1/gateway/keys/{created.json['key_id']}"
    return Target("PUT", path, {"name": "renamed"}, path, path, created)


def _issuer(api: Api) -> Target:
    created = api.call("POST", "/api/v1/gateway/issuers", NEW_ISSUER)
    path = f"/api/v1/gateway/issuers/{created.json['issuer_id']}"
    return Target("PATCH", path, {"tier": "basic"}, path, path, created)


def _denylist(api: Api) -> Target:
    path = "/api/v1/gateway/ip-denylist"
    return Target("PUT", path, {"cidrs": ["203.0.113.0/24"]}, path, None, None)


def _gateway(api: Api) -> Target:
    created = api.call("POST", GATEWAYS, NEW_GATEWAY)
    path = f"{GATEWAYS}/{created.json['gateway_id']}"
    return Target("PUT", path, {**NEW_GATEWAY, "description": "changed"}, path, path, created)


def _route(api: Api) -> Target:
    gateway_id = api.gateway()["gateway_id"]
    created = api.call("POST", ROUTES, route_spec(gateway_id))
    path = f"{ROUTES}/{created.json['route_id']}"
    return Target("PUT", path, route_spec(gateway_id, name="renamed"), path, path, created)


def _canary(api: Api) -> Target:
    gateway_id = api.gateway()["gateway_id"]
    api.route(gateway_id)
    api.deploy(gateway_id)
    api.deploy(gateway_id, strategy="canary", canary_percent=10)
    path = f"{GATEWAYS}/{gateway_id}"
    return Target("PUT", f"{path}/canary", {"percent": 20}, path, None, None)


TARGETS: dict[str, Callable[[Api], Target]] = {
    "client": _client,
    "key": _key,
    "issuer": _issuer,
    "denylist": _denylist,
    "gateway": _gateway,
    "route": _route,
    "canary": _canary,
}


@pytest.fixture
def dynamodb(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    create_data_table(TABLE)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("STAGE", "test")
    monkeypatch.setenv("TOKEN_ISSUER", OWN_ISSUER)
    monkeypatch.setenv("REST_API_ID", REST_API_ID)
    monkeypatch.delenv("UPSTREAM_ALLOW_CIDRS", raising=False)
    monkeypatch.delenv("UPSTREAM_REQUIRE_HTTPS", raising=False)
    settings.cache_clear()
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture(params=sorted(TARGETS))
def target(request: pytest.FixtureRequest, dynamodb: Any) -> tuple[Api, Target]:
    api = Api()
    return api, TARGETS[request.param](api)


def _version(api: Api, read: str) -> int:
    reply = api.call("GET", read)
    assert reply.status == 200, reply.text
    version: int = reply.json["version"]
    return version


def test_every_read_create_and_change_answers_the_version_as_etag(target: tuple[Api, Target]) -> None:
    api, it = target
    read = api.call("GET", it.read)
    assert read.header("ETag") == f'"{read.json["version"]}"'
    if it.created is not None:
        assert it.created.status == 201, it.created.text
        assert it.created.header("ETag") == f'"{it.created.json["version"]}"'

    changed = api.call(it.method, it.path, it.body, headers={"If-Match": read.header("ETag") or ""})

    assert changed.status == 200, changed.text
    assert changed.header("ETag") == f'"{read.json["version"] + 1}"'
    assert api.call("GET", it.read).header("ETag") == changed.header("ETag")


def test_a_change_without_if_match_is_428_and_changes_nothing(target: tuple[Api, Target], dynamodb: Any) -> None:
    api, it = target
    before = table_items(dynamodb, TABLE)

    refused = api.call(it.method, it.path, it.body)

    problem = _assert_problem(refused, 428, "precondition_required")
    assert "If-Match" in problem["detail"]
    assert "ETag" in problem["detail"]
    assert table_items(dynamodb, TABLE) == before


def test_a_change_with_a_stale_if_match_is_412_and_changes_nothing(target: tuple[Api, Target], dynamodb: Any) -> None:
    api, it = target
    current = _version(api, it.read)
    before = table_items(dynamodb, TABLE)

    # Versions start at 0 (the denylist) or 1: an older one only where there is one.
    for stale in [f'"{v}"' for v in (current + 1, current - 1) if v >= 0]:
        refused = api.call(it.method, it.path, it.body, headers={"If-Match": stale})
        problem = _assert_problem(refused, 412, "version_mismatch")
        assert problem["current_version"] == current

    assert table_items(dynamodb, TABLE) == before


def test_a_change_with_if_match_any_overwrites_whatever_is_there(target: tuple[Api, Target]) -> None:
    api, it = target
    current = _version(api, it.read)

    changed = api.call(it.method, it.path, it.body, headers={"If-Match": "*"})

    assert changed.status == 200, changed.text
    assert _version(api, it.read) == current + 1


@pytest.mark.parametrize("resource", ["client", "key", "issuer", "gateway", "route"])
def test_a_delete_with_a_stale_if_match_is_412_and_one_with_the_etag_goes_through(resource: str, dynamodb: Any) -> None:
    api = Api()
    it = TARGETS[resource](api)
    assert it.delete is not None
    read = api.call("GET", it.read)
    before = table_items(dynamodb, TABLE)

    _assert_problem(api.call("DELETE", it.delete, headers={"If-Match": '"99"'}), 412, "version_mismatch")
    assert table_items(dynamodb, TABLE) == before

    done = api.call("DELETE", it.delete, headers={"If-Match": read.header("ETag") or ""})
    assert done.status in (200, 204), done.text
    if done.status == 200:  # a key's revocation keeps it: its new version is its ETag
        assert done.header("ETag") == f'"{read.json["version"] + 1}"'


@pytest.mark.usefixtures("dynamodb")
def test_the_denylist_starts_at_version_0_and_its_first_change_needs_that_etag() -> None:
    """Nothing stored yet: the list is empty at version 0, its ETag "0" the If-Match of the
    first change."""
    api = Api()
    read = api.call("GET", "/api/v1/gateway/ip-denylist")
    assert (read.json["version"], read.header("ETag")) == (0, '"0"')

    _assert_problem(
        api.call("PUT", "/api/v1/gateway/ip-denylist", {"cidrs": []}, headers={"If-Match": '"1"'}),
        412,
        "version_mismatch",
    )
    changed = api.call("PUT", "/api/v1/gateway/ip-denylist", {"cidrs": []}, headers={"If-Match": '"0"'})
    assert (changed.status, changed.header("ETag")) == (200, '"1"')


@pytest.mark.parametrize("resource", ["client", "key", "issuer"])
def test_an_item_stored_without_a_version_reads_as_version_1_and_can_be_changed(resource: str, dynamodb: Any) -> None:
    """Items written before they carried a version (README: treated as version 1)."""
    api = Api()
    it = TARGETS[resource](api)
    prefix = {"client": "CLIENT#", "key": "APIKEY#", "issuer": "ISSUER#"}[resource]
    for item in table_items(dynamodb, TABLE):
        if item["PK"]["S"].startswith(prefix) and "version" in item:
            dynamodb.update_item(
                TableName=TABLE, Key={"PK": item["PK"], "SK": item["SK"]}, UpdateExpression="REMOVE version"
            )
    read = api.call("GET", it.read)
    assert (read.json["version"], read.header("ETag")) == (1, '"1"')

    changed = api.call(it.method, it.path, it.body, headers={"If-Match": '"1"'})

    assert (changed.status, changed.header("ETag")) == (200, '"2"'), changed.text


@pytest.mark.parametrize("value", ['"-1"', '"1_0"', '"+3"', '"٣"', '"3', "3 4", '"1234567890123"'])
def test_an_if_match_that_is_not_an_etag_we_issue_is_400(value: str) -> None:
    from gateway_core.api_caller import IF_MATCH

    # int() takes several of these; the ETags we issue are ASCII digits, quoted or not.
    assert IF_MATCH.fullmatch(value) is None
    assert IF_MATCH.fullmatch('W/"12"') is not None
