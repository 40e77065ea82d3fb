"""IAM for the functions' AWS calls, enforced in front of moto.

moto's own access-control mode checks every action against resource `*` for most services, so
every properly scoped grant (a table ARN, a key ARN) would be refused, and it needs every caller
(the runtime, the tests) to sign with IAM users it knows. This gate does what AWS does for the
calls that matter here: each function signs with credentials of its own (its role), the gate finds
the action and the resource ARNs the request touches, and evaluates the role's identity policies
from the deployed template (Allow needed; explicit Deny wins; `dynamodb:LeadingKeys`,
`dynamodb:Attributes` and `dynamodb:Select` conditions evaluated). A refused call gets AccessDeniedException, as in AWS.

Calls signed with any other credentials (the runtime itself, tests, the AWS CLI) pass unchecked,
like an administrator's. Not evaluated here (README, local versus AWS): KMS key use by DynamoDB,
SQS and SNS on the caller's behalf, resource policies, permission boundaries, condition keys other
than the three above (a statement with one is treated as not matching, so a grant is never widened).
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("local.iam")

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d+/([^/]+)/([^/]+)/aws4_request")
_UPDATE_WORDS = {"SET", "REMOVE", "ADD", "DELETE", "if_not_exists", "list_append", "AND", "OR", "NOT"}


_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


@dataclass(frozen=True)
class Call:
    action: str  # service:Operation, as IAM names it
    resources: tuple[str, ...]
    context: dict[str, list[str]] = field(default_factory=dict)  # condition keys -> values


@dataclass
class Principal:
    role_arn: str
    session: str
    statements: list[dict[str, Any]]


class IamGate:
    """WSGI middleware in front of moto's app."""

    def __init__(
        self,
        app: Callable[..., Any],
        account: str,
        region: str,
        partition_key: Callable[[str], str | None] = lambda table: None,
    ) -> None:
        self.app = app
        self.partition_key = partition_key  # a table's partition key attribute name
        self.account = account
        self.region = region
        self.principals: dict[str, Principal] = {}
        self.denied: list[str] = []
        self._lock = threading.Lock()
        self._unsupported_seen: set[str] = set()

    def register(self, access_key_id: str, principal: Principal) -> None:
        with self._lock:
            self.principals[access_key_id] = principal

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        principal = self.principals.get(match.group(1)) if match else None
        if principal is None or match is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        service = match.group(3)
        try:
            calls = self._calls(service, environ, body)
        except (ValueError, KeyError, json.JSONDecodeError):
            calls = None
        if calls is None:
            if service not in self._unsupported_seen:
                self._unsupported_seen.add(service)
                log.warning("IAM gate: %s requests are not checked locally", service)
            return self.app(environ, start_response)
        for call in calls:
            for resource in call.resources:
                if not allowed(principal.statements, call.action, resource, call.context):
                    message = (
                        f"User: {principal.session} is not authorized to perform: {call.action} on resource: "
                        f"{resource} because no identity-based policy allows the {call.action} action"
                    )
                    self.denied.append(message)
                    log.warning("IAM gate refused: %s", message)
                    return _access_denied(service, message, start_response)
        return self.app(environ, start_response)

    # -- what a request does ---------------------------------------------------------------------
    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def _calls(self, service: str, environ: dict[str, Any], body: bytes) -> list[Call] | None:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rsplit(".", 1)[-1] if target else ""
        if service == "dynamodb" and operation:
            return self._dynamodb(operation, json.loads(body or b"{}"))
        if service == "kms" and operation:
            request = json.loads(body or b"{}")
            key = str(request.get("KeyId", "*"))
            if not key.startswith("arn:"):
                key = self._arn("kms", key if key.startswith("alias/") else f"key/{key}")
            return [Call(f"kms:{operation}", (key,))]
        if service == "sqs" and operation:
            request = json.loads(body or b"{}")
            url = request.get("QueueUrl")
            resource = self._arn("sqs", urlsplit(url).path.rsplit("/", 1)[-1]) if url else "*"
            # SQS authorizes a batch call as its single form (there is no sqs:SendMessageBatch).
            return [Call(f"sqs:{_SQS_BATCH_ACTIONS.get(operation, operation)}", (resource,))]
        if service == "states" and operation:
            request = json.loads(body or b"{}")
            arn = request.get("stateMachineArn") or request.get("executionArn") or "*"
            return [Call(f"states:{operation}", (str(arn),))]
        if service == "apigateway":
            path = unquote(environ.get("PATH_INFO", ""))
            return [Call(f"apigateway:{environ['REQUEST_METHOD']}", (f"arn:aws:apigateway:{self.region}::{path}",))]
        if service == "scheduler":
            return self._scheduler(environ)
        if service == "lambda":
            found = re.match(r"^/2015-03-31/functions/([^/]+)/invocations$", environ.get("PATH_INFO", ""))
            if found:
                name = unquote(found.group(1))
                arn = name if name.startswith("arn:") else self._arn("lambda", f"function:{name}")
                return [Call("lambda:InvokeFunction", (arn,))]
            return None
        if service == "sns":
            form = parse_qs(body.decode())
            action = form.get("Action", [""])[0]
            topic = form.get("TopicArn", form.get("TargetArn", ["*"]))[0]
            return [Call(f"sns:{action}", (topic,))] if action else None
        return None

    def _dynamodb(self, operation: str, request: dict[str, Any]) -> list[Call]:
        def table(name: str, index: str | None = None) -> str:
            return self._arn("dynamodb", f"table/{name}" + (f"/index/{index}" if index else ""))

        if operation == "BatchGetItem":
            return [Call("dynamodb:BatchGetItem", tuple(table(t) for t in request.get("RequestItems", {})))]
        if operation == "BatchWriteItem":
            return [Call("dynamodb:BatchWriteItem", tuple(table(t) for t in request.get("RequestItems", {})))]
        if operation in ("TransactWriteItems", "TransactGetItems"):
            # IAM authorizes a transaction by the action of each of its items.
            calls = []
            for item in request.get("TransactItems", []):
                for kind, inner in item.items():
                    action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(
                        kind, "ConditionCheckItem" if kind == "ConditionCheck" else "GetItem"
                    )
                    calls.append(self._dynamodb_item(action, inner, table(inner["TableName"])))
            return calls
        name = request.get("TableName")
        if not name:
            return [Call(f"dynamodb:{operation}", ("*",))]
        return [self._dynamodb_item(operation, request, table(name, request.get("IndexName")))]

    def _dynamodb_item(self, operation: str, request: dict[str, Any], resource: str) -> Call:
        context: dict[str, list[str]] = {}
        keys = request.get("Key") or request.get("Item")
        if isinstance(keys, dict):
            # The partition key's value, by the table's key schema (an item's attributes come in
            # any order).
            name = self.partition_key(resource.split("/")[1]) if "/" in resource else None
            partition: Any = keys.get(name) if name else next(iter(keys.values()), {})
            value = next(iter(partition.values()), "") if isinstance(partition, dict) else ""
            context["dynamodb:LeadingKeys"] = [str(value)]
        if operation == "UpdateItem":
            names = request.get("ExpressionAttributeNames") or {}
            attributes = set((request.get("Key") or {}).keys())
            for expression in (request.get("UpdateExpression", ""), request.get("ConditionExpression", "")):
                for token in re.findall(r"[#:]?[A-Za-z_][A-Za-z0-9_]*", expression):
                    if token.startswith("#"):
                        attributes.add(str(names.get(token, token)))
                    elif not token.startswith(":") and token not in _UPDATE_WORDS and not _is_function(token):
                        attributes.add(token)
            context["dynamodb:Attributes"] = sorted(attributes)
        if operation in ("Query", "Scan"):
            # What the read returns, as DynamoDB defaults it when the request does not say.
            default = "SPECIFIC_ATTRIBUTES" if request.get("ProjectionExpression") else None
            default = default or ("ALL_PROJECTED_ATTRIBUTES" if request.get("IndexName") else "ALL_ATTRIBUTES")
            context["dynamodb:Select"] = [str(request.get("Select") or default)]
        return Call(f"dynamodb:{operation}", (resource,), context)

    def _scheduler(self, environ: dict[str, Any]) -> list[Call] | None:
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        group = parse_qs(environ.get("QUERY_STRING", "")).get("groupName", ["default"])[0]
        if path == "/schedules" and method == "GET":
            return [Call("scheduler:ListSchedules", ("*",))]
        found = re.match(r"^/schedules/([^/]+)$", path)
        if found:
            action = {"GET": "GetSchedule", "POST": "CreateSchedule", "PUT": "UpdateSchedule"}.get(
                method, "DeleteSchedule"
            )
            name = unquote(found.group(1))
            return [Call(f"scheduler:{action}", (self._arn("scheduler", f"schedule/{group}/{name}"),))]
        return None


