"""REST to GraphQL and back: functions.routes.logic.transform.graphql."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from functions.routes.logic.transform.graphql import (
    MAX_ERRORS,
    graphql_request,
    graphql_response,
    validate_graphql_config,
)
from functions.routes.logic.transform.jsonio import loads_json
from functions.routes.logic.transform.templates import TemplateError
from gateway_core.errors import UpstreamError

QUERY = "query GetAccount($id: ID!) { account(id: $id) { id balance { amount currency } } }"


# --- requests -------------------------------------------------------------------------------------


def test_given_a_config_with_an_operation_name_when_building_then_query_operation_name_and_variables() -> None:
    # When
    body = graphql_request({"id": "acc-1"}, {"query": QUERY, "operation_name": "GetAccount"})
    # Then
    assert json.loads(body) == {"query": QUERY, "operationName": "GetAccount", "variables": {"id": "acc-1"}}


def test_given_no_operation_name_when_building_then_the_member_is_left_out() -> None:
    body = graphql_request({"id": "acc-1"}, {"query": QUERY})
    assert json.loads(body) == {"query": QUERY, "variables": {"id": "acc-1"}}
    assert b"operationName" not in body


@pytest.mark.parametrize("variables", [None, ["a"], "text", 5])
def test_given_variables_that_are_not_an_object_when_building_then_they_are_an_empty_object(variables: Any) -> None:
    assert json.loads(graphql_request(variables, {"query": QUERY}))["variables"] == {}


def test_given_decimal_variables_when_building_then_they_stay_exact() -> None:
    # Given amounts a float would round or respell
    variables = {"amount": Decimal("1234.50"), "rate": Decimal("0.1000000000000000055511151231257827")}
    # When
    body = graphql_request(variables, {"query": "mutation Pay($amount: Decimal!) { pay(amount: $amount) }"})
    # Then the written numbers are the exact decimal spellings
    assert b'"amount":1234.50' in body
    assert b'"rate":0.1000000000000000055511151231257827' in body
    assert loads_json(body)["variables"] == variables


# --- responses ------------------------------------------------------------------------------------


def test_given_data_when_reading_the_answer_then_data_comes_back_with_exact_numbers() -> None:
    body = b'{"data":{"account":{"id":"acc-1","balance":{"amount":1234.50,"currency":"EUR"}}}}'
    data = graphql_response(200, body)
    assert data == {"account": {"id": "acc-1", "balance": {"amount": Decimal("1234.50"), "currency": "EUR"}}}
    assert str(data["account"]["balance"]["amount"]) == "1234.50"


def test_given_errors_when_reading_the_answer_then_502_with_only_message_path_and_code() -> None:
    # Given errors carrying upstream internals (locations, stack traces, other extensions)
    body = json.dumps(
        {
            "data": {"account": None},
            "errors": [
                {
                    "message": "Account not found",
                    "path": ["account", 0, "balance"],
                    "locations": [{"line": 1, "column": 2}],
                    "extensions": {"code": "NOT_FOUND", "stacktrace": ["at db.py:12"], "sql": "SELECT 1"},
                },
                {"message": "Second", "extensions": "not an object"},
            ],
        }
    ).encode()
    # When
    with pytest.raises(UpstreamError) as caught:
        graphql_response(200, body)
    # Then
    error = caught.value
    assert error.status == 502
    assert error.code == "upstream_graphql_error"
    assert error.extensions == {
        "errors": [
            {"message": "Account not found", "path": ["account", 0, "balance"], "code": "NOT_FOUND"},
            {"message": "Second"},
        ]
    }
    assert error.detail == "The GraphQL upstream reported 2 error(s): Account not found"


def test_given_odd_error_entries_when_reading_the_answer_then_they_are_made_safe() -> None:
    body = json.dumps(
        {
            "errors": [
                "plain text error",
                {"message": "m" * 1000, "path": [{"x": 1}, 3], "extensions": {"code": "C" * 200}},
                {"no": "message"},
            ]
        }
    ).encode()
    with pytest.raises(UpstreamError) as caught:
        graphql_response(200, body)
    errors = caught.value.extensions["errors"]
    assert errors[0] == {"message": "plain text error"}
    assert errors[1] == {"message": "m" * 500, "path": ["{'x': 1}", 3], "code": "C" * 100}
    assert errors[2] == {"message": ""}


def test_given_a_single_error_object_when_reading_the_answer_then_it_is_listed() -> None:
    with pytest.raises(UpstreamError) as caught:
        graphql_response(200, b'{"errors":{"message":"boom"}}')
    assert caught.value.code == "upstream_graphql_error"
    assert caught.value.extensions == {"errors": [{"message": "boom"}]}


def test_given_many_errors_when_reading_the_answer_then_at_most_the_maximum_are_listed() -> None:
    body = json.dumps({"errors": [{"message": f"e{i}"} for i in range(25)]}).encode()
    with pytest.raises(UpstreamError) as caught:
        graphql_response(200, body)
    assert [e["message"] for e in caught.value.extensions["errors"]] == [f"e{i}" for i in range(MAX_ERRORS)]
    assert "reported 10 error(s): e0" in caught.value.detail


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b'{"errors":[]}'), (200, b'{"result":1}'), (500, b'{"data":{"a":1}}'), (404, b'{"message":"nope"}')],
)
def test_given_no_data_or_an_http_error_when_reading_the_answer_then_502_upstream_error(
    status: int, body: bytes
) -> None:
    with pytest.raises(UpstreamError) as caught:
        graphql_response(status, body)
    assert caught.value.status == 502
    assert caught.value.code == "upstream_error"
    assert f"HTTP {status}" in caught.value.detail


@pytest.mark.parametrize(
    "body", [b"", b"<html>Bad Gateway</html>", b"{", b"[1,2]", b'"text"', b"null", b"[" * 100 + b"]" * 100]
)
def test_given_an_answer_that_is_no_json_object_when_reading_then_502_upstream_unreadable(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        graphql_response(502, body)
    assert caught.value.status == 502
    assert caught.value.code == "upstream_unreadable"


# --- config validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"query": QUERY, "operation_name": "GetAccount"},
        {"query": "  mutation Pay($a: Int) { pay(a: $a) }", "operation_name": "Pay"},
        {"query": "{ accounts { id } }"},
        {"query": "query { a } query Other { b }", "operation_name": "Other"},
        {"query": QUERY, "variables": {"id": "{{ path.id }}", "amount": "{{ body.amount | number }}"}},
    ],
)
def test_given_a_valid_config_when_validating_then_it_passes(config: dict[str, Any]) -> None:
    validate_graphql_config(config)  # no TemplateError


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"query": "subscription OnPayment { paid { id } }"}, "no subscriptions"),
        ({"query": "fragment F on Account { id }"}, "no subscriptions"),
        ({"query": ""}, "no subscriptions"),
        ({}, "no subscriptions"),
        ({"query": "querying { a }"}, "no subscriptions"),
        ({"query": "query { account { id }"}, "do not balance"),
        ({"query": "query Q($id: ID! { a }"}, "do not balance"),
        ({"query": "{ a } }"}, "do not balance"),
        ({"query": QUERY, "operation_name": "Other"}, "operation_name 'Other' is not an operation of the document"),
        ({"query": "{ a }", "operation_name": "A"}, "operation_name 'A' is not an operation"),
        ({"query": QUERY, "variables": {"id": "{{ environ.id }}"}}, "is not one of"),
        ({"query": QUERY, "variables": {"id": "{{ path.id | nope }}"}}, "unknown filter"),
    ],
)
def test_given_a_bad_config_when_validating_then_template_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        validate_graphql_config(config)
