"""/api/v1/gateways and /api/v1/gateway/routes through the management function's entry point, on moto:
gateways, their routes (drafts), scopes, deployments (versions, canary, staged, rollback), the
serving index the proxy reads, large versions split over items, and the scheduled health checks."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from functions.routes.dal.gateways_store import DEPLOYMENTS_KEY, DynamoGatewayStore
from functions.routes.dal.serving_cache import HEALTH_KEY
from functions.routes.logic.route_spec import Route
from gateway_core import aws as gateway_aws
from gateway_core.clock import iso, utc_now
from gateway_core.settings import settings
from tests.integration.conftest import create_data_table, table_items
from tests.integration.helpers import REGION, FakeLambdaContext, proxy_event
from tests.integration.test_clients_api import ADMIN, READER, Reply, _assert_problem, _next_millisecond
from tests.upstreams import JsonUpstream

TABLE = "gateway-data-gateways-api"
GATEWAYS = "/api/v1/gateways"
ROUTES = "/api/v1/gateway/routes"
GATEWAY_READER = {**ADMIN, "client_id": "gw-reader-1", "scopes": "gateway:read", "credential_id": "k3"}
PUBLIC_TARGET = "https://orders.public-looking.example"  # validated only, never called
NEW_GATEWAY: dict[str, Any] = {"name": "Payments", "description": "Payment APIs", "base_path": "/payments"}


class Api:
    """Calls the management function as API Gateway would, behind our authorizer, with any headers."""

    def __init__(self) -> None:
        from functions.routes.health_handler import lambda_handler as health_handler
        from functions.routes.management_handler import lambda_handler

        # Both take Lambda's context; FakeLambdaContext has its fields.
        self.handler: Callable[[dict[str, Any], Any], dict[str, Any]] = lambda_handler
        # The scheduled health checks run in the health function.
        self.health_task: Callable[[dict[str, Any], Any], dict[str, Any]] = health_handler
        self.calls = 0

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        authorizer: dict[str, Any] | None = None,
    ) -> Reply:
        self.calls += 1
        event = proxy_event(
            method,
            path,
            body=json.dumps(body) if body is not None else None,
            headers={"Content-Type": "application/json", **(headers or {})},
            authorizer=ADMIN if authorizer is None else authorizer,
            request_id=f"req-{self.calls}",
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

    def gateway(self, **overrides: Any) -> dict[str, Any]:
        reply = self.call("POST", GATEWAYS, {**NEW_GATEWAY, **overrides})
        assert reply.status == 201, reply.text
        body: dict[str, Any] = reply.json
        return body

    def route(self, gateway_id: str, **overrides: Any) -> dict[str, Any]:
        reply = self.call("POST", ROUTES, route_spec(gateway_id, **overrides))
        assert reply.status == 201, reply.text
        body: dict[str, Any] = reply.json
        return body

    def deploy(self, gateway_id: str, **body: Any) -> dict[str, Any]:
        reply = self.call("POST", f"{GATEWAYS}/{gateway_id}/deploy", body)
        assert reply.status == 201, reply.text
        deployment: dict[str, Any] = reply.json["deployment"]
        return deployment


def route_spec(gateway_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "gateway_id": gateway_id,
        "name": "Get order",
        "method": "GET",
        "path": "/orders/{id}",
        "targets": [{"url": PUBLIC_TARGET}],
        **overrides,
    }


@pytest.fixture
def dynamodb(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    create_data_table(TABLE)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("STAGE", "test")
    monkeypatch.delenv("UPSTREAM_ALLOW_CIDRS", raising=False)  # the SSRF guard's defaults
    monkeypatch.delenv("UPSTREAM_REQUIRE_HTTPS", raising=False)
    settings.cache_clear()
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def api(dynamodb: Any) -> Api:
    return Api()


def _items(dynamodb: Any) -> list[dict[str, Any]]:
    return table_items(dynamodb, TABLE)


def _served(dynamodb: Any, gateway_id: str) -> dict[str, Any] | None:
    """The gateway's entry in CONFIG/DEPLOYMENTS, the one item the proxy reads to know what serves."""
    item = dynamodb.get_item(TableName=TABLE, Key=DEPLOYMENTS_KEY, ConsistentRead=True).get("Item") or {}
    entry = item.get(f"gw_{gateway_id}")
    return json.loads(entry["S"]) if entry else None


def _serving(dynamodb: Any, gateway_id: str) -> tuple[Any, Any, Any, Any]:
    entry = _served(dynamodb, gateway_id)
    assert entry is not None
    return (entry["latest_version"], entry["active_version"], entry["canary_version"], entry["canary_percent"])


def _ids(reply: Reply, key: str) -> list[str]:
    assert reply.status == 200, reply.text
    return [i[key] for i in reply.json["items"]]


# --- gateways --------------------------------------------------------------------------------


def test_given_a_gateway_spec_when_created_then_201_with_location_etag_and_it_reads_back(
    api: Api, dynamodb: Any
) -> None:
    # When
    reply = api.call("POST", GATEWAYS, NEW_GATEWAY)

    # Then
    assert reply.status == 201, reply.text
    body = reply.json
    gateway_id = body["gateway_id"]
    assert gateway_id.startswith("gw_")
    assert reply.header("Location") == f"{GATEWAYS}/{gateway_id}"
    assert reply.header("ETag") == '"1"'
    assert (body["name"], body["base_path"], body["status"], body["version"]) == ("Payments", "/payments", "active", 1)
    assert body["deployment"] == {
        "latest_version": 0,
        "active_version": None,
        "canary_version": None,
        "canary_percent": 0,
    }
    got = api.call("GET", f"{GATEWAYS}/{gateway_id}")
    assert got.status == 200, got.text
    assert got.json == body
    assert got.header("ETag") == '"1"'
    assert _serving(dynamodb, gateway_id) == (0, None, None, 0)  # indexed, nothing serves yet
    _assert_problem(api.call("GET", f"{GATEWAYS}/gw_0000000000000000"), 404, "gateway_not_found")


