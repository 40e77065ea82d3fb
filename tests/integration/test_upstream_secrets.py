"""Upstream secrets on moto: the management function sets them (KMS-encrypted, bound to gateway and
name, never returned), routes refer to them, every read of routes and versions masks credentials
written into routes, and the data plane function decrypts them into the request a loopback
upstream receives, and nowhere else."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.routes import proxy_bootstrap
from functions.routes.dal.gateways_store import DynamoGatewayStore
from functions.routes.logic.route_spec import Route
from gateway_core.audit import Actor
from gateway_core.settings import settings
from tests.integration.conftest import create_data_table, create_table, table_items
from tests.integration.helpers import REGION, FakeLambdaContext, proxy_event
from tests.integration.test_clients_api import ADMIN
from tests.integration.test_gateways_api import GATEWAY_READER, GATEWAYS, ROUTES, Api, Reply
from tests.upstreams import Reply as UpstreamReply
from tests.upstreams import Request as UpstreamRequest
from tests.upstreams import _Upstream, json_reply

TABLE = "gateway-data-secrets"
BUCKETS = "gateway-buckets-secrets"
TOKEN = "tok_live_7f3a9c2e51d84b6a"  # what the upstream expects; nothing else may ever show it
API_KEY = "ak_9d8c7b6a5f4e3d2c"
CLIENT_SECRET = "cs_live_5e6f7a8b9c0d1e2f"
MASK = "********"


class RecordingUpstream(_Upstream):
    """Records each request it receives and answers a fixed JSON body (no echo: whatever the
    gateway answers, the secret could only have come from the gateway)."""

    def __init__(self) -> None:
        self.received: list[UpstreamRequest] = []
        super().__init__()

    def respond(self, request: UpstreamRequest) -> UpstreamReply:
        with self._lock:
            self.received.append(request)
        return json_reply(200, {"ok": True})


@pytest.fixture
def kms_key(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    arn: str = boto3.client("kms", region_name=REGION).create_key(Description="upstream secrets")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("UPSTREAM_SECRETS_KEY_ID", arn)
    return arn


@pytest.fixture
def dynamodb(aws: None, kms_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    create_data_table(TABLE)
    create_table(BUCKETS, range_key=None)
    for name, value in {
        "TABLE_NAME": TABLE,
        "RATE_LIMIT_TABLE_NAME": BUCKETS,
        "STAGE": "test",
        "UPSTREAM_ALLOW_CIDRS": "127.0.0.0/8",  # the loopback upstream, as the local runtime allows
    }.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    proxy_bootstrap._proxies.clear()  # a new container: nothing cached from another test
    yield boto3.client("dynamodb", region_name=REGION)
    proxy_bootstrap._proxies.clear()


@pytest.fixture
def api(dynamodb: Any) -> Api:
    return Api()


@pytest.fixture
def upstream() -> Iterator[RecordingUpstream]:
    server = RecordingUpstream()
    yield server
    server.close()


def _items(dynamodb: Any) -> list[dict[str, Any]]:
    return table_items(dynamodb, TABLE)


def _all_table_text(dynamodb: Any) -> str:
    """Every item of the data table as text, binary attributes decoded as far as they decode."""

    def plain(value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode("latin-1") + base64.b64encode(bytes(value)).decode()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(_items(dynamodb)), default=str)


def put_secret(api: Api, gateway_id: str, name: str, value: str, **kwargs: Any) -> Reply:
    return api.call("PUT", f"{GATEWAYS}/{gateway_id}/secrets/{name}", {"value": value}, **kwargs)


def _assert_problem(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.text
    assert reply.header("Content-Type") == "application/problem+json"
    assert reply.json["code"] == code, reply.json


# -- the secrets resource --------------------------------------------------------------------------


def test_given_a_secret_when_set_then_201_without_the_value_and_only_a_ciphertext_bound_to_gateway_and_name_is_stored(
    api: Api, dynamodb: Any, kms_key: str
) -> None:
    gateway_id = api.gateway()["gateway_id"]

    created = put_secret(api, gateway_id, "orders_token", TOKEN)

    assert created.status == 201, created.text
    assert created.header("ETag") == '"1"'
    assert created.header("Location") == f"{GATEWAYS}/{gateway_id}/secrets/orders_token"
    assert created.json["name"] == "orders_token"
    assert created.json["version"] == 1
    assert TOKEN not in created.text
    # Stored: a KMS ciphertext, nowhere the value (metadata, audit events, any attribute).
    assert TOKEN not in _all_table_text(dynamodb)
    item = dynamodb.get_item(
        TableName=TABLE, Key={"PK": {"S": f"SECRET#{gateway_id}"}, "SK": {"S": "orders_token"}}, ConsistentRead=True
    )["Item"]
    kms = boto3.client("kms", region_name=REGION)
    context = {"gateway_id": gateway_id, "secret_name": "orders_token"}
    opened = kms.decrypt(CiphertextBlob=item["ciphertext"]["B"], EncryptionContext=context, KeyId=kms_key)
    assert opened["Plaintext"].decode() == TOKEN
    # Bound to its gateway and name: it does not decrypt as another's.
    for other in ({**context, "gateway_id": "gw_other"}, {**context, "secret_name": "other"}, {}):
        with pytest.raises(ClientError) as refused:
            kms.decrypt(CiphertextBlob=item["ciphertext"]["B"], EncryptionContext=other, KeyId=kms_key)
        assert refused.value.response["Error"]["Code"] == "InvalidCiphertextException"


def test_given_secrets_when_read_listed_replaced_and_deleted_then_no_answer_or_audit_event_holds_a_value(
    api: Api, dynamodb: Any
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    put_secret(api, gateway_id, "partner_key", API_KEY)

    read = api.call("GET", f"{GATEWAYS}/{gateway_id}/secrets/orders_token")
    listed = api.call("GET", f"{GATEWAYS}/{gateway_id}/secrets")
    stale = put_secret(api, gateway_id, "orders_token", "rotated-1", headers={"If-Match": '"7"'})
    replaced = put_secret(api, gateway_id, "orders_token", "rotated-1", headers={"If-Match": '"1"'})
    deleted = api.call("DELETE", f"{GATEWAYS}/{gateway_id}/secrets/partner_key")
    gone = api.call("GET", f"{GATEWAYS}/{gateway_id}/secrets/partner_key")
    audit = api.call("GET", "/api/v1/audit/events", query={"target": f"gateway/{gateway_id}/secret/orders_token"})

    assert read.status == 200
    assert read.header("ETag") == '"1"'
    assert set(read.json) == {"gateway_id", "name", "version", "created_at", "updated_at", "created_by", "updated_by"}
    assert [s["name"] for s in listed.json["items"]] == ["orders_token", "partner_key"]
    _assert_problem(stale, 412, "version_mismatch")
    assert (replaced.status, replaced.json["version"]) == (200, 2)
    assert deleted.status == 204
    _assert_problem(gone, 404, "secret_not_found")
    assert [e["action"] for e in audit.json["items"]] == ["secret.update", "secret.create"]
    everything = "".join(r.text for r in (read, listed, stale, replaced, deleted, gone, audit))
    for value in (TOKEN, API_KEY, "rotated-1"):
        assert value not in everything
        assert value not in _all_table_text(dynamodb)


def test_given_a_secret_when_replaced_without_if_match_then_428_and_with_any_then_replaced(
    api: Api, dynamodb: Any
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    before = _items(dynamodb)

    refused = put_secret(api, gateway_id, "orders_token", "rotated-1")
    only_new = put_secret(api, gateway_id, "orders_token", "rotated-1", headers={"If-None-Match": "*"})

    _assert_problem(refused, 428, "precondition_required")
    assert "ETag" in refused.json["detail"]
    _assert_problem(only_new, 412, "precondition_failed")
    assert _items(dynamodb) == before
    replaced = put_secret(api, gateway_id, "orders_token", "rotated-1", headers={"If-Match": "*"})
    assert (replaced.status, replaced.header("ETag")) == (200, '"2"')
    # If-Match on a secret that does not exist matches nothing; If-None-Match: * creates it
    _assert_problem(put_secret(api, gateway_id, "other", TOKEN, headers={"If-Match": "*"}), 412, "version_mismatch")
    created = put_secret(api, gateway_id, "other", TOKEN, headers={"If-None-Match": "*"})
    assert (created.status, created.header("ETag")) == (201, '"1"')


def test_given_a_secret_when_deleted_with_a_stale_if_match_then_412_and_it_stays(api: Api, dynamodb: Any) -> None:
    gateway_id = api.gateway()["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    before = _items(dynamodb)

    stale = api.call("DELETE", f"{GATEWAYS}/{gateway_id}/secrets/orders_token", headers={"If-Match": '"2"'})

    _assert_problem(stale, 412, "version_mismatch")
    assert _items(dynamodb) == before


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "/secrets/orders_token", {"value": "x"}),
        ("GET", "/secrets", None),
        ("GET", "/secrets/orders_token", None),
        ("DELETE", "/secrets/orders_token", None),
    ],
)
@pytest.mark.parametrize("caller", [GATEWAY_READER, {**ADMIN, "scopes": "data:read"}])
def test_given_callers_without_admin_when_using_secrets_then_403_and_nothing_changes(
    api: Api, dynamodb: Any, method: str, suffix: str, body: Any, caller: dict[str, Any]
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    before = _items(dynamodb)

    reply = api.call(method, f"{GATEWAYS}/{gateway_id}{suffix}", body, authorizer=caller)

    _assert_problem(reply, 403, "insufficient_scope")
    assert _items(dynamodb) == before


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"value": ""}, 422),
        ({"value": "a" * 4097}, 422),
        ({"value": "line\r\nX-Injected: 1"}, 422),  # would split a header
        ({"value": "tab\there"}, 422),
        ({"value": "caf\u00e9"}, 422),  # not ASCII
        ({"value": 12345}, 422),
        ({"value": TOKEN, "extra": 1}, 422),
        ({}, 422),
    ],
)
def test_given_bad_values_when_set_then_422_without_echoing_them_and_nothing_changes(
    api: Api, dynamodb: Any, body: dict[str, Any], status: int
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    before = _items(dynamodb)

    reply = api.call("PUT", f"{GATEWAYS}/{gateway_id}/secrets/orders_token", body)

    _assert_problem(reply, status, "validation_failed")
    value = body.get("value")
    if isinstance(value, str) and value:
        assert value[:20] not in reply.text
    assert _items(dynamodb) == before


@pytest.mark.parametrize("name", ["Orders", "1st", "a.b", "x" * 65, "a%20b", "_x"])
def test_given_bad_names_when_set_then_400_and_nothing_changes(api: Api, dynamodb: Any, name: str) -> None:
    gateway_id = api.gateway()["gateway_id"]
    before = _items(dynamodb)
    _assert_problem(put_secret(api, gateway_id, name, TOKEN), 400, "invalid_secret_name")
    assert _items(dynamodb) == before


def test_given_no_such_gateway_when_a_secret_is_set_then_404_and_nothing_changes(api: Api, dynamodb: Any) -> None:
    before = _items(dynamodb)
    _assert_problem(put_secret(api, "gw_missing", "orders_token", TOKEN), 404, "gateway_not_found")
    assert _items(dynamodb) == before


def test_given_a_gateway_with_secrets_when_deleted_then_409_until_they_are_deleted(api: Api) -> None:
    gateway_id = api.gateway()["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)

    _assert_problem(api.call("DELETE", f"{GATEWAYS}/{gateway_id}"), 409, "gateway_not_empty")
    assert api.call("DELETE", f"{GATEWAYS}/{gateway_id}/secrets/orders_token").status == 204
    assert api.call("DELETE", f"{GATEWAYS}/{gateway_id}").status == 204


# -- routes refer to secrets ---------------------------------------------------------------------

REFERENCING = {
    "request_transform": {
        "headers": {"add": {"Authorization": "Bearer {{ secrets.orders_token }}"}},
        "query": {"add": {"api_key": "{{ secrets.partner_key }}"}},
    }
}


def test_given_a_route_naming_a_missing_secret_when_created_then_422_unknown_secret_and_nothing_changes(
    api: Api, dynamodb: Any
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    before = _items(dynamodb)

    reply = api.call("POST", ROUTES, _route(gateway_id, "https://orders.public-looking.example", **REFERENCING))

    _assert_problem(reply, 422, "unknown_secret")
    assert reply.json["missing_secrets"] == ["partner_key"]
    assert _items(dynamodb) == before


@pytest.mark.parametrize(
    ("rules", "name"),
    [
        ({"headers": {"add": {"Authorization": "Bearer " + TOKEN}}}, "Authorization"),
        ({"headers": {"add": {"X-Api-Key": API_KEY}}}, "X-Api-Key"),
        ({"headers": {"add": {"X-Partner": "Basic dXNlcjpwYXNz"}}}, "X-Partner"),
        ({"query": {"add": {"access_token": TOKEN}}}, "access_token"),
        ({"headers": {"add": {"Authorization": MASK}}}, "Authorization"),
        ({"query": {"add": {"sig": TOKEN}}}, "request_transform.query: sig"),
        ({"query": {"add": {"code": TOKEN}}}, "request_transform.query: code"),
        ({"body": {"client_id": "{{ client.id }}", "client_secret": TOKEN}}, "request_transform.body: client_secret"),
        ({"body": {"auth": {"user": "svc", "pwd": API_KEY}}}, "request_transform.body: auth.pwd"),
        ({"body": {"api_keys": [API_KEY]}}, "request_transform.body: api_keys[0]"),
        ({"body": {"form": f"grant_type=client_credentials&client_secret={TOKEN}"}}, "request_transform.body: form"),
        ({"body": {"Password": MASK}}, "request_transform.body: Password"),
    ],
)
def test_given_credentials_written_into_a_route_when_created_then_422_naming_the_rule_not_the_value(
    api: Api, dynamodb: Any, rules: dict[str, Any], name: str
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    before = _items(dynamodb)

    reply = api.call(
        "POST", ROUTES, _route(gateway_id, "https://orders.public-looking.example", request_transform=rules)
    )

    _assert_problem(reply, 422, "validation_failed")
    assert name in reply.text
    assert TOKEN not in reply.text
    assert API_KEY not in reply.text
    assert _items(dynamodb) == before


def _route(gateway_id: str, target: str, **overrides: Any) -> dict[str, Any]:
    return {
        "gateway_id": gateway_id,
        "name": "Order by id",
        "method": "GET",
        "path": "/orders/{id}",
        "targets": [{"url": target}],
        "auth_required": False,
        **overrides,
    }


def _legacy_route(
    dynamodb: Any, gateway_id: str, target: str = "https://svc:pa55@orders.public-looking.example"
) -> str:
    """A route written before credentials in routes were refused: straight into the table."""
    route = Route.stored(
        {
            **_route(gateway_id, target),
            "route_id": "rt_legacy",
            "version": 1,
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T00:00:00.000Z",
            "created_by": "admin-1",
            "request_transform": {
                "headers": {"add": {"Authorization": "Bearer " + TOKEN, "X-Partner": "{{ client.id }}"}},
                "query": {"add": {"api_key": API_KEY}},
                "body": {"client_secret": CLIENT_SECRET, "client_id": "{{ client.id }}"},
            },
        }
    )
    DynamoGatewayStore(dynamodb, TABLE).create_route(route, Actor("admin-0", "api_key", "k0", "seed"))
    return route.route_id


READS: list[Callable[[str, str], tuple[str, str]]] = [
    lambda gw, rt: ("GET", f"{ROUTES}/{rt}"),
    lambda gw, rt: ("GET", f"{ROUTES}?gateway_id={gw}"),
    lambda gw, rt: ("GET", ROUTES),
    lambda gw, rt: ("GET", f"{GATEWAYS}/{gw}/versions/1"),
]


def _read(api: Api, method: str, target: str, authorizer: dict[str, Any]) -> Reply:
    path, _, query = target.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&")) if query else None
    return api.call(method, path, query=params, authorizer=authorizer)


@pytest.mark.parametrize("reader", [ADMIN, GATEWAY_READER])
def test_given_a_route_holding_credentials_when_read_anyhow_by_anyone_then_they_are_masked(
    api: Api, dynamodb: Any, reader: dict[str, Any]
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    route_id = _legacy_route(dynamodb, gateway_id)
    api.deploy(gateway_id)

    for read in READS:
        reply = _read(api, *read(gateway_id, route_id), authorizer=reader)
        assert reply.status == 200, reply.text
        for secret in (TOKEN, API_KEY, CLIENT_SECRET, "svc:pa55", "pa55"):
            assert secret not in reply.text, (read(gateway_id, route_id), reply.text)
        assert MASK in reply.text
        assert "{{ client.id }}" in reply.text  # what is not a credential reads as written
    # Stored as written: the proxy still sends what the route says.
    assert TOKEN in _all_table_text(dynamodb)


@pytest.mark.parametrize(
    ("overrides", "place"),
    [
        (
            {
                "graphql": {
                    "query": "query($k: String) { a(k: $k) }",
                    "variables": {"k": "{{ body.k }}", "apiKey": TOKEN},
                }
            },
            "graphql.variables: apiKey",
        ),
        ({"graphql": {"query": f'mutation {{ login(user: "svc", password: "{TOKEN}") {{ ok }} }}'}}, "graphql.query"),
        (
            {
                "protocol": "soap",
                "soap": {"namespace": "urn:bank:accounts", "operation": "GetBalance"},
                "request_transform": {"body": {"Credentials": {"Username": "svc", "Password": TOKEN}}},
            },
            "request_transform.body: Credentials.Password",
        ),
    ],
)
def test_given_credentials_written_into_graphql_or_soap_templates_when_created_then_422_naming_the_place(
    api: Api, dynamodb: Any, overrides: dict[str, Any], place: str
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    before = _items(dynamodb)
    spec = {"method": "POST", "path": "/accounts", **overrides}
    if "graphql" in overrides:
        spec["protocol"] = "graphql"

    reply = api.call("POST", ROUTES, _route(gateway_id, "https://orders.public-looking.example", **spec))

    _assert_problem(reply, 422, "validation_failed")
    assert place in reply.text
    assert TOKEN not in reply.text
    assert _items(dynamodb) == before


def test_given_a_masked_route_when_written_back_with_its_etag_then_422_and_the_stored_value_is_kept(
    api: Api, dynamodb: Any
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    # A target the SSRF guard takes: the mask alone must be what refuses the write.
    route_id = _legacy_route(dynamodb, gateway_id, "https://orders.public-looking.example")
    read = api.call("GET", f"{ROUTES}/{route_id}")
    body = {
        k: v for k, v in read.json.items() if k not in ("route_id", "version", "created_at", "updated_at", "created_by")
    }
    before = _items(dynamodb)

    written = api.call("PUT", f"{ROUTES}/{route_id}", body, headers={"If-Match": read.header("ETag") or ""})

    _assert_problem(written, 422, "validation_failed")
    assert "Authorization" in written.text
    assert "api_key" in written.text
    assert "request_transform.body: client_secret" in written.text
    assert _items(dynamodb) == before


def test_given_a_route_with_references_when_read_and_written_back_then_round_trips_unchanged(api: Api) -> None:
    gateway_id = api.gateway()["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    put_secret(api, gateway_id, "partner_key", API_KEY)
    created = api.call("POST", ROUTES, _route(gateway_id, "https://orders.public-looking.example", **REFERENCING))
    assert created.status == 201, created.text
    read = api.call("GET", f"{ROUTES}/{created.json['route_id']}", authorizer=GATEWAY_READER)
    assert read.json["request_transform"] == {**REFERENCING["request_transform"], "body": None}
    body = {
        k: v for k, v in read.json.items() if k not in ("route_id", "version", "created_at", "updated_at", "created_by")
    }

    written = api.call(
        "PUT", f"{ROUTES}/{created.json['route_id']}", body, headers={"If-Match": read.header("ETag") or ""}
    )

    assert written.status == 200, written.text
    assert written.json["request_transform"] == read.json["request_transform"]


def test_given_a_secret_deleted_after_its_route_was_written_when_deployed_then_422_and_nothing_deploys(
    api: Api, dynamodb: Any
) -> None:
    gateway_id = api.gateway()["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    put_secret(api, gateway_id, "partner_key", API_KEY)
    assert (
        api.call("POST", ROUTES, _route(gateway_id, "https://orders.public-looking.example", **REFERENCING)).status
        == 201
    )
    assert api.call("DELETE", f"{GATEWAYS}/{gateway_id}/secrets/partner_key").status == 204
    before = _items(dynamodb)

    reply = api.call("POST", f"{GATEWAYS}/{gateway_id}/deploy", {})

    _assert_problem(reply, 422, "unknown_secret")
    assert _items(dynamodb) == before


# -- the data plane ----------------------------------------------------------------------------------


def call_proxy(path: str, request_id: str) -> dict[str, Any]:
    from functions.routes.proxy_handler import lambda_handler

    handler: Any = lambda_handler  # takes Lambda's context; the fake has its fields
    result: dict[str, Any] = handler(proxy_event("GET", path, request_id=request_id), FakeLambdaContext())
    return result


def test_given_a_deployed_route_with_secret_references_when_called_then_the_upstream_gets_the_decrypted_values_and_nothing_else_does(
    api: Api, dynamodb: Any, upstream: RecordingUpstream
) -> None:
    gateway_id = api.gateway(base_path="")["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    put_secret(api, gateway_id, "partner_key", API_KEY)
    created = api.call("POST", ROUTES, _route(gateway_id, upstream.url, **REFERENCING))
    assert created.status == 201, created.text
    api.deploy(gateway_id)

    result = call_proxy("/gw/orders/42", "gw-req-1")

    assert result["statusCode"] == 200, result["body"]
    (received,) = upstream.received
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert received.query == f"api_key={API_KEY}"
    answer = json.dumps(result)
    stored = _all_table_text(dynamodb)  # the request log record among the rest
    assert "REQLOG#" in stored
    for value in (TOKEN, API_KEY):
        assert value not in answer
        assert value not in stored

    # A rotated value serves once the container's check time has passed (a new container here).
    rotated = put_secret(api, gateway_id, "orders_token", "rotated-token-1", headers={"If-Match": '"1"'})
    assert rotated.status == 200, rotated.text
    proxy_bootstrap._proxies.clear()
    assert call_proxy("/gw/orders/42", "gw-req-2")["statusCode"] == 200
    assert upstream.received[-1].headers["authorization"] == "Bearer rotated-token-1"

    # Deleted: the call fails as a 502 naming the secret, and nothing reaches the upstream.
    assert api.call("DELETE", f"{GATEWAYS}/{gateway_id}/secrets/partner_key").status == 204
    proxy_bootstrap._proxies.clear()
    failed = call_proxy("/gw/orders/42", "gw-req-3")
    assert failed["statusCode"] == 502
    problem = json.loads(failed["body"])
    assert (problem["code"], problem["secret"]) == ("secret_unavailable", "partner_key")
    assert len(upstream.received) == 2


class StepClock:
    """The warm container's clock for its secrets' check time (moved by the test, not waited for)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_given_a_secret_deleted_and_set_again_within_the_check_time_when_a_warm_container_rechecks_then_the_new_value_is_sent(
    api: Api, dynamodb: Any, upstream: RecordingUpstream
) -> None:
    gateway_id = api.gateway(base_path="")["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    put_secret(api, gateway_id, "partner_key", API_KEY)
    assert api.call("POST", ROUTES, _route(gateway_id, upstream.url, **REFERENCING)).status == 201
    api.deploy(gateway_id)
    warm = proxy_bootstrap.proxy()  # the container every call below runs in
    assert warm.secrets is not None
    clock = warm.secrets.clock = StepClock()
    assert call_proxy("/gw/orders/42", "gw-req-20")["statusCode"] == 200
    assert upstream.received[-1].headers["authorization"] == f"Bearer {TOKEN}"

    # Deleted and set again before the container looks: the secret starts over at version 1.
    for n, value in enumerate(["recreated-token-1", "recreated-token-2"]):
        assert api.call("DELETE", f"{GATEWAYS}/{gateway_id}/secrets/orders_token").status == 204
        again = put_secret(api, gateway_id, "orders_token", value)
        assert (again.status, again.json["version"]) == (201, 1)
        clock.now += warm.secrets.check_seconds

        assert call_proxy("/gw/orders/42", f"gw-req-2{n + 1}")["statusCode"] == 200
        assert upstream.received[-1].headers["authorization"] == f"Bearer {value}"
    assert proxy_bootstrap.proxy() is warm


def test_given_the_proxy_runs_with_a_key_that_cannot_open_the_secret_when_called_then_502_not_500(
    api: Api, dynamodb: Any, upstream: RecordingUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway_id = api.gateway(base_path="")["gateway_id"]
    put_secret(api, gateway_id, "orders_token", TOKEN)
    put_secret(api, gateway_id, "partner_key", API_KEY)
    assert api.call("POST", ROUTES, _route(gateway_id, upstream.url, **REFERENCING)).status == 201
    api.deploy(gateway_id)
    other_key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    monkeypatch.setenv("UPSTREAM_SECRETS_KEY_ID", other_key)  # e.g. the stack's key was replaced
    proxy_bootstrap._proxies.clear()

    result = call_proxy("/gw/orders/42", "gw-req-9")

    assert result["statusCode"] == 502
    assert json.loads(result["body"])["code"] == "secret_unavailable"
    assert upstream.received == []
