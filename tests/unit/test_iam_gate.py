"""The local IAM gate's policy evaluation and what it reads from requests (infra/local/iam_gate.py)."""

from __future__ import annotations

import io
import json
from typing import Any

from infra.local.iam_gate import IamGate, Principal, allowed

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/Data"


def test_an_allow_is_needed_and_an_explicit_deny_wins() -> None:
    statements = [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE}]
    assert allowed(statements, "dynamodb:GetItem", TABLE, {})
    assert not allowed(statements, "dynamodb:PutItem", TABLE, {})
    assert not allowed(statements, "dynamodb:GetItem", TABLE + "2", {})
    deny = [*statements, {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}]
    assert not allowed(deny, "dynamodb:GetItem", TABLE, {})


def test_actions_match_case_insensitively_with_wildcards_and_resources_exactly() -> None:
    statements = [{"Effect": "Allow", "Action": ["kms:GenerateDataKey*"], "Resource": ["arn:aws:kms:*:*:key/*"]}]
    assert allowed(statements, "kms:generatedatakey", "arn:aws:kms:us-east-1:1:key/abc", {})
    assert not allowed(statements, "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/abc", {})


def test_leading_keys_and_attributes_conditions_narrow_a_grant() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": TABLE,
            "Condition": {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APIKEY#*"]},
                "ForAllValues:StringEquals": {"dynamodb:Attributes": ["PK", "SK", "last_used_at"]},
            },
        }
    ]
    ok = {"dynamodb:LeadingKeys": ["APIKEY#abc"], "dynamodb:Attributes": ["PK", "SK", "last_used_at"]}
    assert allowed(statements, "dynamodb:UpdateItem", TABLE, ok)
    other_item = {**ok, "dynamodb:LeadingKeys": ["CLIENT#abc"]}
    assert not allowed(statements, "dynamodb:UpdateItem", TABLE, other_item)
    other_attribute = {**ok, "dynamodb:Attributes": ["PK", "SK", "scopes"]}
    assert not allowed(statements, "dynamodb:UpdateItem", TABLE, other_attribute)


def test_a_condition_key_the_gate_cannot_evaluate_never_widens_a_grant() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": TABLE,
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        }
    ]
    assert not allowed(statements, "dynamodb:GetItem", TABLE, {})


def _call(gate: IamGate, target: str, body: dict[str, Any], key: str = "ASIAFN") -> tuple[str, bytes]:
    seen: dict[str, str] = {}
    raw = json.dumps(body).encode()
    environ = {
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={key}/20261202/us-east-1/dynamodb/aws4_request, ...",
        "HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{target}",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
    }

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]  # moto still gets the whole body

    gate.app = app
    body_out = b"".join(gate(environ, start_response))
    return seen["status"], body_out


def test_the_gate_refuses_what_the_role_lacks_and_passes_the_body_on() -> None:
    gate = IamGate(lambda e, s: [], "123456789012", "us-east-1")
    gate.register(
        "ASIAFN",
        Principal(
            "arn:aws:iam::123456789012:role/r",
            "session",
            [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE}],
        ),
    )
    status, body = _call(gate, "GetItem", {"TableName": "Data", "Key": {"PK": {"S": "A"}}})
    assert status == "200 OK"
    assert json.loads(body)["TableName"] == "Data"
    status, body = _call(gate, "PutItem", {"TableName": "Data", "Item": {"PK": {"S": "A"}}})
    assert status.startswith("400")
    assert json.loads(body)["__type"] == "AccessDeniedException"
    # A transaction needs each item's own action.
    status, _ = _call(
        gate, "TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "Data", "Item": {"PK": {"S": "A"}}}}]}
    )
    assert status.startswith("400")
    # Other credentials (the runtime, tests) are not checked.
    status, _ = _call(gate, "PutItem", {"TableName": "Data", "Item": {"PK": {"S": "A"}}}, key="local")
    assert status == "200 OK"


def test_an_index_query_is_authorized_on_the_index_arn() -> None:
    gate = IamGate(lambda e, s: [], "123456789012", "us-east-1")
    gate.register(
        "ASIAFN",
        Principal(
            "arn:aws:iam::123456789012:role/r",
            "s",
            [{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": TABLE}],
        ),
    )
    status, _ = _call(gate, "Query", {"TableName": "Data", "IndexName": "GSI1"})
    assert status.startswith("400")


def test_leading_keys_come_from_the_tables_partition_key_whatever_the_attribute_order() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Action": "dynamodb:PutItem",
            "Resource": TABLE,
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["REQLOG#*"]}},
        }
    ]
    gate = IamGate(lambda e, s: [], "123456789012", "us-east-1", partition_key=lambda table: "PK")
    gate.register("ASIAFN", Principal("arn:aws:iam::123456789012:role/r", "s", statements))
    item = {"SK": {"S": "2026"}, "status": {"N": "200"}, "PK": {"S": "REQLOG#gw_1"}}
    status, _ = _call(gate, "PutItem", {"TableName": "Data", "Item": item})
    assert status == "200 OK"
    status, _ = _call(gate, "PutItem", {"TableName": "Data", "Item": {**item, "PK": {"S": "CLIENT#x"}}})
    assert status.startswith("400")


def test_a_select_condition_lets_only_that_kind_of_query_through() -> None:
    # Given a role that may only count on an index (the admin authorizer's certificate check)
    gate = IamGate(lambda e, s: [], "123456789012", "us-east-1")
    gate.register(
        "ASIAFN",
        Principal(
            "arn:aws:iam::123456789012:role/r",
            "s",
            [
                {
                    "Effect": "Allow",
                    "Action": "dynamodb:Query",
                    "Resource": f"{TABLE}/index/GSI1",
                    "Condition": {"StringEquals": {"dynamodb:Select": "COUNT"}},
                }
            ],
        ),
    )
    query = {"TableName": "Data", "IndexName": "GSI1", "KeyConditionExpression": "GSI1PK = :pk"}

    # Then a count passes, and reading the items (asked for or by default) is refused
    assert _call(gate, "Query", {**query, "Select": "COUNT"})[0] == "200 OK"
    for select in ({"Select": "ALL_PROJECTED_ATTRIBUTES"}, {"Select": "SPECIFIC_ATTRIBUTES"}, {}):
        assert _call(gate, "Query", {**query, **select})[0].startswith("400"), select