def _is_function(token: str) -> bool:
    return token in {"attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains", "size"}


# -- policy evaluation ------------------------------------------------------------------------------
def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Iterable[Any], value: str, *, case_sensitive: bool = True) -> bool:
    for pattern in patterns:
        if case_sensitive and fnmatch.fnmatchcase(value, str(pattern)):
            return True
        if not case_sensitive and fnmatch.fnmatchcase(value.lower(), str(pattern).lower()):
            return True
    return False


_SUPPORTED_CONDITION_KEYS = {"dynamodb:leadingkeys", "dynamodb:attributes", "dynamodb:select"}


def _conditions_hold(conditions: dict[str, Any], context: dict[str, list[str]]) -> bool:
    for operator, tests in conditions.items():
        quantifier, _, base = operator.partition(":") if ":" in operator else ("", "", operator)
        for key, expected in tests.items():
            if key.lower() not in _SUPPORTED_CONDITION_KEYS:
                return False  # unknown keys never widen a grant locally
            values = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if values is None:
                if quantifier == "ForAllValues":
                    continue  # vacuously true when the request has no such values
                return False
            matcher = fnmatch.fnmatchcase if base.startswith("StringLike") else str.__eq__
            patterns = [str(p) for p in _listify(expected)]

            def one(value: str, patterns: list[str] = patterns, matcher: Any = matcher) -> bool:
                return any(matcher(value, p) for p in patterns)

            holds = all(one(v) for v in values) if quantifier != "ForAnyValue" else any(one(v) for v in values)
            if not holds:
                return False
    return True


