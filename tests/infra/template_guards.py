"""Checks on a synthesized template for what fails only in AWS: neither moto nor cfn-lint catches
these, and each would break a real deployment (or silently break the product after it).

Each check takes the template as a dict and returns the violations it finds as sentences, so
the product's template must yield none and a deliberately broken one proves the check bites.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

LAMBDA_POLICY_LIMIT_BYTES = 20_480

# Placeholders of the longest realistic length for what CloudFormation fills in at deploy time,
# so a size computed here is never below the deployed one.
_REGION = "ap-southeast-2"
_ACCOUNT = "123456789012"
_PARTITION = "aws-us-gov"
_NAME = "x" * 64  # generated physical names are at most 64 characters


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == kind}


def render(value: Any, template: dict[str, Any]) -> str:
    """An intrinsic-function value as the longest string it can deploy as."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        if "Ref" in value:
            ref = value["Ref"]
            pseudo = {"AWS::Region": _REGION, "AWS::AccountId": _ACCOUNT, "AWS::Partition": _PARTITION}
            if ref in pseudo:
                return pseudo[ref]
            kind = template.get("Resources", {}).get(ref, {}).get("Type")
            if kind == "AWS::ApiGateway::RestApi":
                return "a" * 10
            if kind == "AWS::ApiGateway::Stage":
                return str(template["Resources"][ref]["Properties"].get("StageName", _NAME))
            return _NAME
        if "Fn::GetAtt" in value:
            logical = value["Fn::GetAtt"][0]
            kind = template.get("Resources", {}).get(logical, {}).get("Type", "")
            service = kind.split("::")[1].lower() if "::" in kind else "service"
            return f"arn:{_PARTITION}:{service}:{_REGION}:{_ACCOUNT}:function:{_NAME}"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(render(p, template) for p in parts)
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return re.sub(r"\$\{([^}]+)\}", lambda m: render({"Ref": m.group(1)}, template), text)
        if "Fn::Select" in value:
            return _NAME
    return json.dumps(value)


def _function_of(permission: dict[str, Any]) -> str | None:
    target = permission["Properties"].get("FunctionName")
    if isinstance(target, dict):
        if "Fn::GetAtt" in target:
            return str(target["Fn::GetAtt"][0])
        if "Ref" in target:
            return str(target["Ref"])
    return None