def test_given_gateways_when_listed_then_newest_first_over_pages(api: Api) -> None:
    # Given
    ids = []
    for n in range(3):
        ids.append(api.gateway(name=f"Gateway {n}", base_path=f"/g{n}")["gateway_id"])
        _next_millisecond()

    # When
    everyone = api.call("GET", GATEWAYS)
    page_one = api.call("GET", GATEWAYS, query={"limit": "2"})
    cursor = page_one.json["next_cursor"]
    page_two = api.call("GET", GATEWAYS, query={"limit": "2", "cursor": cursor or ""})

    # Then
    assert _ids(everyone, "gateway_id") == ids[::-1]
    assert everyone.json["next_cursor"] is None
    assert _ids(page_one, "gateway_id") == ids[:0:-1]
    assert cursor
    assert _ids(page_two, "gateway_id") == ids[:1]
    assert page_two.json["next_cursor"] is None


def test_given_a_gateway_when_another_takes_its_name_or_base_path_then_409_and_nothing_changes(
    api: Api, dynamodb: Any
) -> None:
    # Given
    api.gateway()
    before = _items(dynamodb)

    for second, what in [
        ({"name": "PAYMENTS", "base_path": "/other"}, "the name (in any case)"),
        ({"name": "Other", "base_path": "/payments"}, "the base path"),
    ]:
        # When
        reply = api.call("POST", GATEWAYS, {**NEW_GATEWAY, **second})

        # Then
        _assert_problem(reply, 409, "duplicate_gateway")
        assert _items(dynamodb) == before, what


def test_given_a_gateway_when_put_with_the_current_if_match_then_200_next_version_and_new_etag(api: Api) -> None:
    # Given
    gateway_id = api.gateway()["gateway_id"]
    path = f"{GATEWAYS}/{gateway_id}"
    etag = api.call("GET", path).header("ETag")
    assert etag == '"1"'

    # When
    changed = api.call("PUT", path, {**NEW_GATEWAY, "description": "Renamed"}, headers={"If-Match": etag})

    # Then
    assert changed.status == 200, changed.text
    assert (changed.json["description"], changed.json["version"]) == ("Renamed", 2)
    assert changed.header("ETag") == '"2"'
    assert api.call("GET", path).json == changed.json
    # a weak validator names the same version
    weak = api.call("PUT", path, {**NEW_GATEWAY, "description": "Again"}, headers={"If-Match": 'W/"2"'})
    assert (weak.status, weak.header("ETag")) == (200, '"3"')


def test_given_a_changed_gateway_when_put_with_a_stale_if_match_then_412_and_nothing_changes(
    api: Api, dynamodb: Any
) -> None:
    # Given: version 2, an admin still holding version 1
    gateway_id = api.gateway()["gateway_id"]
    path = f"{GATEWAYS}/{gateway_id}"
    assert api.change("PUT", path, {**NEW_GATEWAY, "description": "v2"}).status == 200
    before = _items(dynamodb)

    # When
    stale = api.call("PUT", path, {**NEW_GATEWAY, "description": "lost"}, headers={"If-Match": '"1"'})

    # Then
    _assert_problem(stale, 412, "version_mismatch")
    assert _items(dynamodb) == before


def test_given_a_malformed_if_match_when_put_then_400_and_nothing_changes(api: Api, dynamodb: Any) -> None:
    gateway_id = api.gateway()["gateway_id"]
    before = _items(dynamodb)

    for value in ["abc", '"two"', "*x", ""]:
        reply = api.call("PUT", f"{GATEWAYS}/{gateway_id}", NEW_GATEWAY, headers={"If-Match": value})

        _assert_problem(reply, 400, "invalid_if_match")
        assert _items(dynamodb) == before, value


def test_given_two_gateways_when_one_is_renamed_to_the_others_name_then_409(api: Api, dynamodb: Any) -> None:
    api.gateway()
    other = api.gateway(name="Other", base_path="/other")["gateway_id"]
    before = _items(dynamodb)

    reply = api.change("PUT", f"{GATEWAYS}/{other}", {**NEW_GATEWAY, "base_path": "/other"})

    _assert_problem(reply, 409, "duplicate_gateway")
    assert _items(dynamodb) == before


@pytest.mark.parametrize(
    ("method", "suffix", "body", "if_match", "status"),
    [
        ("PUT", "", {**NEW_GATEWAY, "description": "mine"}, "*", 409),
        # the version If-Match named was current when read, not when written: the precondition failed
        ("PUT", "", {**NEW_GATEWAY, "description": "mine"}, '"1"', 412),
        ("POST", "/deploy", {}, None, 409),
    ],
    ids=["put-any", "put-version", "deploy"],
)
def test_given_a_gateway_changed_meanwhile_when_its_write_loses_the_race_then_4xx_not_500(
    api: Api, dynamodb: Any, method: str, suffix: str, body: dict[str, Any], if_match: str | None, status: int
) -> None:
    # Given: another admin changes the gateway between this request's read and its write
    gateway_id = api.gateway()["gateway_id"]
    client = gateway_aws.client("dynamodb")  # the management function's client
    raced: list[bool] = []

    def concurrent_admin(**_: Any) -> None:
        if not raced:
            raced.append(True)
            dynamodb.update_item(
                TableName=TABLE,
                Key={"PK": {"S": f"GATEWAY#{gateway_id}"}, "SK": {"S": "GATEWAY"}},
                UpdateExpression="SET version = :v",
                ExpressionAttributeValues={":v": {"N": "2"}},
            )

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", concurrent_admin)
    try:
        # When
        headers = {"If-Match": if_match} if if_match else None
        reply = api.call(method, f"{GATEWAYS}/{gateway_id}{suffix}", body, headers=headers)
    finally:
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", concurrent_admin)

    # Then: a conflict the admin can act on (read again, retry), not an internal error
    assert raced
    assert reply.status == status, reply.text


