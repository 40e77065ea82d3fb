"""What would fail only in AWS, checked on the synthesized template and the staged assets: Lambda's
resource-policy size limit, KMS key use by the roles that touch encrypted data, CloudWatch's way
into an encrypted alarm topic, binary media types, and the pins of the dependency layer.

Each guard is also run against a deliberately broken template, so it is known to bite."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_

from infra.build import CONSTRAINTS, pip_install_command
from infra.config import FUNCTIONS_SRC, deps_layer_asset_dir, local_deps_layer_dir
from tests.infra.template_guards import (
    LAMBDA_POLICY_LIMIT_BYTES,
    authorizer_cache_problems,
    binary_media_type_problems,
    event_source_timeout_problems,
    lambda_resource_policy_sizes,
    missing_key_grants,
    oversized_resource_policies,
    resources,
    role_statements,
    unreachable_alarm_topics,
)


# -- Lambda resource policies (PolicyLengthExceededException at deploy) --------------------------
def test_every_function_resource_policy_fits_lambdas_limit(template_json: dict[str, Any]) -> None:
    sizes = lambda_resource_policy_sizes(template_json)
    assert sizes, "the API's functions carry invoke permissions"
    assert oversized_resource_policies(template_json) == []
    # Room to grow: the largest policy is well under the limit.
    assert max(sizes.values()) < LAMBDA_POLICY_LIMIT_BYTES / 2, sizes


def _api_with_methods(tmp_path: Path, count: int, *, per_method: bool) -> dict[str, Any]:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Guarded")
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(e, c): return {}"),
    )
    api = apigw.RestApi(stack, "Api")
    integration = apigw.LambdaIntegration(function, scope_permission_to_method=per_method)
    for index in range(count):
        api.root.add_resource(f"resource{index}").add_method("GET", integration)
    app.synth()
    return dict(json.loads((tmp_path / "Guarded.template.json").read_text()))


def test_thirty_methods_with_per_method_permissions_overflow_and_are_caught(tmp_path: Path) -> None:
    per_method = _api_with_methods(tmp_path / "per-method", 30, per_method=True)
    api_scoped = _api_with_methods(tmp_path / "api-scoped", 30, per_method=False)
    assert len(oversized_resource_policies(per_method)) == 1
    assert oversized_resource_policies(api_scoped) == []


# -- KMS: every role touching encrypted data may use the key -------------------------------------
def test_every_role_that_touches_encrypted_data_may_use_its_key(template_json: dict[str, Any]) -> None:
    assert missing_key_grants(template_json) == []


def test_a_role_reading_an_encrypted_table_without_the_key_is_caught(template_json: dict[str, Any]) -> None:
    broken = copy.deepcopy(template_json)
    for policy in resources(broken, "AWS::IAM::Policy").values():
        document = policy["Properties"]["PolicyDocument"]
        document["Statement"] = [
            s for s in document["Statement"] if not any(str(a).startswith("kms:Decrypt") for a in _actions(s))
        ]
    problems = missing_key_grants(broken)
    # Every authorizer and the functions that read the tables lose their way in.
    authorizer_roles = [r for r in role_statements(broken) if "AuthorizerRole" in r]
    assert authorizer_roles
    for role in authorizer_roles:
        assert any(p.startswith(f"{role}: dynamodb:GetItem") and "kms:Decrypt" in p for p in problems), problems


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


# -- Alarm notifications --------------------------------------------------------------------------
def test_alarm_topics_let_cloudwatch_use_their_key_and_publish(template_json: dict[str, Any]) -> None:
    assert resources(template_json, "AWS::CloudWatch::Alarm")
    assert unreachable_alarm_topics(template_json) == []


def test_an_alarm_topic_cloudwatch_cannot_reach_is_caught(template_json: dict[str, Any]) -> None:
    broken = copy.deepcopy(template_json)
    for key in resources(broken, "AWS::KMS::Key").values():
        statements = key["Properties"]["KeyPolicy"]["Statement"]
        key["Properties"]["KeyPolicy"]["Statement"] = [s for s in statements if "cloudwatch" not in json.dumps(s)]
    for logical in list(resources(broken, "AWS::SNS::TopicPolicy")):
        del broken["Resources"][logical]
    problems = unreachable_alarm_topics(broken)
    assert any("does not let CloudWatch kms:Decrypt" in p for p in problems), problems
    assert any("no topic policy lets CloudWatch" in p for p in problems), problems


# -- Binary bodies --------------------------------------------------------------------------------
def test_binary_media_types_cover_the_base64_answers_of_the_functions(template_json: dict[str, Any]) -> None:
    assert binary_media_type_problems(template_json, [FUNCTIONS_SRC]) == []
    without = copy.deepcopy(template_json)
    for api in resources(without, "AWS::ApiGateway::RestApi").values():
        api["Properties"].pop("BinaryMediaTypes", None)
    assert binary_media_type_problems(without, [FUNCTIONS_SRC]), "the proxy answers base64 bodies"


# -- The dependency layer is what the pins say ----------------------------------------------------
def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        name, _, version = line.strip().partition("==")
        if version:
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _installed(layer: Path) -> dict[str, str]:
    found = {}
    for dist_info in layer.glob("*.dist-info"):
        name, _, version = dist_info.name.removesuffix(".dist-info").rpartition("-")
        found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def test_dependency_layers_are_installed_under_the_constraints_file() -> None:
    command = pip_install_command(Path("target"), ["-r", "requirements/lambda.txt"], lambda_platform=True)
    assert command[command.index("-c") + 1] == str(CONSTRAINTS)
    pins = _pins()
    for layer in (deps_layer_asset_dir() / "python", local_deps_layer_dir() / "python"):
        installed = _installed(layer)
        assert {"boto3", "aws-lambda-powertools", "pydantic"} <= set(installed), layer
        unpinned = {name: version for name, version in installed.items() if pins.get(name) != version}
        assert unpinned == {}, f"{layer}: versions that differ from requirements/constraints.txt"


# -- Authorizers (BadRequestException at deploy) -------------------------------------------------
def test_every_caching_request_authorizer_has_identity_sources(template_json: dict[str, Any]) -> None:
    assert authorizer_cache_problems(template_json) == []


def test_a_caching_authorizer_without_identity_sources_is_caught(template_json: dict[str, Any]) -> None:
    broken = copy.deepcopy(template_json)
    authorizers = resources(broken, "AWS::ApiGateway::Authorizer")
    admin = next(k for k in authorizers if "AdminAuthorizer" in k)
    cached_key = next(k for k, a in authorizers.items() if a["Properties"].get("IdentitySource"))
    authorizers[admin]["Properties"]["AuthorizerResultTtlInSeconds"] = 300
    del authorizers[cached_key]["Properties"]["IdentitySource"]
    assert authorizer_cache_problems(broken) == [
        f"{name}: caches for 300 s but has no identity source" for name in sorted((admin, cached_key))
    ]


def test_every_sqs_event_source_hides_messages_as_long_as_its_function_runs(template_json: dict[str, Any]) -> None:
    assert event_source_timeout_problems(template_json) == []


def test_a_queue_that_shows_messages_again_while_the_function_runs_is_caught(template_json: dict[str, Any]) -> None:
    broken = copy.deepcopy(template_json)
    queue = next(k for k in resources(broken, "AWS::SQS::Queue") if "WebhookQueue" in k)
    resources(broken, "AWS::SQS::Queue")[queue]["Properties"]["VisibilityTimeout"] = 10
    (problem,) = event_source_timeout_problems(broken)
    assert f"{queue} hides a message 10 s" in problem
