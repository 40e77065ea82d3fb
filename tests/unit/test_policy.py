"""infra.local.apigateway.policy_allows: IAM evaluation of an authorizer's policy per method ARN."""

from __future__ import annotations

from typing import Any

import pytest

from functions.authorizer.core import Principal, allow
from infra.local.apigateway import policy_allows

API = "arn:aws:execute-api:us-east-1:123456789012:abc123"
GET_WHOAMI = f"{API}/prod/GET/api/v1/whoami"
POST_KEYS = f"{API}/prod/POST/api/v1/clients/c-1/keys"
DELETE_KEY = f"{API}/prod/DELETE/api/v1/clients/c-1/keys/k-1"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def statement(effect: str, resource: str | list[str], action: str | list[str] = "execute-api:Invoke") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


@pytest.mark.parametrize("method_arn", [GET_WHOAMI, POST_KEYS, DELETE_KEY, f"{API}/dev/PATCH/"])
def test_given_an_allow_on_the_api_wildcard_when_evaluated_then_every_method_is_allowed(method_arn: str) -> None:
    assert policy_allows(policy(statement("Allow", f"{API}/*/*")), method_arn)


def test_given_a_single_statement_object_when_evaluated_then_it_is_honoured() -> None:
    document = {"Version": "2012-10-17", "Statement": statement("Allow", f"{API}/*")}

    assert policy_allows(document, GET_WHOAMI)


def test_given_an_allow_and_an_explicit_deny_when_evaluated_then_the_deny_wins() -> None:
    # Given the whole API allowed but deleting keys denied (in either order)
    allow_all = statement("Allow", f"{API}/*/*")
    deny_delete = statement("Deny", f"{API}/*/DELETE/*")

    # Then
    for document in (policy(allow_all, deny_delete), policy(deny_delete, allow_all)):
        assert not policy_allows(document, DELETE_KEY)
        assert policy_allows(document, GET_WHOAMI)


@pytest.mark.parametrize(
    "document",
    [
        {},
        policy(),
        policy(statement("Allow", "arn:aws:execute-api:us-east-1:123456789012:otherapi/*/*")),
        policy(statement("Allow", f"{API}/*/*", action="execute-api:ManageConnections")),
        policy(statement("Allow", f"{API}/*/*", action=["s3:GetObject", "dynamodb:GetItem"])),
        policy({"Effect": "Maybe", "Action": "execute-api:Invoke", "Resource": f"{API}/*/*"}),
    ],
)
def test_given_no_matching_allow_when_evaluated_then_denied(document: dict[str, Any]) -> None:
    assert not policy_allows(document, GET_WHOAMI)


@pytest.mark.parametrize(
    "action",
    [["s3:GetObject", "execute-api:Invoke"], "execute-api:*", ["execute-api:*"], "*"],
)
def test_given_an_action_list_or_wildcard_covering_invoke_when_evaluated_then_allowed(action: str | list[str]) -> None:
    assert policy_allows(policy(statement("Allow", f"{API}/*/*", action=action)), GET_WHOAMI)


def test_given_a_resource_list_when_evaluated_then_any_listed_resource_allows() -> None:
    document = policy(statement("Allow", [f"{API}/prod/GET/*", f"{API}/prod/POST/api/v1/clients/*"]))

    assert policy_allows(document, GET_WHOAMI)
    assert policy_allows(document, POST_KEYS)
    assert not policy_allows(document, DELETE_KEY)


def test_given_a_policy_scoped_to_one_method_when_reused_for_another_then_it_does_not_allow_it() -> None:
    # Given the policy a naive authorizer returns for the first request (its exact method ARN)
    scoped = policy(statement("Allow", GET_WHOAMI))

    # Then API Gateway, reusing the cached result, refuses every other method (the false 403)
    assert policy_allows(scoped, GET_WHOAMI)
    assert not policy_allows(scoped, POST_KEYS)
    assert not policy_allows(scoped, f"{API}/prod/GET/api/v1/gateway/health")


def test_given_the_gateway_authorizer_policy_for_one_method_when_reused_for_others_then_all_are_allowed() -> None:
    # Given the policy our authorizer returns for GET /whoami
    principal = Principal("c-1", "api_key", ("read",), "free", "k-1")
    document = allow(principal, GET_WHOAMI)["policyDocument"]

    # Then a cached copy of it still allows every other method and path of the API, and no other API
    assert policy_allows(document, POST_KEYS)
    assert policy_allows(document, DELETE_KEY)
    assert not policy_allows(document, "arn:aws:execute-api:us-east-1:123456789012:otherapi/prod/GET/x")


def test_given_an_action_in_lower_case_when_evaluated_then_it_still_matches_like_iam() -> None:
    assert policy_allows(policy(statement("Allow", f"{API}/*/*", action="execute-api:invoke")), GET_WHOAMI)