def lambda_resource_policy_sizes(template: dict[str, Any]) -> dict[str, int]:
    """Bytes of each function's resource policy as Lambda stores it: one statement per
    AWS::Lambda::Permission naming the function."""
    statements: dict[str, list[dict[str, Any]]] = {}
    stack_name = "x" * 32
    for logical, permission in resources(template, "AWS::Lambda::Permission").items():
        function = _function_of(permission)
        if function is None:
            continue
        props = permission["Properties"]
        statement: dict[str, Any] = {
            "Sid": f"{stack_name}-{logical}"[:100],
            "Effect": "Allow",
            "Principal": {"Service": render(props.get("Principal", ""), template)},
            "Action": render(props.get("Action", "lambda:InvokeFunction"), template),
            "Resource": f"arn:{_PARTITION}:lambda:{_REGION}:{_ACCOUNT}:function:{_NAME}",
        }
        if "SourceArn" in props:
            statement["Condition"] = {"ArnLike": {"AWS:SourceArn": render(props["SourceArn"], template)}}
        if "SourceAccount" in props:
            statement.setdefault("Condition", {})["StringEquals"] = {"AWS:SourceAccount": _ACCOUNT}
        statements.setdefault(function, []).append(statement)
    return {
        function: len(json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": items}))
        for function, items in statements.items()
    }


def oversized_resource_policies(template: dict[str, Any]) -> list[str]:
    return [
        f"{function}: resource policy of about {size} bytes exceeds Lambda's {LAMBDA_POLICY_LIMIT_BYTES}"
        for function, size in sorted(lambda_resource_policy_sizes(template).items())
        if size > LAMBDA_POLICY_LIMIT_BYTES
    ]


# -- IAM: what each role may do ------------------------------------------------------------------
def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _logical_refs(value: Any) -> set[str]:
    """Logical ids a (possibly nested) intrinsic value refers to."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(str(value["Ref"]))
        if "Fn::GetAtt" in value:
            found.add(str(value["Fn::GetAtt"][0]))
        for inner in value.values():
            found |= _logical_refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _logical_refs(inner)
    return found


def role_statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Allow statements of every role, from its inline policies and the AWS::IAM::Policy
    resources attached to it."""
    roles: dict[str, list[dict[str, Any]]] = {logical: [] for logical in resources(template, "AWS::IAM::Role")}
    for logical, role in resources(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            roles[logical].extend(_listify(inline["PolicyDocument"]["Statement"]))
    for attached in resources(template, "AWS::IAM::Policy").values():
        for role_ref in attached["Properties"].get("Roles", []):
            for name in _logical_refs(role_ref):
                roles.setdefault(name, []).extend(_listify(attached["Properties"]["PolicyDocument"]["Statement"]))
    return {role: [s for s in statements if s.get("Effect") == "Allow"] for role, statements in roles.items()}


def _grants(statements: list[dict[str, Any]], action: str, resource_logical: str) -> bool:
    for statement in statements:
        if not any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in _listify(statement["Action"])):
            continue
        targets = _listify(statement.get("Resource", []))
        if "*" in targets or resource_logical in _logical_refs(targets):
            return True
    return False


def _key_of(value: Any) -> str | None:
    refs = _logical_refs(value)
    return next(iter(refs), None) if refs else None


def encrypted_resources(template: dict[str, Any]) -> dict[str, str]:
    """Tables, queues and topics encrypted with a key of the stack: {resource: key}."""
    found: dict[str, str] = {}
    for logical, table in resources(template, "AWS::DynamoDB::Table").items():
        key = _key_of((table["Properties"].get("SSESpecification") or {}).get("KMSMasterKeyId"))
        if key:
            found[logical] = key
    for kind in ("AWS::SQS::Queue", "AWS::SNS::Topic"):
        for logical, resource in resources(template, kind).items():
            key = _key_of(resource["Properties"].get("KmsMasterKeyId"))
            if key:
                found[logical] = key
    return found


_DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "ConditionCheckItem"}
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
# What each data action needs of the resource's key (as CDK's grant helpers add).
_KEY_NEEDS = {
    **{f"dynamodb:{a}": ("kms:Decrypt", "kms:DescribeKey") for a in _DYNAMODB_READS},
    **{
        f"dynamodb:{a}": ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")
        for a in _DYNAMODB_WRITES
    },
    "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:ReceiveMessage": ("kms:Decrypt",),
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
}


def _statement_actions(statement: dict[str, Any]) -> Iterator[str]:
    for action in _listify(statement["Action"]):
        for known in _KEY_NEEDS:
            if fnmatch.fnmatchcase(known.lower(), str(action).lower()):
                yield known


def missing_key_grants(template: dict[str, Any]) -> list[str]:
    """Every role that reads or writes data of an encrypted table, queue or topic may use its key."""
    encrypted = encrypted_resources(template)
    problems: list[str] = []
    for role, statements in sorted(role_statements(template).items()):
        for statement in statements:
            touched = _logical_refs(statement.get("Resource", [])) & set(encrypted)
            for action in _statement_actions(statement):
                for resource in sorted(touched):
                    key = encrypted[resource]
                    for needed in _KEY_NEEDS[action]:
                        if not _grants(statements, needed, key):
                            problems.append(f"{role}: {action} on {resource} without {needed} on its key {key}")
    return sorted(set(problems))


def unreachable_alarm_topics(template: dict[str, Any]) -> list[str]:
    """An alarm's encrypted topic must let CloudWatch use the key and publish to the topic."""
    topics = resources(template, "AWS::SNS::Topic")
    keys = resources(template, "AWS::KMS::Key")
    topic_policies = resources(template, "AWS::SNS::TopicPolicy")
    problems: list[str] = []
    for alarm_logical, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        actions = [
            *props.get("AlarmActions", []),
            *props.get("OKActions", []),
            *props.get("InsufficientDataActions", []),
        ]
        for topic in sorted(_logical_refs(actions) & set(topics)):
            key_value = topics[topic]["Properties"].get("KmsMasterKeyId")
            if key_value is not None:
                key = _key_of(key_value)
                if key is None or key not in keys:
                    problems.append(f"{topic}: encrypted with {key_value!r}, a key CloudWatch cannot be let into")
                else:
                    statements = _listify(keys[key]["Properties"]["KeyPolicy"]["Statement"])
                    for needed in ("kms:Decrypt", "kms:GenerateDataKey"):
                        if not _service_allowed(statements, "cloudwatch.amazonaws.com", needed):
                            problems.append(f"{topic}: its key {key} does not let CloudWatch {needed}")
            published = any(
                topic in _logical_refs(p["Properties"].get("Topics", []))
                and _service_allowed(
                    _listify(p["Properties"]["PolicyDocument"]["Statement"]), "cloudwatch.amazonaws.com", "sns:Publish"
                )
                for p in topic_policies.values()
            )
            if not published:
                problems.append(f"{topic}: no topic policy lets CloudWatch ({alarm_logical}) publish")
    return sorted(set(problems))


