"""infra.local.apigateway.RestApiDataPlane on a hand-built API with a stand-in Lambda runtime:
headers reach authorizers and functions as API Gateway builds them (names without case, `headers`
holding the last value), so the credential an authorizer checks, the key its answer is cached
under and the value the function sees are one; and a function's answer with a header HTTP cannot
carry is a 502, not a broken connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from functions.authorizer.core import Denied, header
from infra.local.api_model import ApiModel, Authorizer, Method, ResourceNode
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