def test_given_a_gateway_with_a_route_when_deleted_then_409_until_empty_then_204_and_404(
    api: Api, dynamodb: Any
) -> None:
    # Given: a deployed gateway with one route
    gateway_id = api.gateway()["gateway_id"]
    path = f"{GATEWAYS}/{gateway_id}"
    route_id = api.route(gateway_id)["route_id"]
    api.deploy(gateway_id)
    before = _items(dynamodb)

    # When / Then: refused while it has a route
    _assert_problem(api.call("DELETE", path), 409, "gateway_not_empty")
    assert _items(dynamodb) == before

    # When / Then: empty, it goes, with its versions, its index entry and its name and path guards
    assert api.call("DELETE", f"{ROUTES}/{route_id}").status == 204
    deleted = api.call("DELETE", path)
    assert deleted.status == 204, deleted.text
    _assert_problem(api.call("GET", path), 404, "gateway_not_found")
    _assert_problem(api.call("DELETE", path), 404, "gateway_not_found")
    assert _served(dynamodb, gateway_id) is None
    assert [i["SK"]["S"] for i in _items(dynamodb) if i["PK"]["S"] == f"GATEWAY#{gateway_id}"] == []
    assert api.call("POST", GATEWAYS, NEW_GATEWAY).status == 201  # name and base path are free again


# --- routes ----------------------------------------------------------------------------------


def test_given_a_gateway_when_a_route_is_created_then_201_with_location_etag_and_it_reads_back(api: Api) -> None:
    # Given
    gateway_id = api.gateway()["gateway_id"]

    # When
    reply = api.call("POST", ROUTES, route_spec(gateway_id, required_scopes=["data:read", "banking:read"]))

    # Then
    assert reply.status == 201, reply.text
    body = reply.json
    route_id = body["route_id"]
    assert route_id.startswith("rt_")
    assert reply.header("Location") == f"{ROUTES}/{route_id}"
    assert reply.header("ETag") == '"1"'
    assert (body["gateway_id"], body["method"], body["path"], body["version"]) == (gateway_id, "GET", "/orders/{id}", 1)
    assert body["required_scopes"] == ["banking:read", "data:read"]
    assert body["created_by"] == ADMIN["client_id"]
    got = api.call("GET", f"{ROUTES}/{route_id}")
    assert (got.status, got.json, got.header("ETag")) == (200, body, '"1"')


def test_given_no_such_gateway_when_a_route_is_created_then_404_and_nothing_stored(api: Api, dynamodb: Any) -> None:
    before = _items(dynamodb)

    reply = api.call("POST", ROUTES, route_spec("gw_0000000000000000"))

    _assert_problem(reply, 404, "gateway_not_found")
    assert _items(dynamodb) == before


def test_given_routes_on_two_gateways_when_listed_then_by_gateway_all_and_overall_newest_first_paged(
    api: Api,
) -> None:
    # Given: three routes on one gateway, two on another, created in this order
    first = api.gateway()["gateway_id"]
    second = api.gateway(name="Cards", base_path="/cards")["gateway_id"]
    created: list[str] = []
    for n, gateway_id in enumerate([first, second, first, second, first]):
        created.append(api.route(gateway_id, name=f"r{n}", path=f"/r{n}")["route_id"])
        _next_millisecond()

    # When
    of_first = api.call("GET", ROUTES, query={"gateway_id": first, "limit": "1"})
    of_second = api.call("GET", ROUTES, query={"gateway_id": second})
    everyone = api.call("GET", ROUTES)
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = api.call("GET", ROUTES, query={"limit": "2", **({"cursor": cursor} if cursor else {})})
        pages.append(_ids(page, "route_id"))
        cursor = page.json["next_cursor"]
        if not cursor or len(pages) > 5:
            break

    # Then: a gateway's list is all of its routes (no paging); the overall one is newest first
    assert sorted(_ids(of_first, "route_id")) == sorted(created[0::2])
    assert of_first.json["next_cursor"] is None
    assert sorted(_ids(of_second, "route_id")) == sorted(created[1::2])
    assert {r["gateway_id"] for r in of_second.json["items"]} == {second}
    assert _ids(everyone, "route_id") == created[::-1]
    assert everyone.json["next_cursor"] is None
    assert pages[:2] == [created[:2:-1], created[2:0:-1]]
    assert [i for p in pages for i in p] == created[::-1]


def test_given_an_unknown_gateway_when_its_routes_are_listed_then_404(api: Api) -> None:
    _assert_problem(api.call("GET", ROUTES, query={"gateway_id": "gw_0000000000000000"}), 404, "gateway_not_found")