def _service_allowed(statements: Iterable[dict[str, Any]], service: str, action: str) -> bool:
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        services = _listify(principal.get("Service", [])) if isinstance(principal, dict) else []
        if service not in [render(s, {}) for s in services]:
            continue
        if any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in _listify(statement["Action"])):
            return True
    return False


# -- binary bodies -------------------------------------------------------------------------------
_RETURNS_BASE64 = re.compile(r"[\"']isBase64Encoded[\"']\s*:\s*(?!False\b)")


def functions_returning_base64(code_dirs: Iterable[Path]) -> list[Path]:
    """Source files that may answer API Gateway with a base64 body (any value but False)."""
    return sorted(path for root in code_dirs for path in root.rglob("*.py") if _RETURNS_BASE64.search(path.read_text()))


def binary_media_type_problems(template: dict[str, Any], code_dirs: Iterable[Path]) -> list[str]:
    """A function that answers with upstream bodies of any type needs `*/*`: API Gateway decodes
    a base64 answer only for listed types and otherwise sends the base64 text to the caller."""
    returning = functions_returning_base64(code_dirs)
    if not returning:
        return []
    problems = []
    for logical, api in resources(template, "AWS::ApiGateway::RestApi").items():
        types = api["Properties"].get("BinaryMediaTypes") or []
        if "*/*" not in types:
            problems.append(
                f"{logical}: binaryMediaTypes {types} while {', '.join(p.name for p in returning)} answer base64 bodies"
            )
    return problems


# -- API Gateway authorizers ---------------------------------------------------------------------
def authorizer_cache_problems(template: dict[str, Any]) -> list[str]:
    """A REQUEST authorizer that caches needs identity sources (its cache key): API Gateway refuses
    one without them at deploy time, while moto and the local runtime accept it. (With identity
    sources, API Gateway also answers 401 without calling the authorizer unless all of them are
    present, which is why an authorizer taking one of two credentials has none and no cache.)"""
    problems = []
    for name, authorizer in sorted(resources(template, "AWS::ApiGateway::Authorizer").items()):
        properties = authorizer.get("Properties", {})
        if properties.get("Type") != "REQUEST":
            continue
        ttl = int(properties.get("AuthorizerResultTtlInSeconds", 300))
        if ttl > 0 and not str(properties.get("IdentitySource", "")).strip():
            problems.append(f"{name}: caches for {ttl} s but has no identity source")
    return problems


def event_source_timeout_problems(template: dict[str, Any]) -> list[str]:
    """An SQS event source's queue must keep a message invisible at least as long as the function
    may run on it: Lambda refuses to create the mapping otherwise (moto and the local runtime do
    not). Checked for every SQS mapping, whatever its function."""
    functions = resources(template, "AWS::Lambda::Function")
    queues = resources(template, "AWS::SQS::Queue")
    problems = []
    for name, mapping in sorted(resources(template, "AWS::Lambda::EventSourceMapping").items()):
        props = mapping["Properties"]
        queue = next((q for q in queues if f'"{q}"' in json.dumps(props["EventSourceArn"])), None)
        function = next((f for f in functions if f'"{f}"' in json.dumps(props["FunctionName"])), None)
        if queue is None or function is None:
            continue
        visibility = int(queues[queue]["Properties"].get("VisibilityTimeout", 30))
        timeout = int(functions[function]["Properties"].get("Timeout", 3))
        if visibility < timeout:
            problems.append(f"{name}: {queue} hides a message {visibility} s, {function} may run {timeout} s")
    return problems
