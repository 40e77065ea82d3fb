"""Each function's role grants the AWS actions its code calls, and no more; each API method goes to
the function that serves it.

The calls are found in the code itself: the handler module's imports, followed through functions/
and layers/gateway_core, are scanned for calls on boto3 clients (held in variables named after
their service, made with `gateway_core.aws.client("<service>")`). That is compared with the map
below, which says what each function does, and the map with the synthesized role. A new call
without its grant, or a grant without its call, fails here rather than in AWS (moto enforces no
IAM)."""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from functions.routes.api.docs import WEBHOOKS_FRAGMENT
from functions.routes.api.operations import OPERATIONS
from infra.config import FUNCTIONS_SRC, LAMBDA_FUNCTIONS, LAYER_SRC, handler_path
from infra.constructs.authorizers import READS
from tests.infra.template_guards import resources, role_statements

ROOT = FUNCTIONS_SRC.parent

# What each function calls, as IAM actions (the static map the code and the roles are held to).
CALLS: dict[str, set[str]] = {
    "api_key_authorizer": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    "jwt_authorizer": {"dynamodb:GetItem", "kms:GetPublicKey"},
    "mtls_authorizer": {"dynamodb:GetItem"},
    "gateway_authorizer": {"dynamodb:GetItem", "dynamodb:UpdateItem", "kms:GetPublicKey"},
    "admin_authorizer": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query", "kms:GetPublicKey"},
    "proxy": {
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "kms:Decrypt",
    },
    "management": {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "apigateway:DELETE",
        "kms:Encrypt",
    },
    "oauth": {"dynamodb:GetItem", "kms:Sign", "kms:GetPublicKey"},
    "health": {
        "dynamodb:DescribeTable",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "sqs:GetQueueAttributes",
        "states:DescribeStateMachine",
        "scheduler:ListSchedules",
    },
    "integrations": set(),
    "webhooks": {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
        "kms:Encrypt",
        "kms:Decrypt",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
    },
    # Its stream reads are the event source mapping's (CDK grants them with the mapping).
    "webhook_fanout": {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
        "sqs:SendMessage",
    },
    # Its queue consumption is the event source mapping's (likewise).
    "webhook_delivery": {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
        "kms:Decrypt",
        "sqs:SendMessage",
    },
    "marketdata": set(),
}

# The variable names that hold each service's client in our code.
CLIENT_NAMES = {
    "dynamodb": "dynamodb",
    "kms": "kms",
    "sqs": "sqs",
    "sfn": "stepfunctions",
    "stepfunctions": "stepfunctions",
    "scheduler": "scheduler",
    "apigateway": "apigateway",
}
IAM_PREFIX = {"stepfunctions": "states"}
# Operations whose IAM actions are not their own name.
SPECIAL_ACTIONS = {
    # A transaction is authorized item by item, by the kind of each item.
    ("dynamodb", "TransactWriteItems"): {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    },
    ("dynamodb", "TransactGetItems"): {"dynamodb:GetItem"},
    # FlushStageAuthorizersCache is a DELETE on the stage's authorizer cache.
    ("apigateway", "FlushStageAuthorizersCache"): {"apigateway:DELETE"},
    # A batch send is authorized as SendMessage (SQS has no SendMessageBatch action).
    ("sqs", "SendMessageBatch"): {"sqs:SendMessage"},
}
# Methods of ours named like a boto3 operation (they call boto3 inside, where the scan sees it).
DOMAIN_METHODS = {
    ("signer", "sign"),
    ("reader", "query"),
    ("vault", "decrypt"),
    ("vault", "encrypt"),
    ("private", "sign"),
    ("signing", "sign"),
}