def test_given_a_cursor_of_the_gateways_list_when_used_on_the_routes_list_then_400_invalid_cursor(api: Api) -> None:
    # Given
    for n in range(2):
        gateway_id = api.gateway(name=f"G{n}", base_path=f"/g{n}")["gateway_id"]
        api.route(gateway_id)
        _next_millisecond()
    gateways_cursor = api.call("GET", GATEWAYS, query={"limit": "1"}).json["next_cursor"]
    routes_cursor = api.call("GET", ROUTES, query={"limit": "1"}).json["next_cursor"]
    assert gateways_cursor
    assert routes_cursor

    # When / Then: each list refuses the other's cursor
    _assert_problem(api.call("GET", ROUTES, query={"cursor": gateways_cursor}), 400, "invalid_cursor")
    _assert_problem(api.call("GET", GATEWAYS, query={"cursor": routes_cursor}), 400, "invalid_cursor")


def test_given_a_garbage_cursor_when_listing_routes_then_400_invalid_cursor(api: Api) -> None:
    # not base64 JSON, not JSON, a key of the wrong types, not an object, a table key (no GSI1)
    table_key = "eyJQSyI6IHsiUyI6ICJHQVRFV0FZI2d3XzEifSwgIlNLIjogeyJTIjogIkdBVEVXQVkifX0"
    for cursor in ["!!!", "bm90LWpzb24", "eyJQSyI6IDF9", "W10", table_key]:
        _assert_problem(api.call("GET", ROUTES, query={"cursor": cursor}), 400, "invalid_cursor")


def test_given_a_route_when_another_with_the_same_method_and_path_shape_is_created_then_409_but_other_gateways_may(
    api: Api, dynamodb: Any
) -> None:
    # Given
    gateway_id = api.gateway()["gateway_id"]
    other = api.gateway(name="Cards", base_path="/cards")["gateway_id"]
    api.route(gateway_id, path="/a/{x}")
    before = _items(dynamodb)

    # When
    clash = api.call("POST", ROUTES, route_spec(gateway_id, name="again", path="/a/{y}"))

    # Then
    _assert_problem(clash, 409, "duplicate_route")
    assert _items(dynamodb) == before
    assert api.call("POST", ROUTES, route_spec(other, path="/a/{x}")).status == 201
    assert api.call("POST", ROUTES, route_spec(gateway_id, method="POST", path="/a/{x}")).status == 201
    assert api.call("POST", ROUTES, route_spec(gateway_id, path="/a/{x}/b")).status == 201


BAD_ROUTES: list[tuple[dict[str, Any], str]] = [
    ({"path": "orders/{id}"}, "path"),
    ({"path": "/orders/{id}/{id}"}, "path"),
    ({"path": "/orders/{id+}/items"}, "path"),
    ({"path": "/orders//items"}, "path"),
    ({"targets": [{"url": "http://169.254.169.254"}]}, "targets"),
    ({"targets": [{"url": "http://10.0.0.1"}]}, "targets"),
    ({"targets": [{"url": "https://localhost"}]}, "targets"),
    ({"targets": [{"url": PUBLIC_TARGET}, {"url": "https://127.0.0.1:8443"}]}, "targets"),
    ({"targets": [{"url": "http://orders.public-looking.example"}]}, "targets"),  # plaintext to the internet
    ({"required_scopes": ["banking:everything"]}, "required_scopes"),
    ({"method": "POST", "protocol": "soap"}, ""),  # a model-level rule: no field in loc
    ({"request_transform": {"body": {"id": "{{ nope.x }}"}}}, "request_transform"),
    ({"response_transform": {"body": "{{ body.x | nope }}"}}, "response_transform"),
    ({"cache_key_template": "{{ nope.x }}"}, "cache_key_template"),
]


def test_given_bad_routes_when_created_then_422_each_and_nothing_changes(api: Api, dynamodb: Any) -> None:
    # Given
    gateway_id = api.gateway()["gateway_id"]
    api.route(gateway_id, path="/existing")
    listed = api.call("GET", ROUTES, query={"gateway_id": gateway_id}).json
    everyone = api.call("GET", ROUTES).json
    before = _items(dynamodb)

    for change, field in BAD_ROUTES:
        # When
        reply = api.call("POST", ROUTES, route_spec(gateway_id, **change))

        # Then
        problem = _assert_problem(reply, 422, "validation_failed")
        if field:
            assert any(field in error["loc"] for error in problem["errors"]), (change, problem["errors"])
        assert _items(dynamodb) == before, change
    assert api.call("GET", ROUTES, query={"gateway_id": gateway_id}).json == listed
    assert api.call("GET", ROUTES).json == everyone


def test_given_a_route_when_put_with_if_match_then_the_next_version_and_a_stale_one_is_412(
    api: Api, dynamodb: Any
) -> None:
    # Given
    gateway_id = api.gateway()["gateway_id"]
    created = api.route(gateway_id)
    path = f"{ROUTES}/{created['route_id']}"

    # When
    changed = api.call("PUT", path, route_spec(gateway_id, path="/orders/{order}/v2"), headers={"If-Match": '"1"'})

    # Then
    assert changed.status == 200, changed.text
    assert (changed.json["path"], changed.json["version"], changed.header("ETag")) == ("/orders/{order}/v2", 2, '"2"')
    assert (changed.json["created_at"], changed.json["created_by"]) == (created["created_at"], created["created_by"])
    assert api.call("GET", path).json == changed.json
    before = _items(dynamodb)
    _assert_problem(api.call("PUT", path, route_spec(gateway_id), headers={"If-Match": '"1"'}), 412, "version_mismatch")
    _assert_problem(api.call("PUT", path, route_spec(gateway_id), headers={"If-Match": "one"}), 400, "invalid_if_match")
    assert _items(dynamodb) == before
    # the old path shape was released, the new one is taken
    assert api.call("POST", ROUTES, route_spec(gateway_id, path="/orders/{x}")).status == 201
    _assert_problem(api.call("POST", ROUTES, route_spec(gateway_id, path="/orders/{x}/v2")), 409, "duplicate_route")


