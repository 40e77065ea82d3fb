"""infra.local.apigateway.RestApiDataPlane on a hand-built API with a stand-in Lambda runtime:
headers reach authorizers and functions as API Gateway builds them (names without case, `headers`
holding the last value), so the credential an authorizer checks, the key its answer is cached
under and the value the function sees are one; and a function's answer with a header HTTP cannot
carry is a 502, not a broken connection."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from functions.authorizer.core import Denied, header
from infra.local.api_model import ApiModel, Authorizer, GatewayResponse, Method, ResourceNode
from infra.local.apigateway import HttpRequest, RestApiDataPlane
from infra.local.lambdas import FunctionError

GOOD_KEY = "gk_valid_key_of_client_a"
OTHER_KEY = "gk_some_other_key_never_issued"


@dataclass
class Lambdas:
    """The authorizer accepts GOOD_KEY only and reads the key as our authorizers do
    (functions/authorizer/core.header, which refuses two different values: "Unauthorized", as
    Lambda reports the raised error); the function answers with what it saw, or `answer`."""

    checked: list[str] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    answer: dict[str, Any] | None = None

    def invoke(self, name: str, event: dict[str, Any], timeout: float | None = None) -> Any:
        if name == "authorizer":
            try:
                key = header(event, "x-api-key")
            except Denied as refused:
                raise FunctionError({"errorType": "Denied", "errorMessage": str(refused)}) from refused
            self.checked.append(key)
            if key != GOOD_KEY:
                return {
                    "principalId": "nobody",
                    "policyDocument": {
                        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "*"}]
                    },
                }
            return {
                "principalId": "client-a",
                "policyDocument": {"Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]},
                "context": {"checked_key": key},
            }
        self.seen.append(event)
        if self.answer is not None:
            return self.answer
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def _plane(lambdas: Lambdas, *, authorized: bool = True) -> RestApiDataPlane:
    authorizer = Authorizer(
        logical_id="ApiKeyAuthorizer",
        kind="REQUEST",
        function="authorizer",
        identity_sources=("method.request.header.x-api-key",),
        ttl_seconds=300,
        validation_expression=None,
    )
    method = Method(
        http_method="GET",
        resource_path="/items",
        resource_id="items-id",
        authorization_type="CUSTOM" if authorized else "NONE",
        authorizer=authorizer if authorized else None,
        integration_type="AWS_PROXY",
        function="function",
    )
    items = ResourceNode("items", "/items", "items-id", methods={"GET": method})
    api = ApiModel("abc123", "test", ResourceNode("", "/", "root-id", children=[items]), gateway_responses={})
    return RestApiDataPlane(api, cast(Any, lambdas), domain="127.0.0.1:8080")


def _get(plane: RestApiDataPlane, headers: list[tuple[str, str]]) -> int:
    return plane.handle(HttpRequest("GET", "/items", headers, b"", "127.0.0.1")).status


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Api-Key", GOOD_KEY), ("x-api-key", OTHER_KEY)],
        [("x-api-key", GOOD_KEY), ("X-API-KEY", OTHER_KEY)],
        [("X-API-Key", GOOD_KEY), ("x-Api-kEY", "")],
        [("x-api-key", GOOD_KEY), ("X-Api-Key", OTHER_KEY), ("Accept", "*/*")],
    ],
)
def test_two_spellings_of_the_credential_header_are_one_header_whose_last_value_is_checked(
    headers: list[tuple[str, str]],
) -> None:
    # Given a first request naming the credential header twice, a valid key first
    lambdas = Lambdas()
    plane = _plane(lambdas)

    # When it is sent, and then a request with only the second value
    first = _get(plane, headers)
    second = _get(plane, [("x-api-key", headers[1][1])])

    # Then the value checked is the last one, as the function would see it; the valid key that
    # came first allowed nothing, and nothing was cached under a value that was not checked
    # (two different values are refused by the authorizer itself; an empty last value is a
    # missing identity source, refused before the authorizer runs)
    last = headers[1][1]
    assert first in (401, 403)
    assert second in (401, 403)
    assert set(lambdas.checked) <= {last}
    assert lambdas.seen == []


def test_the_function_sees_the_checked_value_and_every_value_in_multi_value_headers() -> None:
    lambdas = Lambdas()
    plane = _plane(lambdas)

    status = _get(plane, [("X-Api-Key", GOOD_KEY), ("x-api-key", GOOD_KEY), ("X-Trace", "t1"), ("x-trace", "t2")])

    assert status == 200
    (event,) = lambdas.seen
    assert event["headers"] == {"X-Api-Key": GOOD_KEY, "X-Trace": "t2"}
    assert event["multiValueHeaders"] == {"X-Api-Key": [GOOD_KEY, GOOD_KEY], "X-Trace": ["t1", "t2"]}
    assert header(event, "x-api-key") == event["requestContext"]["authorizer"]["checked_key"] == GOOD_KEY


def test_a_cached_answer_is_reused_only_for_the_value_it_checked() -> None:
    lambdas = Lambdas()
    plane = _plane(lambdas)

    assert _get(plane, [("x-api-key", GOOD_KEY)]) == 200
    assert _get(plane, [("X-Api-Key", OTHER_KEY), ("x-api-key", GOOD_KEY)]) == 200  # cached: same last value
    assert _get(plane, [("X-Api-Key", GOOD_KEY), ("x-api-key", OTHER_KEY)]) in (401, 403)

    # Checked once, on the value each answer served is keyed by: the one `headers` holds
    assert lambdas.checked == [GOOD_KEY]
    seen = [{name.lower(): value for name, value in e["headers"].items()}["x-api-key"] for e in lambdas.seen]
    assert seen == [GOOD_KEY, GOOD_KEY]


@pytest.mark.parametrize(
    "answer",
    [
        {"statusCode": 200, "headers": {"X-Name": "line\u2028separator"}, "body": ""},
        {"statusCode": 200, "headers": {"X-Name": "split\r\nSet-Cookie: stolen=1"}, "body": ""},
        {"statusCode": 200, "headers": {"X-Name": "nul\x00"}, "body": ""},
        {"statusCode": 200, "headers": {"Bad Name": "value"}, "body": ""},
        {"statusCode": 200, "multiValueHeaders": {"X-Name": ["ok", "bell\x07"]}, "body": ""},
        {"statusCode": 200, "multiValueHeaders": {"X-Name": "not a list"}, "body": ""},
        {"statusCode": 200, "headers": ["not", "a", "map"], "body": ""},
    ],
)
def test_a_function_answer_with_a_header_http_cannot_carry_is_a_502(answer: dict[str, Any]) -> None:
    lambdas = Lambdas(answer=answer)
    plane = _plane(lambdas, authorized=False)

    response = plane.handle(HttpRequest("GET", "/items", [], b"", "127.0.0.1"))

    assert response.status == 502
    assert b"stolen" not in response.body
    assert all("\r" not in v and "\n" not in v for _, v in response.headers)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"multiValueHeaders": {"Link": ["<a>", "<b>"]}}, [("Link", "<a>"), ("Link", "<b>")]),
        (
            {"headers": {"Link": "<a>"}, "multiValueHeaders": {"Link": ["<a>", "<b>"]}},
            [("Link", "<a>"), ("Link", "<b>")],
        ),
        (
            {"headers": {"Link": "<c>"}, "multiValueHeaders": {"Link": ["<a>", "<b>"]}},
            [("Link", "<a>"), ("Link", "<b>"), ("Link", "<c>")],
        ),
        (
            {"headers": {"Etag": '"1"'}, "multiValueHeaders": {"Vary": ["Accept", "Prefer"]}},
            [("Vary", "Accept"), ("Vary", "Prefer"), ("Etag", '"1"')],
        ),
    ],
)
def test_headers_and_multi_value_headers_merge_into_one_list_with_each_pair_once(
    answer: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    # API Gateway's documented rule: both maps merge into a single list; a key-value pair in both
    # appears once (from multiValueHeaders).
    plane = _plane(Lambdas(answer={"statusCode": 200, "body": "", **answer}), authorized=False)

    response = plane.handle(HttpRequest("GET", "/items", [], b"", "127.0.0.1"))

    assert response.status == 200
    names = {name.lower() for name, _ in expected}
    assert [(k, v) for k, v in response.headers if k.lower() in names] == expected


# -- methods: which one serves a request, as API Gateway picks it ---------------------------------

# The template's MISSING_AUTHENTICATION_TOKEN gateway response (infra/constructs/api.py), in short.
_NOT_FOUND = GatewayResponse(
    status=404,
    templates={"application/problem+json": '{"code":"route_not_found","request_id":"$context.requestId"}'},
    headers={"Content-Type": "'application/problem+json'"},
)
STANDARD_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Extension methods, other spellings of standard ones (a method is case-sensitive, RFC 9110 9.1),
# and the names API Gateway uses for itself in a template.
OTHER_METHODS = ["TRACE", "CONNECT", "PROPFIND", "BREW", "M-SEARCH", "get", "Post", "ANY", "any"]


def _methods_plane(lambdas: Lambdas, gateway_responses: dict[str, GatewayResponse]) -> RestApiDataPlane:
    def method(http_method: str, path: str) -> Method:
        return Method(http_method, path, path.strip("/"), "NONE", None, "AWS_PROXY", "function")

    items = ResourceNode("items", "/items", "items", methods={"GET": method("GET", "/items")})
    catch_all = ResourceNode("any", "/any", "any", methods={"ANY": method("ANY", "/any")})
    root = ResourceNode("", "/", "root-id", children=[items, catch_all])
    return RestApiDataPlane(ApiModel("abc123", "test", root, gateway_responses), cast(Any, lambdas), "127.0.0.1:8080")


@pytest.mark.parametrize("http_method", [*STANDARD_METHODS[1:], *OTHER_METHODS])
@pytest.mark.parametrize("path", ["/items", "/nowhere", "/items/deeper"])
def test_a_method_no_resource_defines_gets_the_templates_missing_token_response(http_method: str, path: str) -> None:
    # Given an API whose /items takes GET only, with the template's 404 problem for no method
    lambdas = Lambdas()
    plane = _methods_plane(lambdas, {"MISSING_AUTHENTICATION_TOKEN": _NOT_FOUND})

    # When another method, or any method on an unknown path, is sent
    response = plane.handle(HttpRequest(http_method, path, [], b"", "127.0.0.1"))

    # Then API Gateway's answer is the gateway response: a problem, and no function ran
    assert response.status == 404
    assert ("Content-Type", "application/problem+json") in response.headers
    assert json.loads(response.body)["code"] == "route_not_found"
    assert lambdas.seen == []


@pytest.mark.parametrize("http_method", STANDARD_METHODS)
def test_an_any_method_serves_the_seven_methods_api_gateway_knows(http_method: str) -> None:
    lambdas = Lambdas()
    plane = _methods_plane(lambdas, {"MISSING_AUTHENTICATION_TOKEN": _NOT_FOUND})

    response = plane.handle(HttpRequest(http_method, "/any", [], b"", "127.0.0.1"))

    assert response.status == 200
    (event,) = lambdas.seen
    assert event["httpMethod"] == http_method


@pytest.mark.parametrize("http_method", OTHER_METHODS)
def test_an_any_method_does_not_serve_other_method_names(http_method: str) -> None:
    lambdas = Lambdas()
    plane = _methods_plane(lambdas, {"MISSING_AUTHENTICATION_TOKEN": _NOT_FOUND})

    response = plane.handle(HttpRequest(http_method, "/any", [], b"", "127.0.0.1"))

    assert response.status == 404
    assert lambdas.seen == []


@pytest.mark.parametrize("http_method", ["TRACE", "get", "ANY", "DELETE"])
def test_without_a_gateway_response_no_method_is_api_gateways_own_403(http_method: str) -> None:
    lambdas = Lambdas()
    plane = _methods_plane(lambdas, {})

    response = plane.handle(HttpRequest(http_method, "/items", [], b"", "127.0.0.1"))

    assert response.status == 403
    assert json.loads(response.body) == {"message": "Missing Authentication Token"}
    assert lambdas.seen == []
