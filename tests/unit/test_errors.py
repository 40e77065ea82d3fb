"""RFC 9457 problem documents built by gateway_core.errors."""

from __future__ import annotations

import json

import pytest

from gateway_core.errors import (
    PROBLEM_TYPE_BASE,
    BadRequest,
    Conflict,
    DependencyUnavailable,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
    problem_body,
    problem_from_error,
    problem_json,
    problem_type,
)


def test_given_a_code_when_building_the_problem_type_then_it_is_a_gateway_urn() -> None:
    assert PROBLEM_TYPE_BASE == "urn:gateway:problem:"
    assert problem_type("rate_limited") == "urn:gateway:problem:rate_limited"


def test_given_all_fields_when_building_a_problem_body_then_every_standard_member_is_set() -> None:
    # Given / When
    body = problem_body(
        status=409,
        code="conflict",
        title="Conflict",
        detail="The route already exists.",
        request_id="req-1",
        instance="/api/v1/routes",
    )

    # Then
    assert body == {
        "type": "urn:gateway:problem:conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "The route already exists.",
        "code": "conflict",
        "request_id": "req-1",
        "instance": "/api/v1/routes",
    }


def test_given_no_request_id_or_instance_when_building_then_those_members_are_omitted() -> None:
    body = problem_body(status=400, code="bad_request", title="Bad Request", detail="x", request_id=None)

    assert "request_id" not in body
    assert "instance" not in body
    assert body["status"] == 400


def test_given_extensions_that_collide_with_standard_members_when_building_then_standard_members_win() -> None:
    # Given extensions that try to rewrite the standard members
    hostile = {
        "type": "https://evil.example/problem",
        "title": "nope",
        "status": 200,
        "detail": "overridden",
        "code": "ok",
        "request_id": "forged",
        "instance": "/forged",
        "retry_after_s": 30,
    }

    # When
    body = problem_body(
        status=429,
        code="rate_limited",
        title="Too Many Requests",
        detail="Slow down.",
        request_id="req-9",
        instance="/api/v1/quotes",
        extensions=hostile,
    )

    # Then the standard members are the real ones and the genuine extension is kept
    assert body["type"] == "urn:gateway:problem:rate_limited"
    assert body["title"] == "Too Many Requests"
    assert body["status"] == 429
    assert body["detail"] == "Slow down."
    assert body["code"] == "rate_limited"
    assert body["request_id"] == "req-9"
    assert body["instance"] == "/api/v1/quotes"
    assert body["retry_after_s"] == 30


def test_given_no_request_id_or_instance_when_extensions_carry_them_then_they_are_not_reported() -> None:
    body = problem_body(
        status=400,
        code="bad_request",
        title="Bad Request",
        detail="d",
        request_id=None,
        instance=None,
        extensions={"instance": "/forged", "request_id": "forged"},
    )

    assert "instance" not in body
    assert "request_id" not in body


def test_given_an_extension_when_building_then_the_callers_dict_is_not_mutated() -> None:
    extensions = {"limit": 10}

    problem_body(status=429, code="rate_limited", title="t", detail="d", request_id="r", extensions=extensions)

    assert extensions == {"limit": 10}


@pytest.mark.parametrize(
    ("error_type", "status", "code"),
    [
        (BadRequest, 400, "bad_request"),
        (Unauthorized, 401, "unauthorized"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not_found"),
        (MethodNotAllowed, 405, "method_not_allowed"),
        (Conflict, 409, "conflict"),
        (PayloadTooLarge, 413, "payload_too_large"),
        (ValidationFailed, 422, "validation_failed"),
        (TooManyRequests, 429, "rate_limited"),
        (DependencyUnavailable, 503, "dependency_unavailable"),
        (GatewayError, 500, "internal_error"),
    ],
)
def test_given_each_error_class_when_converted_then_status_and_code_match(
    error_type: type[GatewayError], status: int, code: str
) -> None:
    body = problem_from_error(error_type("something"), request_id="r")

    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:gateway:problem:{code}"
    assert body["detail"] == "something"


def test_given_a_code_override_and_extensions_when_converted_then_both_are_in_the_body() -> None:
    # Given
    error = Unauthorized("No identity.", code="no_identity", extensions={"hint": "send x-api-key"})

    # When
    body = problem_from_error(error, request_id="r-2", instance="/api/v1/whoami")

    # Then
    assert body["code"] == "no_identity"
    assert body["type"] == "urn:gateway:problem:no_identity"
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body["hint"] == "send x-api-key"
    assert body["instance"] == "/api/v1/whoami"
    # and the class default is untouched for other instances
    assert Unauthorized("x").code == "unauthorized"


def test_given_extensions_and_headers_when_constructing_then_they_are_copied() -> None:
    extensions = {"a": 1}
    headers = {"Retry-After": "1"}

    error = TooManyRequests("slow", extensions=extensions, headers=headers)
    extensions["a"] = 2
    headers["Retry-After"] = "9"

    assert error.extensions == {"a": 1}
    assert error.headers == {"Retry-After": "1"}
    assert str(error) == "slow"


def test_given_a_body_when_serialised_then_json_is_compact_and_sorted() -> None:
    text = problem_json({"status": 404, "code": "not_found", "b": [1, 2]})

    assert text == '{"b":[1,2],"code":"not_found","status":404}'
    assert json.loads(text)["status"] == 404
