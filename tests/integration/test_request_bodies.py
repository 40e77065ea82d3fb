"""Every operation that takes a body, found in the served OpenAPI document (so a new endpoint is
covered the day it is added), refuses the whole family of bad bodies with a 4xx problem and
changes nothing: not JSON at all, JSON in another media type or charset, bytes that are not
UTF-8, a byte order mark, nesting deep enough to crash a parser, numbers no model can hold,
NaN/Infinity, duplicate names, the wrong top-level type, an empty body, one over the size limit.
An empty body is bad only where the body has a required member: where every member has a default
(deploy, rollback, the rotations, the partial updates) it is taken as `{}`.

Each call goes to the function API Gateway sends the path to (the management function, the data
plane for the batch, or the webhooks function for the paths of its fragment), with the body base64-encoded as API Gateway delivers it (the API's
binary media type is `*/*`), behind an admin's authorizer context, against entities that exist."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import boto3
import pytest

from functions.routes.api.docs import WEBHOOKS_FRAGMENT
from functions.routes.api.operations import OPERATIONS
from gateway_core.settings import settings
from tests.certificates import make_certificate
from tests.integration.conftest import create_data_table, create_table, table_items
from tests.integration.helpers import ADMIN, REGION, FakeLambdaContext, proxy_event, response_header

TABLE = "gateway-data-bodies"
RATE_TABLE = "gateway-rate-limits-bodies"
PROBLEM = "application/problem+json"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Bad(NamedTuple):
    name: str
    body: bytes
    content_type: str | None
    status: int
    code: str
    headers: dict[str, str] = {}


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


OBJECT = b'{"name": "Acme", "description": "x"}'
FAMILY = [
    Bad("invalid utf-8", b'{"name": "Acme \xff\xfe"}', "application/json", 400, "invalid_body"),
    Bad("overlong utf-8", b'{"name": "\xc0\xaf"}', "application/json", 400, "invalid_body"),
    Bad("json as text/plain", OBJECT, "text/plain", 415, "unsupported_media_type"),
    Bad(
        "xml",
        b'<?xml version="1.0"?><client><name>Acme</name></client>',
        "application/xml",
        415,
        "unsupported_media_type",
    ),
    Bad("xml claiming json", b'<?xml version="1.0"?><client/>', "application/json", 400, "invalid_body"),
    Bad("form", b"name=Acme&monthly_quota=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    Bad(
        "multipart",
        b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nAcme\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
        415,
        "unsupported_media_type",
    ),
    Bad("multipart without boundary", b"--b--", "multipart/form-data", 415, "unsupported_media_type"),
    Bad(
        "json in utf-16 by charset",
        '{"name": "Acme"}'.encode("utf-16"),
        "application/json; charset=utf-16",
        415,
        "unsupported_media_type",
    ),
    Bad("utf-16 with bom", '{"name": "Acme"}'.encode("utf-16"), "application/json", 400, "invalid_body"),
    Bad("utf-16le without bom", '{"name": "Acme"}'.encode("utf-16-le"), "application/json", 400, "invalid_body"),
    Bad("utf-8 bom", b"\xef\xbb\xbf" + OBJECT, "application/json", 400, "invalid_body"),
    Bad(
        "gzip content coding",
        gzip.compress(OBJECT),
        "application/json",
        415,
        "unsupported_media_type",
        {"Content-Encoding": "gzip"},
    ),
    Bad("arrays 10,000 deep", b"[" * 10_000 + b"]" * 10_000, "application/json", 400, "invalid_body"),
    Bad("objects 10,000 deep", _nested(10_000), "application/json", 400, "invalid_body"),
    Bad("objects 200 deep", _nested(200), "application/json", 400, "invalid_body"),
    Bad("5,000-digit integer", b'{"monthly_quota": ' + b"9" * 5000 + b"}", "application/json", 400, "invalid_body"),
    Bad("float overflowing to infinity", b'{"monthly_quota": 1e400}', "application/json", 400, "invalid_body"),
    Bad("NaN", b'{"monthly_quota": NaN}', "application/json", 400, "invalid_body"),
    Bad("Infinity", b'{"monthly_quota": Infinity}', "application/json", 400, "invalid_body"),
    Bad("-Infinity", b'{"monthly_quota": -Infinity}', "application/json", 400, "invalid_body"),
    Bad("duplicate names", b'{"name": "Acme", "name": "Evil"}', "application/json", 400, "invalid_body"),
    Bad("lone surrogate escape", b'{"name": "\\ud800"}', "application/json", 400, "invalid_body"),
    Bad("truncated", b'{"name": "Acme",', "application/json", 400, "invalid_body"),
    Bad("whitespace only", b"  \r\n ", "application/json", 400, "invalid_body"),
    Bad("top-level array", b"[]", "application/json", 422, "validation_failed"),
    Bad("top-level string", b'"Acme"', "application/json", 422, "validation_failed"),
    Bad("top-level number", b"1e40", "application/json", 422, "validation_failed"),
    Bad("top-level null", b"null", "application/json", 422, "validation_failed"),
    Bad("empty", b"", "application/json", 422, "validation_failed"),  # but see EMPTY_IS_OBJECT
    Bad("over the size limit", b'{"name": "' + b"a" * 6_000_000 + b'"}', "application/json", 413, "payload_too_large"),
]


def _document() -> dict[str, Any]:
    event = proxy_event("GET", "/api/v1/docs")
    event["queryStringParameters"] = {"format": "json"}
    event["multiValueQueryStringParameters"] = {"format": ["json"]}
    document: dict[str, Any] = json.loads(_handler("GET", "/api/v1/docs")(event, FakeLambdaContext())["body"])
    return document


def _operations_with_a_body() -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, item in _document()["paths"].items()
        for method, operation in item.items()
        # JSON bodies; the token endpoint's form is RFC 6749's (tests/integration/test_oauth*.py)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    )


_WEBHOOKS = {
    (method.upper(), path)
    for path, item in json.loads(WEBHOOKS_FRAGMENT.read_text(encoding="utf-8"))["paths"].items()
    for method in item
}


def _handler(method: str, path: str) -> Handler:
    """The function that serves the operation (operations.py and the webhooks fragment name those
    the management function does not serve)."""
    served_by = next((o.function for o in OPERATIONS if o.method == method and o.path == path), "management")
    if (method, path) in _WEBHOOKS:
        from functions.webhooks.handler import lambda_handler as webhooks_handler

        webhooks: Handler = webhooks_handler
        return webhooks
    if served_by == "proxy":
        from functions.routes.proxy_handler import lambda_handler as proxy_handler

        handler: Handler = proxy_handler  # takes Lambda's context; the fake has its fields
        return handler
    assert served_by == "management", f"{method} {path} is served by {served_by}: give this test its handler"
    from functions.routes.management_handler import lambda_handler

    management: Handler = lambda_handler
    return management


WITH_BODY = _operations_with_a_body()
# The operations whose body has a default for every member: an empty body (no bytes, labelled
# JSON or not) is `{}` there, as if the caller had sent it (gateway_core.http).
EMPTY_IS_OBJECT = sorted(
    [
        ("POST", "/api/v1/clients/{client_id}/secret"),
        ("POST", "/api/v1/gateway/keys/{key_id}/rotate"),
        ("POST", "/api/v1/gateways/{gateway_id}/deploy"),
        ("POST", "/api/v1/gateways/{gateway_id}/rollback"),
        ("PUT", "/api/v1/clients/{client_id}"),
        ("PUT", "/api/v1/gateway/keys/{key_id}"),
        ("PATCH", "/api/v1/gateway/issuers/{issuer_id}"),
    ]
)
# The webhooks function's (its API tests take them further, on endpoints that exist).
WEBHOOKS_EMPTY_IS_OBJECT = sorted(
    [
        ("PATCH", "/api/v1/webhooks/{endpoint_id}"),
        ("POST", "/api/v1/webhooks/{endpoint_id}/rotate-secret"),
    ]
)


def _call(handler: Handler, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> dict[str, Any]:
    event = proxy_event(method, path, headers=headers, authorizer=ADMIN)
    if body is not None:
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
    return handler(event, FakeLambdaContext())


@pytest.fixture
def dynamodb(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    create_data_table(TABLE)
    create_table(RATE_TABLE, range_key=None)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("RATE_LIMIT_TABLE_NAME", RATE_TABLE)
    monkeypatch.setenv("TOKEN_ISSUER", "https://gateway.bank.example/prod")
    monkeypatch.setenv("STAGE", "test")
    monkeypatch.delenv("UPSTREAM_ALLOW_CIDRS", raising=False)
    settings.cache_clear()
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def path_values(dynamodb: Any) -> dict[str, str]:
    """One existing entity of each kind a path names, made through the API itself."""
    from functions.routes.management_handler import lambda_handler

    def create(path: str, body: dict[str, Any]) -> dict[str, Any]:
        json_headers = {"Content-Type": "application/json"}
        answer = _call(lambda_handler, "POST", path, json.dumps(body).encode(), json_headers)
        assert answer["statusCode"] == 201, answer["body"]
        created: dict[str, Any] = json.loads(answer["body"])
        return created

    client = create(
        "/api/v1/clients/register",
        {
            "name": "Acme",
            "client_type": "integration",
            "contact_email": "ops@acme.example",
            "allowed_scopes": ["data:read"],
        },
    )["client_id"]
    key = create("/api/v1/gateway/keys", {"client_id": client, "name": "main"})["key_id"]
    pem, _ = make_certificate("acme")
    fingerprint = create(f"/api/v1/clients/{client}/certificates", {"pem": pem})["fingerprint"]
    issuer = create(
        "/api/v1/gateway/issuers",
        {
            "issuer": "https://login.partner.example/v2",
            "jwks_url": "https://login.partner.example/keys",
            "audiences": ["api"],
        },
    )["issuer_id"]
    gateway = create("/api/v1/gateways", {"name": "Payments", "base_path": "/payments"})["gateway_id"]
    route = create(
        "/api/v1/gateway/routes",
        {
            "gateway_id": gateway,
            "name": "Get",
            "method": "GET",
            "path": "/x",
            "targets": [{"url": "https://up.example"}],
        },
    )["route_id"]
    return {
        "client_id": client,
        "key_id": key,
        "fingerprint": fingerprint,
        "issuer_id": issuer,
        "gateway_id": gateway,
        "route_id": route,
    }


def _everything(dynamodb: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rates: list[dict[str, Any]] = dynamodb.scan(TableName=RATE_TABLE, ConsistentRead=True)["Items"]
    return table_items(dynamodb, TABLE), rates


def test_the_document_lists_the_operations_with_a_body_of_every_function_that_takes_one() -> None:
    # The discovery this module relies on finds the management API's and the data plane's.
    assert ("POST", "/api/v1/clients/register") in WITH_BODY
    assert ("PUT", "/api/v1/gateway/ip-denylist") in WITH_BODY
    assert ("POST", "/api/v1/batch") in WITH_BODY
    assert len(WITH_BODY) >= 15


@pytest.mark.parametrize(("method", "path"), WITH_BODY, ids=[f"{m} {p}" for m, p in WITH_BODY])
def test_every_bad_body_is_a_4xx_problem_that_changes_nothing(
    dynamodb: Any, path_values: dict[str, str], method: str, path: str
) -> None:
    # Given an operation on entities that exist, and the state of both tables
    concrete = re.sub(r"\{(\w+)\}", lambda m: path_values.get(m.group(1), f"unknown-{m.group(1)}"), path)
    handler = _handler(method, path)
    before = _everything(dynamodb)
    wrong: list[str] = []

    for bad in FAMILY:
        if bad.name == "empty" and (method, path) in EMPTY_IS_OBJECT + WEBHOOKS_EMPTY_IS_OBJECT:
            continue  # not a bad body there: test_an_empty_body_where_every_member_has_a_default_is_an_empty_object
        # When the bad body is sent
        headers = {**({"Content-Type": bad.content_type} if bad.content_type else {}), **bad.headers}
        answer = _call(handler, method, concrete, bad.body, headers)

        # Then a problem of the member's status and code, and nothing changed
        status, text = answer["statusCode"], answer.get("body") or ""
        problem = json.loads(text) if response_header(answer, "Content-Type") == PROBLEM else {}
        if (status, problem.get("code")) != (bad.status, bad.code):
            wrong.append(f"{bad.name}: {status} {text[:200]}")
        elif status in (400, 422) and not problem.get("errors"):
            wrong.append(f"{bad.name}: {status} without an errors list")
        if _everything(dynamodb) != before:
            wrong.append(f"{bad.name}: changed the tables")
            before = _everything(dynamodb)

    assert wrong == []


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_the_operations_taking_an_empty_body_as_an_empty_object_are_those_whose_body_requires_nothing() -> None:
    document = _document()
    requires_nothing = sorted(
        (method, path)
        for method, path in WITH_BODY
        if not _schema(
            document,
            document["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"],
        ).get("required")
    )
    assert [o for o in requires_nothing if _handler(*o).__module__.endswith("management_handler")] == EMPTY_IS_OBJECT
    assert [o for o in requires_nothing if o in _WEBHOOKS] == WEBHOOKS_EMPTY_IS_OBJECT


@pytest.mark.parametrize("content_type", ["application/json", None], ids=["labelled", "unlabelled"])
@pytest.mark.parametrize(("method", "path"), EMPTY_IS_OBJECT, ids=[f"{m} {p}" for m, p in EMPTY_IS_OBJECT])
def test_an_empty_body_where_every_member_has_a_default_is_an_empty_object(
    dynamodb: Any, path_values: dict[str, str], method: str, path: str, content_type: str | None
) -> None:
    from functions.routes.management_handler import lambda_handler

    concrete = path.format(**path_values)
    headers = {"Content-Type": content_type} if content_type else {}
    if path.endswith("/rollback"):  # something to roll back to: versions 1 and 2, 2 serving
        for _ in range(2):
            deployed = _call(lambda_handler, "POST", concrete.replace("/rollback", "/deploy"), b"{}", {})
            assert deployed["statusCode"] == 201, deployed["body"]
    if method in ("PUT", "PATCH"):  # a change of what exists: with the ETag read (If-Match)
        read = _call(lambda_handler, "GET", concrete, None, {})
        headers["If-Match"] = response_header(read, "ETag") or ""
        before = json.loads(read["body"])

    answer = _call(lambda_handler, method, concrete, b"", headers)

    assert answer["statusCode"] in (200, 201), answer["body"]
    if path.endswith("/rollback"):
        assert json.loads(answer["body"])["deployment"]["active_version"] == 1  # the default: the one before
    if method in ("PUT", "PATCH"):  # nothing to change: every member kept
        after = json.loads(answer["body"])
        kept = {"version", "updated_at", "status", "last_used_at"}
        assert {k: v for k, v in after.items() if k not in kept} == {k: v for k, v in before.items() if k not in kept}


def test_no_body_and_no_content_type_on_an_operation_that_needs_one_is_422(
    dynamodb: Any, path_values: dict[str, str]
) -> None:
    from functions.routes.management_handler import lambda_handler

    for method, path in [("POST", "/api/v1/clients/register"), ("POST", "/api/v1/gateways/{gateway_id}/activate")]:
        answer = _call(lambda_handler, method, path.format(**path_values), None, {})

        assert answer["statusCode"] == 422, answer["body"]
        assert json.loads(answer["body"])["errors"][0]["loc"] == ["body"]


# --- numbers are bounded by the models ---------------------------------------------------------


def _unbounded_numbers(schema: dict[str, Any], schemas: dict[str, Any], where: str, seen: frozenset[str]) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else _unbounded_numbers(schemas[name], schemas, where, seen | {name})
    found: list[str] = []
    for keyword in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(keyword, []):
            found += _unbounded_numbers(option, schemas, where, seen)
    if schema.get("type") in ("integer", "number"):
        low = "minimum" in schema or "exclusiveMinimum" in schema
        high = "maximum" in schema or "exclusiveMaximum" in schema
        if not (low and high):
            found.append(where)
    for name, inner in schema.get("properties", {}).items():
        found += _unbounded_numbers(inner, schemas, f"{where}.{name}", seen)
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), dict):
            found += _unbounded_numbers(schema[keyword], schemas, f"{where}[]", seen)
    return found


def test_every_number_a_request_may_carry_has_a_lower_and_an_upper_bound() -> None:
    # Given the served document
    document = _document()
    schemas = document["components"]["schemas"]
    checked, unbounded = 0, []

    # When every integer and number of every body and parameter is looked at
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for content in operation.get("requestBody", {}).get("content", {}).values():
                unbounded += _unbounded_numbers(content["schema"], schemas, f"{where} body", frozenset())
                checked += 1
            for parameter in operation.get("parameters", []):
                unbounded += _unbounded_numbers(
                    parameter.get("schema", {}), schemas, f"{where} {parameter['name']}", frozenset()
                )

    # Then none is open-ended (a 10**40 would reach DynamoDB, which refuses it: a 500)
    assert checked >= 15
    assert unbounded == []


def test_the_bound_check_sees_an_open_ended_number() -> None:
    schemas = {"Limits": {"properties": {"n": {"type": "integer", "minimum": 1}}}}
    assert _unbounded_numbers({"$ref": "#/components/schemas/Limits"}, schemas, "body", frozenset()) == ["body.n"]


REGISTRATION = {
    "name": "Acme",
    "client_type": "integration",
    "contact_email": "ops@acme.example",
    "allowed_scopes": ["data:read"],
}


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/api/v1/clients/register", '{"monthly_quota": 1e40}', ["body", "monthly_quota"]),
        ("/api/v1/clients/register", '{"monthly_quota": 1' + "0" * 39 + "}", ["body", "monthly_quota"]),
        ("/api/v1/clients/register", '{"monthly_quota": -1e40}', ["body", "monthly_quota"]),
        ("/api/v1/clients/register", '{"monthly_quota": 1.5}', ["body", "monthly_quota"]),
        (
            "/api/v1/clients/register",
            '{"rate_limits": {"per_minute": 1' + "0" * 38 + ', "per_hour": 1e39, "per_day": 1e40}}',
            ["body", "rate_limits", "per_minute"],
        ),
        ("/api/v1/clients/{client_id}", '{"monthly_quota": 1' + "0" * 39 + "}", ["body", "monthly_quota"]),
        (
            "/api/v1/gateway/keys",
            '{"rate_limits": {"per_minute": 1, "per_hour": 2, "per_day": 1' + "0" * 39 + "}}",
            ["body", "rate_limits", "per_day"],
        ),
        ("/api/v1/gateways/{gateway_id}/activate", '{"version": 1' + "0" * 39 + "}", ["body", "version"]),
        ("/api/v1/gateways/{gateway_id}/rollback", '{"version": 1e40}', ["body", "version"]),
    ],
)
def test_a_number_past_its_bound_is_a_422_naming_it_and_nothing_is_written(
    dynamodb: Any, path_values: dict[str, str], path: str, body: str, loc: list[str]
) -> None:
    # Given a body that is valid but for one number far out of range
    from functions.routes.management_handler import lambda_handler

    concrete = path.format(**path_values)
    method = "PUT" if concrete.startswith("/api/v1/clients/cl_") else "POST"
    fields: dict[str, Any] = {**REGISTRATION} if path == "/api/v1/clients/register" else {}
    if path == "/api/v1/gateway/keys":
        fields = {"client_id": path_values["client_id"], "name": "more"}
    text = json.dumps(fields)[:-1] + (", " if fields else "") + body[1:]
    before = _everything(dynamodb)

    # When it is sent
    answer = _call(lambda_handler, method, concrete, text.encode(), {"Content-Type": "application/json"})

    # Then 422 with the number's location, and no change
    assert answer["statusCode"] == 422, answer["body"]
    problem = json.loads(answer["body"])
    assert problem["code"] == "validation_failed"
    assert loc in [e["loc"] for e in problem["errors"]]
    assert _everything(dynamodb) == before


def test_a_version_past_its_bound_in_the_path_is_a_422(dynamodb: Any, path_values: dict[str, str]) -> None:
    from functions.routes.management_handler import lambda_handler

    path = f"/api/v1/gateways/{path_values['gateway_id']}/versions/1{'0' * 39}"
    answer = _call(lambda_handler, "GET", path, None, {})

    assert answer["statusCode"] == 422, answer["body"]
    assert ["path", "version"] in [e["loc"] for e in json.loads(answer["body"])["errors"]]