def _module_file(name: str) -> Path | None:
    if name == "functions" or name.startswith("functions."):
        base = ROOT / name.replace(".", "/")
    elif name == "gateway_core" or name.startswith("gateway_core."):
        base = LAYER_SRC / name.replace(".", "/")
    else:
        return None
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, leaving out `if TYPE_CHECKING:` blocks (never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


@cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in _runtime_nodes(_parsed(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def code_path(module: str) -> set[Path]:
    """The files a handler module runs: its imports within functions/ and the core layer, transitively
    (imports inside functions included: a lazy import is still on the function's path)."""
    seen: set[Path] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # a package's __init__ runs too
            path = _module_file(".".join(parts[:depth]))
            if path is not None and path not in seen:
                seen.add(path)
                pending.extend(_imports(path))
    return seen


def _receiver(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _receiver(node.func)
    return ""


@cache
def _operations(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def _services(paths: set[Path]) -> set[str]:
    services = set()
    for path in paths:
        for node in ast.walk(_parsed(path)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and ast.unparse(node.func) == "aws.client"
            ):
                (argument,) = node.args
                assert isinstance(argument, ast.Constant), f"{path}:{node.lineno}: aws.client() takes a literal"
                services.add(str(argument.value))
    return services


def calls_of(module: str) -> set[str]:
    """IAM actions for the boto3 calls on the code path of `module`."""
    paths = code_path(module)
    services = _services(paths)
    actions: set[str] = set()
    for path in paths:
        for node in ast.walk(_parsed(path)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method, receiver = node.func.attr, _receiver(node.func.value)
            if method == "get_paginator":
                method = str(node.args[0].value) if node.args and isinstance(node.args[0], ast.Constant) else ""
            service = CLIENT_NAMES.get(receiver)
            if service is None:
                named_like_an_operation = [s for s in services if method in _operations(s)]
                assert not named_like_an_operation or (receiver, method) in DOMAIN_METHODS, (
                    f"{path}:{node.lineno}: {receiver}.{method}() looks like a {named_like_an_operation} call on a "
                    "client this scan cannot name; hold clients in variables named after their service"
                )
                continue
            operation = _operations(service).get(method)
            if operation is None or service not in services:
                continue  # not an operation, or a client this function never makes
            prefix = IAM_PREFIX.get(service, service)
            actions |= SPECIAL_ACTIONS.get((service, operation), {f"{prefix}:{operation}"})
    return actions


NAMES = [name for name, _, _ in LAMBDA_FUNCTIONS]
MODULES = {name: f"functions.{folder}.{module}" for name, folder, module in LAMBDA_FUNCTIONS}


def test_the_map_covers_every_function() -> None:
    assert set(CALLS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_functions_code_makes_the_calls_the_map_says(name: str) -> None:
    assert calls_of(MODULES[name]) == CALLS[name]


def _function_logicals(template: dict[str, Any]) -> dict[str, str]:
    """Function name (infra/config.py) -> logical id of its Lambda function."""
    by_handler = {handler_path(folder, module): name for name, folder, module in LAMBDA_FUNCTIONS}
    return {
        by_handler[f["Properties"]["Handler"]]: logical
        for logical, f in resources(template, "AWS::Lambda::Function").items()
    }


def _refers(value: Any, logicals: set[str]) -> bool:
    return any(logical in json.dumps(value) for logical in logicals)


# What Lambda's pollers need for an event source mapping (CDK grants them with the mapping, on
# its source and its on-failure destination): the poller's calls, not the code's.
EVENT_SOURCE_ACTIONS = frozenset(
    {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
    }
)


def _event_source_refs(template: dict[str, Any], function_logical: str) -> set[str]:
    """Logical ids of the sources and on-failure destinations of the function's mappings."""
    refs: set[str] = set()
    for mapping in resources(template, "AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        if function_logical not in json.dumps(props["FunctionName"]):
            continue
        for value in (props["EventSourceArn"], props.get("DestinationConfig", {})):
            refs.update(logical for logical in template["Resources"] if f'"{logical}"' in json.dumps(value))
    return refs


def _only_event_source(
    statement: dict[str, Any], listed: list[str], sources: set[str], template: dict[str, Any]
) -> bool:
    if not sources or not set(listed) <= EVENT_SOURCE_ACTIONS:
        return False
    resources_of = statement.get("Resource")
    targets = resources_of if isinstance(resources_of, list) else [resources_of]
    # "*" is ListStreams (no resource-level permission), granted with a stream mapping.
    keys_of = {k for k in template["Resources"] if "Key" in k and any(f'"{k}"' in json.dumps(t) for t in targets)}
    return all(t == "*" or any(f'"{src}"' in json.dumps(t) for src in sources) for t in targets) or (
        bool(keys_of) and all(a.startswith("kms:") for a in listed) and _keys_of_sources(template, sources) >= keys_of
    )


def _keys_of_sources(template: dict[str, Any], sources: set[str]) -> set[str]:
    found = set()
    for logical in sources:
        text = json.dumps(template["Resources"].get(logical, {}).get("Properties", {}))
        found |= {k for k in template["Resources"] if "Key" in k and f'"{k}"' in text}
    return found


def granted(template: dict[str, Any], name: str) -> set[str]:
    """The actions a function's role allows on the stack's resources, leaving out what every
    function gets (its log group, X-Ray), the data key's use for the encrypted tables (guarded
    by tests/infra/test_deploy_guards.py) and what its event source mappings' pollers need."""
    logical = _function_logicals(template)[name]
    function = resources(template, "AWS::Lambda::Function")[logical]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    data_keys = {k for k in resources(template, "AWS::KMS::Key") if "DataKey" in k}
    log_groups = set(resources(template, "AWS::Logs::LogGroup"))
    sources = _event_source_refs(template, logical)
    actions: set[str] = set()
    for statement in role_statements(template)[role]:
        listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if all(a.startswith("xray:") for a in listed):
            continue
        if _refers(statement.get("Resource"), data_keys | log_groups):
            continue
        if _only_event_source(statement, listed, sources, template):
            continue
        actions.update(listed)
    return actions


@pytest.mark.parametrize("name", NAMES)
def test_each_role_grants_what_its_code_calls_and_no_more(template_json: dict[str, Any], name: str) -> None:
    assert granted(template_json, name) == CALLS[name]


def test_only_the_oauth_function_may_sign_and_the_data_plane_cannot_touch_admin_data(
    template_json: dict[str, Any],
) -> None:
    signers = [n for n in NAMES if "kms:Sign" in granted(template_json, n)]
    assert signers == ["oauth"]
    proxy = granted(template_json, "proxy")
    assert not proxy & {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "apigateway:DELETE", "kms:Sign"}


def test_upstream_secrets_are_encrypted_by_the_management_function_and_decrypted_by_the_data_plane_alone(
    template_json: dict[str, Any],
) -> None:
    (secrets_key,) = [k for k in resources(template_json, "AWS::KMS::Key") if "UpstreamSecretsKey" in k]
    users: dict[str, set[str]] = {}
    for name in NAMES:
        for statement in _all_statements(template_json, name):
            if secrets_key in json.dumps(statement.get("Resource")):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                users.setdefault(name, set()).update(actions)
    assert users == {"management": {"kms:Encrypt"}, "proxy": {"kms:Decrypt"}}
    # No role reaches the secrets key through a wildcard either.
    for name in NAMES:
        for statement in _all_statements(template_json, name):
            if any(str(a).startswith("kms:") for a in _listed(statement["Action"])):
                assert statement.get("Resource") != "*", (name, statement)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _all_statements(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    function = resources(template, "AWS::Lambda::Function")[_function_logicals(template)[name]]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return list(role_statements(template)[role])


def _statements(template: dict[str, Any], name: str, action: str) -> list[dict[str, Any]]:
    function = resources(template, "AWS::Lambda::Function")[_function_logicals(template)[name]]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        s
        for s in role_statements(template)[role]
        if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]


def _leading_keys(statement: dict[str, Any]) -> set[str]:
    return set(statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys", []))


@pytest.mark.parametrize(("name", "kinds"), sorted(READS.items()))
def test_authorizers_read_only_the_item_kinds_they_check(
    template_json: dict[str, Any], name: str, kinds: tuple[str, ...]
) -> None:
    (statement,) = _statements(template_json, name, "dynamodb:GetItem")
    assert _leading_keys(statement) == set(kinds)


@pytest.mark.parametrize(
    ("name", "action", "kinds"),
    [
        ("proxy", "dynamodb:BatchGetItem", {"CONFIG"}),
        ("proxy", "dynamodb:Query", {"GATEWAY#*"}),
        ("proxy", "dynamodb:GetItem", {"CLIENT#*", "CACHE#*", "SECRET#*"}),
        ("proxy", "dynamodb:PutItem", {"CACHE#*", "REQLOG#*"}),
        ("oauth", "dynamodb:GetItem", {"CLIENT#*", "CERT#*"}),
        ("health", "dynamodb:GetItem", {"CONFIG"}),
        ("health", "dynamodb:Query", {"GATEWAY#*"}),
        ("health", "dynamodb:PutItem", {"CONFIG"}),
    ],
)
def test_data_table_access_is_narrowed_to_the_item_kinds_each_function_touches(
    template_json: dict[str, Any], name: str, action: str, kinds: set[str]
) -> None:
    statements = [s for s in _statements(template_json, name, action) if "DataTable" in json.dumps(s["Resource"])]
    assert [_leading_keys(s) for s in statements] == [kinds]


# -- which function serves each method ------------------------------------------------------------


def _resource_paths(template: dict[str, Any]) -> dict[str, str]:
    """Logical id of each API resource (and `root`) -> its path."""
    found = {"root": ""}
    pending = dict(resources(template, "AWS::ApiGateway::Resource"))
    while pending:
        for logical, resource in list(pending.items()):
            parent = resource["Properties"]["ParentId"]
            parent_id = "root" if "Fn::GetAtt" in parent else parent["Ref"]
            if parent_id in found:
                found[logical] = f"{found[parent_id]}/{resource['Properties']['PathPart']}"
                del pending[logical]
    return found


def served_by(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(method, resource path) -> the function its integration invokes."""
    paths = _resource_paths(template)
    functions = {logical: name for name, logical in _function_logicals(template).items()}
    found = {}
    for method in resources(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = props["ResourceId"]
        path = paths["root" if "Fn::GetAtt" in resource else resource["Ref"]] or "/"
        integration = props["Integration"]
        if integration["Type"] == "MOCK":
            continue  # the 405 answers: nothing is invoked (tests/infra/test_method_not_allowed.py)
        assert integration["Type"] == "AWS_PROXY"
        (function,) = [name for logical, name in functions.items() if logical in json.dumps(integration["Uri"])]
        found[(props["HttpMethod"], path)] = function
    return found


# The webhooks function's paths: those of the fragment its routers generate for the document.
WEBHOOK_PATHS = frozenset(json.loads(WEBHOOKS_FRAGMENT.read_text(encoding="utf-8"))["paths"])


def _serves(resource: str, path: str) -> bool:
    """Whether a request for `path` (OpenAPI's template) reaches this API resource: the same path,
    or one below a greedy `{proxy+}` resource."""
    return path == resource or (resource.endswith("/{proxy+}") and path.startswith(resource.removesuffix("{proxy+}")))


def _declared_function(path: str) -> str:
    if any(_serves(path, webhook) for webhook in WEBHOOK_PATHS):
        return "webhooks"
    for operation in OPERATIONS:
        if path == operation.path or (operation.subtree and path.startswith(operation.path + "/")):
            return operation.function
    return "management"  # everything else is the management API's


def test_every_method_invokes_the_function_that_serves_its_path(template_json: dict[str, Any]) -> None:
    found = served_by(template_json)
    assert found
    for (method, path), function in found.items():
        assert function == _declared_function(path), f"{method} {path}"
    for operation in OPERATIONS:
        assert (operation.method, operation.path) in found, f"{operation.method} {operation.path} is not wired"
    fragment = json.loads(WEBHOOKS_FRAGMENT.read_text(encoding="utf-8"))["paths"]
    for path, item in fragment.items():
        for method in item:
            wired = {
                f for (m, resource), f in found.items() if m in (method.upper(), "ANY") and _serves(resource, path)
            }
            assert wired == {"webhooks"}, f"{method.upper()} {path} is not wired to the webhooks function"


def test_the_target_health_checks_run_in_the_health_function(template_json: dict[str, Any]) -> None:
    (rule,) = resources(template_json, "AWS::Events::Rule").values()
    (target,) = rule["Properties"]["Targets"]
    assert _function_logicals(template_json)["health"] in json.dumps(target["Arn"])


def test_the_scan_sees_a_new_call_and_refuses_a_client_it_cannot_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "functions" / "probe"
    package.mkdir(parents=True)
    (package / "signer.py").write_text(
        "from gateway_core import aws\n\n\ndef sign(message):\n"
        "    kms = aws.client('kms')\n    return kms.sign(KeyId='k', Message=message)\n"
    )
    (package / "handler.py").write_text("from functions.probe import signer\n")
    (package / "hidden.py").write_text(
        "from gateway_core import aws\n\n\ndef sign(message):\n    return aws.client('kms').sign(KeyId='k')\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)

    assert calls_of("functions.probe.handler") == {"kms:Sign"}
    with pytest.raises(AssertionError, match="cannot name"):
        calls_of("functions.probe.hidden")