def allowed(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, list[str]]) -> bool:
    """IAM's identity-policy evaluation for one action on one resource: an explicit Deny wins,
    else an Allow is needed."""
    permitted = False
    for statement in statements:
        if "Action" in statement:
            if not _matches(_listify(statement["Action"]), action, case_sensitive=False):
                continue
        elif _matches(_listify(statement.get("NotAction", [])), action, case_sensitive=False):
            continue
        if "Resource" in statement:
            if not _matches(_listify(statement["Resource"]), resource):
                continue
        elif _matches(_listify(statement.get("NotResource", [])), resource):
            continue
        if not _conditions_hold(statement.get("Condition") or {}, context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        permitted = permitted or statement.get("Effect") == "Allow"
    return permitted


def _access_denied(service: str, message: str, start_response: Callable[..., Any]) -> list[bytes]:
    if service == "sns":  # query protocol: an XML error document
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>"
            f"<Message>{message}</Message></Error></ErrorResponse>"
        ).encode()
        start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]
    body = json.dumps({"__type": "AccessDeniedException", "message": message, "Message": message}).encode()
    status = "400 Bad Request" if service in ("dynamodb", "kms", "sqs", "states") else "403 Forbidden"
    start_response(
        status,
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-ErrorType", "AccessDeniedException"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]