def test_given_two_routes_when_one_is_put_onto_the_others_path_shape_then_409_duplicate_route(
    api: Api, dynamodb: Any
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    api.route(gateway_id, path="/a/{x}")
    other = api.route(gateway_id, path="/b/{x}")["route_id"]
    before = _items(dynamodb)

    reply = api.change("PUT", f"{ROUTES}/{other}", route_spec(gateway_id, path="/a/{z}"))

    _assert_problem(reply, 409, "duplicate_route")
    assert _items(dynamodb) == before


def test_given_a_route_when_put_onto_another_gateway_then_409_gateway_change(api: Api, dynamodb: Any) -> None:
    gateway_id = api.gateway()["gateway_id"]
    other = api.gateway(name="Cards", base_path="/cards")["gateway_id"]
    route_id = api.route(gateway_id)["route_id"]
    before = _items(dynamodb)

    reply = api.call("PUT", f"{ROUTES}/{route_id}", route_spec(other), headers={"If-Match": "*"})

    _assert_problem(reply, 409, "gateway_change")
    assert _items(dynamodb) == before


def test_given_a_route_when_deleted_then_204_then_404_and_its_path_is_free(api: Api, dynamodb: Any) -> None:
    # Given
    gateway_id = api.gateway()["gateway_id"]
    route_id = api.route(gateway_id)["route_id"]
    path = f"{ROUTES}/{route_id}"

    # When
    deleted = api.call("DELETE", path)

    # Then
    assert deleted.status == 204, deleted.text
    _assert_problem(api.call("GET", path), 404, "route_not_found")
    _assert_problem(api.call("DELETE", path), 404, "route_not_found")
    _assert_problem(api.call("PUT", path, route_spec(gateway_id)), 404, "route_not_found")
    assert api.call("GET", ROUTES, query={"gateway_id": gateway_id}).json["items"] == []
    assert api.call("GET", ROUTES).json["items"] == []
    assert not [i for i in _items(dynamodb) if route_id in i["PK"]["S"] + i["SK"]["S"]]
    assert api.call("POST", ROUTES, route_spec(gateway_id)).status == 201


# --- scopes ----------------------------------------------------------------------------------

WRITES = [
    ("POST", GATEWAYS, "new_gateway"),
    ("PUT", f"{GATEWAYS}/GW", "gateway"),
    ("DELETE", f"{GATEWAYS}/GW", None),
    ("POST", f"{GATEWAYS}/GW/deploy", "empty"),
    ("POST", f"{GATEWAYS}/GW/activate", "version"),
    ("POST", f"{GATEWAYS}/GW/rollback", "empty"),
    ("PUT", f"{GATEWAYS}/GW/canary", "percent"),
    ("POST", f"{GATEWAYS}/GW/promote", None),
    ("POST", ROUTES, "route"),
    ("PUT", f"{ROUTES}/RT", "route"),
    ("DELETE", f"{ROUTES}/RT", None),
]
READS = [
    (GATEWAYS, None),
    (f"{GATEWAYS}/GW", None),
    (f"{GATEWAYS}/GW/versions", None),
    (f"{GATEWAYS}/GW/versions/1", None),
    (ROUTES, None),
    (ROUTES, "by_gateway"),
    (f"{ROUTES}/RT", None),
]


@pytest.fixture
def deployed(api: Api) -> tuple[str, str]:
    gateway_id = api.gateway()["gateway_id"]
    route_id = api.route(gateway_id)["route_id"]
    api.deploy(gateway_id)
    return gateway_id, route_id


def _request(template: str, body: str | None, gateway_id: str, route_id: str) -> tuple[str, Any]:
    bodies: dict[str, Any] = {
        "new_gateway": {**NEW_GATEWAY, "name": "Other", "base_path": "/other"},
        "gateway": {**NEW_GATEWAY, "description": "changed"},
        "empty": {},
        "version": {"version": 1},
        "percent": {"percent": 10},
        "route": route_spec(gateway_id, path="/changed"),
    }
    return template.replace("GW", gateway_id).replace("RT", route_id), bodies.get(body) if body else None


def test_given_callers_without_admin_when_writing_then_403_and_nothing_changes(
    api: Api, dynamodb: Any, deployed: tuple[str, str]
) -> None:
    # Given: a deployed gateway with a route
    before = _items(dynamodb)

    for who in (READER, GATEWAY_READER):
        for method, template, body in WRITES:
            path, payload = _request(template, body, *deployed)

            # When
            reply = api.call(method, path, payload, authorizer=who)

            # Then
            problem = _assert_problem(reply, 403, "insufficient_scope")
            assert problem["required_scope"] == "admin", (who["scopes"], method, template)
            assert _items(dynamodb) == before, (who["scopes"], method, template)


def test_given_a_caller_with_gateway_read_when_reading_then_200_but_data_read_alone_is_403(
    api: Api, deployed: tuple[str, str]
) -> None:
    gateway_id, route_id = deployed
    for template, query in READS:
        path, _ = _request(template, None, gateway_id, route_id)
        params = {"gateway_id": gateway_id} if query else None

        allowed = api.call("GET", path, query=params, authorizer=GATEWAY_READER)
        as_admin = api.call("GET", path, query=params)
        refused = api.call("GET", path, query=params, authorizer=READER)

        assert allowed.status == 200, (template, allowed.text)
        assert allowed.json == as_admin.json, template
        assert _assert_problem(refused, 403, "insufficient_scope")["required_scope"] == "gateway:read", template


# --- deployments -----------------------------------------------------------------------------


def test_given_routes_when_deployed_then_version_1_serves_and_later_edits_do_not_change_it(
    api: Api, dynamodb: Any
) -> None:
    # Given
    gateway_id = api.gateway()["gateway_id"]
    route = api.route(gateway_id, description="first")

    # When
    reply = api.call("POST", f"{GATEWAYS}/{gateway_id}/deploy", {"description": "launch"})

    # Then
    assert reply.status == 201, reply.text
    assert reply.header("Location") == f"{GATEWAYS}/{gateway_id}/versions/1"
    assert reply.json["deployment"] == {
        "latest_version": 1,
        "active_version": 1,
        "canary_version": None,
        "canary_percent": 0,
    }
    assert reply.json["version"] == 2  # the gateway item changed
    assert _serving(dynamodb, gateway_id) == (1, 1, None, 0)
    assert _served(dynamodb, gateway_id) == {
        "gateway_id": gateway_id,
        "base_path": "/payments",
        "status": "active",
        "latest_version": 1,
        "active_version": 1,
        "canary_version": None,
        "canary_percent": 0,
    }
    versions = api.call("GET", f"{GATEWAYS}/{gateway_id}/versions")
    assert versions.status == 200, versions.text
    assert [(v["version"], v["description"], v["routes"], v["created_by"]) for v in versions.json["items"]] == [
        (1, "launch", 1, ADMIN["client_id"])
    ]

    # When: the draft changes and a route is added after the deploy
    edited = api.change("PUT", f"{ROUTES}/{route['route_id']}", route_spec(gateway_id, description="second"))
    assert edited.status == 200, edited.text
    api.route(gateway_id, path="/added")
    assert api.change("PUT", f"{GATEWAYS}/{gateway_id}", {**NEW_GATEWAY, "description": "changed later"}).status == 200

    # Then: version 1 is what was deployed
    one = api.call("GET", f"{GATEWAYS}/{gateway_id}/versions/1")
    assert one.status == 200, one.text
    assert one.json["route_list"] == [route]
    assert one.json["settings"]["description"] == "Payment APIs"
    assert (one.json["version"], one.json["routes"], one.json["description"]) == (1, 1, "launch")
    _assert_problem(api.call("GET", f"{GATEWAYS}/{gateway_id}/versions/2"), 404, "version_not_found")
    assert api.deploy(gateway_id)["active_version"] == 2
    two = api.call("GET", f"{GATEWAYS}/{gateway_id}/versions/2").json
    assert sorted(r["path"] for r in two["route_list"]) == ["/added", "/orders/{id}"]
    assert [v["version"] for v in api.call("GET", f"{GATEWAYS}/{gateway_id}/versions").json["items"]] == [2, 1]


def test_given_a_serving_version_when_a_canary_is_deployed_changed_ended_and_promoted_then_each_step_serves(
    api: Api, dynamodb: Any
) -> None:
    # Given
    gateway_id = api.gateway()["gateway_id"]
    api.route(gateway_id)
    base = f"{GATEWAYS}/{gateway_id}"
    _assert_problem(api.call("POST", f"{base}/promote"), 409, "no_canary")  # nothing deployed yet
    assert api.call("POST", f"{base}/deploy", {"strategy": "canary", "canary_percent": 30}).status == 409
    api.deploy(gateway_id)

    # When / Then: a canary of 30 %
    canary = api.deploy(gateway_id, strategy="canary", canary_percent=30)
    assert canary == {"latest_version": 2, "active_version": 1, "canary_version": 2, "canary_percent": 30}
    assert _serving(dynamodb, gateway_id) == (2, 1, 2, 30)

    # When / Then: its share changes
    moved = api.change("PUT", f"{base}/canary", {"percent": 50}, read=base)  # the gateway's ETag
    assert moved.status == 200, moved.text
    assert moved.header("ETag") == f'"{moved.json["version"]}"'
    assert _serving(dynamodb, gateway_id) == (2, 1, 2, 50)

    # When / Then: 0 ends it
    ended = api.change("PUT", f"{base}/canary", {"percent": 0}, read=base)
    assert ended.status == 200, ended.text
    assert ended.json["deployment"] == {
        "latest_version": 2,
        "active_version": 1,
        "canary_version": None,
        "canary_percent": 0,
    }
    assert _serving(dynamodb, gateway_id) == (2, 1, None, 0)
    before = _items(dynamodb)
    _assert_problem(api.call("POST", f"{base}/promote"), 409, "no_canary")
    _assert_problem(api.change("PUT", f"{base}/canary", {"percent": 10}, read=base), 409, "no_canary")
    assert _items(dynamodb) == before

    # When / Then: a new canary is promoted
    assert api.deploy(gateway_id, strategy="canary", canary_percent=10)["canary_version"] == 3
    promoted = api.call("POST", f"{base}/promote")
    assert promoted.status == 200, promoted.text
    assert promoted.json["deployment"]["active_version"] == 3
    assert _serving(dynamodb, gateway_id) == (3, 3, None, 0)


def test_given_bad_deploy_requests_when_posted_then_422_and_nothing_changes(api: Api, dynamodb: Any) -> None:
    gateway_id = api.gateway()["gateway_id"]
    api.route(gateway_id)
    api.deploy(gateway_id)
    before = _items(dynamodb)

    for body in [
        {"strategy": "canary", "canary_percent": 100},
        {"strategy": "canary", "canary_percent": -1},
        {"strategy": "blue-green"},
        {"unexpected": True},
    ]:
        _assert_problem(api.call("POST", f"{GATEWAYS}/{gateway_id}/deploy", body), 422, "validation_failed")
        assert _items(dynamodb) == before, body


def test_given_a_staged_deploy_when_activated_and_rolled_back_then_each_step_serves(api: Api, dynamodb: Any) -> None:
    # Given: version 1 serves
    gateway_id = api.gateway()["gateway_id"]
    route_id = api.route(gateway_id)["route_id"]
    base = f"{GATEWAYS}/{gateway_id}"
    api.deploy(gateway_id)
    assert api.change("PUT", f"{ROUTES}/{route_id}", route_spec(gateway_id, description="green")).status == 200

    # When / Then: staged, version 2 is published but version 1 still serves
    staged = api.deploy(gateway_id, strategy="staged", description="green")
    assert staged == {"latest_version": 2, "active_version": 1, "canary_version": None, "canary_percent": 0}
    assert _serving(dynamodb, gateway_id) == (2, 1, None, 0)
    assert api.call("GET", f"{base}/versions/2").json["route_list"][0]["description"] == "green"

    # When / Then: the blue-green switch
    activated = api.call("POST", f"{base}/activate", {"version": 2})
    assert activated.status == 200, activated.text
    assert activated.json["deployment"]["active_version"] == 2
    assert _serving(dynamodb, gateway_id) == (2, 2, None, 0)

    # When / Then: back to the previous version
    rolled = api.call("POST", f"{base}/rollback", {})
    assert rolled.status == 200, rolled.text
    assert rolled.json["deployment"] == {
        "latest_version": 2,
        "active_version": 1,
        "canary_version": None,
        "canary_percent": 0,
    }
    assert _serving(dynamodb, gateway_id) == (2, 1, None, 0)

    # When / Then: versions that do not exist, and no earlier version, change nothing
    before = _items(dynamodb)
    _assert_problem(api.call("POST", f"{base}/rollback", {"version": 9}), 404, "version_not_found")
    _assert_problem(api.call("POST", f"{base}/rollback", {}), 404, "version_not_found")  # 1 is the first
    _assert_problem(api.call("POST", f"{base}/activate", {"version": 3}), 404, "version_not_found")
    _assert_problem(api.call("GET", f"{base}/versions/3"), 404, "version_not_found")
    assert _items(dynamodb) == before
    assert api.call("POST", f"{base}/rollback", {"version": 2}).status == 409  # forward is activate's job
    assert api.call("POST", f"{base}/activate", {"version": 2}).json["deployment"]["active_version"] == 2
    assert api.call("POST", f"{base}/rollback", {"version": 1}).json["deployment"]["active_version"] == 1
    assert _serving(dynamodb, gateway_id) == (2, 1, None, 0)


def test_given_an_unknown_gateway_when_addressed_then_404_and_nothing_changes(api: Api, dynamodb: Any) -> None:
    api.gateway()
    before = _items(dynamodb)

    for method, suffix, body in [
        ("GET", "", None),
        ("PUT", "", NEW_GATEWAY),
        ("DELETE", "", None),
        ("POST", "/deploy", {}),
        ("POST", "/activate", {"version": 1}),
        ("POST", "/rollback", {}),
        ("PUT", "/canary", {"percent": 0}),
        ("POST", "/promote", None),
        ("GET", "/versions", None),
        ("GET", "/versions/1", None),
    ]:
        reply = api.call(method, f"{GATEWAYS}/gw_0000000000000000{suffix}", body)

        _assert_problem(reply, 404, "gateway_not_found")
        assert _items(dynamodb) == before, (method, suffix)


def test_given_a_gateway_lifecycle_when_the_audit_is_read_then_create_route_create_and_deploy_are_there(
    api: Api,
) -> None:
    # Given
    gateway_id = api.gateway()["gateway_id"]
    route_id = api.route(gateway_id)["route_id"]
    api.deploy(gateway_id)
    refused = api.change("PUT", f"{GATEWAYS}/{gateway_id}/canary", {"percent": 0}, read=f"{GATEWAYS}/{gateway_id}")
    _assert_problem(refused, 409, "no_canary")  # no canary: no event

    # When
    of_gateway = api.call("GET", "/api/v1/audit/events", query={"target": f"gateway/{gateway_id}"})
    of_route = api.call("GET", "/api/v1/audit/events", query={"target": f"route/{route_id}"})

    # Then
    assert of_gateway.status == 200, of_gateway.text
    assert sorted(e["action"] for e in of_gateway.json["items"]) == ["gateway.create", "gateway.deploy"]
    assert [e["action"] for e in of_route.json["items"]] == ["route.create"]
    events = of_gateway.json["items"] + of_route.json["items"]
    assert {e["actor"] for e in events} == {ADMIN["client_id"]}
    create = next(e for e in events if e["action"] == "gateway.create")
    deploy = next(e for e in events if e["action"] == "gateway.deploy")
    assert create["before_hash"] is None
    assert create["after_hash"]
    assert deploy["before_hash"]
    assert deploy["after_hash"]
    assert deploy["after_hash"] != deploy["before_hash"]


# --- a large deployment ----------------------------------------------------------------------
# moto copies the whole table for every item of every transaction, so hundreds of routes created
# through the API take minutes; these routes are written as the store writes them, in batches,
# and only the deploy and the reads go through the API.


def _noise(n: int) -> str:
    """n characters that do not compress (6 bits of entropy each)."""
    return secrets.token_urlsafe(n)[:n]


def _seed_routes(dynamodb: Any, gateway_id: str, count: int, *, targets: int = 1) -> None:
    store = DynamoGatewayStore(dynamodb, TABLE)
    stamp = iso(utc_now())
    requests = []
    for n in range(count):
        urls = [{"url": f"https://u{k}.public-looking.example/{_noise(2000)}"} for k in range(targets - 1)]
        route = Route.stored(
            {
                **route_spec(
                    gateway_id,
                    name=f"route {n}",
                    path=f"/large/r{n}",
                    description=_noise(2000),
                    targets=[{"url": PUBLIC_TARGET}, *urls],
                ),
                "route_id": f"rt_{n:016x}",
                "version": 1,
                "created_at": stamp,
                "updated_at": stamp,
                "created_by": ADMIN["client_id"],
            }
        )
        requests.append({"PutRequest": {"Item": store._route_item(route)}})
    for start in range(0, len(requests), 25):
        dynamodb.batch_write_item(RequestItems={TABLE: requests[start : start + 25]})


def _version_parts(dynamodb: Any, gateway_id: str, version: int) -> list[str]:
    return [
        i["SK"]["S"]
        for i in _items(dynamodb)
        if i["PK"]["S"] == f"GATEWAY#{gateway_id}" and i["SK"]["S"].startswith(f"VERSION#{version:08d}")
    ]


def test_given_routes_larger_than_one_item_when_deployed_then_split_over_parts_and_read_back_whole(
    api: Api, dynamodb: Any
) -> None:
    # Given: 300 routes with 2,000 incompressible characters each (~450 KB compressed)
    gateway_id = api.gateway()["gateway_id"]
    _seed_routes(dynamodb, gateway_id, 300)
    drafts = api.call("GET", ROUTES, query={"gateway_id": gateway_id}).json["items"]
    assert len(drafts) == 300

    # When
    deployment = api.deploy(gateway_id)

    # Then
    assert deployment["active_version"] == 1
    assert _version_parts(dynamodb, gateway_id, 1) == ["VERSION#00000001", "VERSION#00000001#001"]
    one = api.call("GET", f"{GATEWAYS}/{gateway_id}/versions/1")
    assert one.status == 200, one.text
    assert one.json["routes"] == 300
    assert one.json["route_list"] == drafts
    summaries = api.call("GET", f"{GATEWAYS}/{gateway_id}/versions").json["items"]
    assert [(s["version"], s["routes"]) for s in summaries] == [(1, 300)]


def test_given_a_version_larger_than_one_query_page_when_read_then_every_part_is_read(api: Api, dynamodb: Any) -> None:
    # Given: 100 routes of ~14 KB of incompressible text: over 1 MB compressed, so its parts do not
    # fit in one DynamoDB query page (1 MB)
    gateway_id = api.gateway()["gateway_id"]
    _seed_routes(dynamodb, gateway_id, 100, targets=7)
    api.deploy(gateway_id)
    assert len(_version_parts(dynamodb, gateway_id, 1)) >= 4

    # When
    one = api.call("GET", f"{GATEWAYS}/{gateway_id}/versions/1")

    # Then
    assert one.status == 200, one.text
    assert one.json["routes"] == 100


# --- the health-check task -------------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[JsonUpstream]:
    server = JsonUpstream(name="orders")
    yield server
    server.close()


def test_given_a_deployed_route_with_a_health_check_when_the_task_runs_then_it_probes_and_records_down_targets(
    api: Api, dynamodb: Any, upstream: JsonUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a deployed route whose target is a loopback upstream (allowlisted)
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8")
    gateway_id = api.gateway()["gateway_id"]
    api.route(gateway_id, targets=[{"url": upstream.url}], health_check={"path": "/health"})
    api.route(gateway_id, path="/unchecked", targets=[{"url": "https://unchecked.public-looking.example"}])
    api.deploy(gateway_id)
    task = {"gateway_task": "health_checks"}

    # When
    healthy = api.health_task(task, FakeLambdaContext())

    # Then
    assert healthy == {"probed": 1, "down": []}
    assert upstream.health_checks == 1
    health = dynamodb.get_item(TableName=TABLE, Key=HEALTH_KEY, ConsistentRead=True)["Item"]
    recorded = [json.loads(v["S"]) for k, v in health.items() if k.startswith("t_")]
    assert [(r["url"], r["status"]) for r in recorded] == [(upstream.url, "up")]

    # When: the upstream reports itself unhealthy
    upstream.healthy = False
    down = api.health_task(task, FakeLambdaContext())

    # Then
    assert down == {"probed": 1, "down": [upstream.url]}
    health = dynamodb.get_item(TableName=TABLE, Key=HEALTH_KEY, ConsistentRead=True)["Item"]
    recorded = [json.loads(v["S"]) for k, v in health.items() if k.startswith("t_")]
    assert [(r["url"], r["status"], r["detail"]) for r in recorded] == [(upstream.url, "down", "HTTP 503")]
    assert upstream.health_checks == 2


def test_given_routes_drafted_but_not_deployed_when_the_task_runs_then_nothing_is_probed(
    api: Api, upstream: JsonUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8")
    gateway_id = api.gateway()["gateway_id"]
    api.route(gateway_id, targets=[{"url": upstream.url}], health_check={"path": "/health"})

    result = api.health_task({"gateway_task": "health_checks"}, FakeLambdaContext())

    assert result == {"probed": 0, "down": []}
    assert upstream.health_checks == 0
