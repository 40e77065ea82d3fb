"""What the synthesized template holds: every resource kind the foundation provisions, configured
as the design asks (encryption, PITR, TTL, tracing, logging, redrive, least privilege)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.app import STACK_NAME, build_app
from infra.config import LAMBDA_FUNCTIONS, STATE_MACHINES_DIR


def _of_type(template_json: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == kind}


def test_every_resource_kind_is_provisioned(template: Template) -> None:
    for kind, count in {
        "AWS::ApiGateway::RestApi": 1,
        "AWS::ApiGateway::Stage": 1,
        # API key, JWT, mTLS, the proxy's (any one or none) and the admin API's (key or token)
        "AWS::ApiGateway::Authorizer": 5,
        "AWS::Lambda::Function": len(LAMBDA_FUNCTIONS),
        "AWS::Lambda::LayerVersion": 2,
        "AWS::DynamoDB::Table": 2,
        "AWS::KMS::Key": 5,  # data encryption, upstream secrets, token signing, the alarm topic, webhook signing keys
        "AWS::SQS::Queue": 3,  # webhook deliveries, their DLQ, the fan-out DLQ
        "AWS::StepFunctions::StateMachine": 1,
        "AWS::Scheduler::ScheduleGroup": 1,
        "AWS::CloudWatch::Alarm": 3,  # the delivery DLQ, the fan-out DLQ, the 5xx rate
        "AWS::Lambda::EventSourceMapping": 2,  # the fan-out (table stream), the delivery worker (queue)
        "AWS::Events::Rule": 1,  # the proxy's active health checks
    }.items():
        template.resource_count_is(kind, count)


def test_functions_run_the_staged_handlers_with_both_layers_and_tracing(template_json: dict[str, Any]) -> None:
    functions = _of_type(template_json, "AWS::Lambda::Function").values()
    handlers = sorted(f["Properties"]["Handler"] for f in functions)
    assert handlers == sorted(f"functions.{folder}.{module}.lambda_handler" for _, folder, module in LAMBDA_FUNCTIONS)
    for function in functions:
        props = function["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["x86_64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 2
        assert props["LoggingConfig"]["LogGroup"]
        assert props["Environment"]["Variables"]["TABLE_NAME"]
    roles = {json.dumps(f["Properties"]["Role"]) for f in functions}
    assert len(roles) == len(LAMBDA_FUNCTIONS), "each function has its own role"


def test_tables_are_on_demand_encrypted_recoverable_and_expire_by_ttl(template: Template) -> None:
    template.all_resources_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
        },
    )
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [
                Match.object_like({"IndexName": "GSI1"}),
                Match.object_like({"IndexName": "GSI2"}),
            ],
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_webhook_queue_is_encrypted_with_redrive_to_its_dlq(template_json: dict[str, Any]) -> None:
    queues = _of_type(template_json, "AWS::SQS::Queue")
    main = next(q for k, q in queues.items() if "WebhookQueue" in k)
    dlq_logical = next(k for k in queues if "WebhookDlq" in k)
    assert main["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_logical, "Arn"]},
        "maxReceiveCount": 5,
    }
    for queue in queues.values():
        assert "KmsMasterKeyId" in queue["Properties"]
    policies = _of_type(template_json, "AWS::SQS::QueuePolicy").values()
    assert all("aws:SecureTransport" in json.dumps(p) for p in policies)


def test_state_machine_definition_is_the_asl_file(template_json: dict[str, Any], assembly_dir: Path) -> None:
    # CDK ships the file as an S3 asset; the asset's bytes are the file's bytes.
    machine = next(iter(_of_type(template_json, "AWS::StepFunctions::StateMachine").values()))
    key = machine["Properties"]["DefinitionS3Location"]["Key"]
    manifest = json.loads((assembly_dir / f"{STACK_NAME}.assets.json").read_text())
    asset = next(
        a for a in manifest["files"].values() if any(d["objectKey"] == key for d in a["destinations"].values())
    )
    shipped = json.loads((assembly_dir / asset["source"]["path"]).read_text())
    assert shipped == json.loads((STATE_MACHINES_DIR / "payment_fallback.asl.json").read_text())
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"


def test_api_stage_has_access_logs_tracing_and_the_three_authorizers(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {"TracingEnabled": True, "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()})},
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "REQUEST",
            "IdentitySource": "method.request.header.x-api-key,context.identity.sourceIp",
            "AuthorizerResultTtlInSeconds": 300,
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "REQUEST",
            "IdentitySource": "method.request.header.Authorization,context.identity.sourceIp",
            "AuthorizerResultTtlInSeconds": 300,
        },
    )
    # The mTLS authorizer is not cached: a revoked certificate is refused on its next request.
    template.has_resource_properties(
        "AWS::ApiGateway::Authorizer", {"Type": "REQUEST", "AuthorizerResultTtlInSeconds": 0}
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {"HttpMethod": "GET", "AuthorizationType": "NONE", "Integration": Match.object_like({"Type": "AWS_PROXY"})},
    )


def test_gateway_errors_are_problem_json(template_json: dict[str, Any]) -> None:
    responses = _of_type(template_json, "AWS::ApiGateway::GatewayResponse").values()
    types = {r["Properties"]["ResponseType"] for r in responses}
    assert {
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "MISSING_AUTHENTICATION_TOKEN",
        "REQUEST_TOO_LARGE",
        "INTEGRATION_FAILURE",
        "INTEGRATION_TIMEOUT",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    } <= types
    for response in responses:
        template_text = response["Properties"]["ResponseTemplates"]["application/problem+json"]
        # Valid JSON once API Gateway substitutes its variables.
        rendered = template_text.replace("$context.error.messageString", '"m"').replace("$context.requestId", "r")
        problem = json.loads(rendered)
        assert problem["type"].startswith("urn:gateway:problem:")
        parameters = response["Properties"]["ResponseParameters"]
        assert parameters["gatewayresponse.header.Content-Type"] == "'application/problem+json'"
        if response["Properties"]["ResponseType"] == "UNAUTHORIZED":
            challenge = parameters["gatewayresponse.header.WWW-Authenticate"]
            assert challenge.startswith("'Bearer realm=")
            assert 'ApiKey realm="finance-gateway"' in challenge


def test_alarms_watch_dlq_depth_and_5xx_rate(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 1}
    )
    template.has_resource_properties("AWS::CloudWatch::Alarm", {"MetricName": "5XXError", "Statistic": "Average"})


def test_scheduler_role_may_only_invoke_the_integrations_function(template_json: dict[str, Any]) -> None:
    policies = [p for k, p in _of_type(template_json, "AWS::IAM::Policy").items() if "SchedulerRole" in k]
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert {s["Action"] for s in statements} == {"lambda:InvokeFunction"}
    assert "FunctionsIntegrationsFunction" in json.dumps(statements)


def test_authorizer_roles_read_single_items_only(template_json: dict[str, Any]) -> None:
    policies = [p for k, p in _of_type(template_json, "AWS::IAM::Policy").items() if "AuthorizerRole" in k]
    assert len(policies) == 5
    for policy in policies:
        actions = json.dumps(policy["Properties"]["PolicyDocument"]["Statement"])
        assert "dynamodb:GetItem" in actions
        for forbidden in ("dynamodb:Scan", "dynamodb:PutItem", "dynamodb:*", "kms:Sign"):
            assert forbidden not in actions
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "dynamodb:Query" in json.dumps(statement["Action"]):
                # only the admin authorizer counting a client's certificates: a count, never an item
                assert statement["Condition"] == {"StringEquals": {"dynamodb:Select": "COUNT"}}
                assert json.dumps(statement["Resource"]).endswith('/index/GSI1"]]}')
            if "dynamodb:UpdateItem" in json.dumps(statement["Action"]):
                # only the API key authorizer's last-use stamp, on key lookup items
                assert statement["Condition"]["ForAllValues:StringLike"] == {"dynamodb:LeadingKeys": ["APIKEY#*"]}
                attributes = statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
                assert attributes == ["PK", "SK", "last_used_at"]


def _synth(context: dict[str, object], tmp_path: Path) -> dict[str, Any]:
    assembly = build_app(outdir=str(tmp_path), context=context).synth()
    return dict(assembly.get_stack_by_name(STACK_NAME).template)


def _env(template_json: dict[str, Any], function: str) -> dict[str, Any]:
    found = _of_type(template_json, "AWS::Lambda::Function")
    return dict(next(f for k, f in found.items() if function in k)["Properties"]["Environment"]["Variables"])


def test_rotating_the_signing_key_keeps_the_previous_one_for_verification(tmp_path: Path) -> None:
    # Given generation 2 of the token signing key
    template_json = _synth({"tokenSigningKeyGeneration": "2"}, tmp_path)

    # Then two signing keys exist: the new one signs, both verify and are published
    keys = [k for k, v in _of_type(template_json, "AWS::KMS::Key").items() if "TokenSigningKey" in k]
    assert len(keys) == 2
    current = next(k for k in keys if "TokenSigningKeyV2" in k)
    oauth, jwt_authorizer = _env(template_json, "OauthFunction"), _env(template_json, "JwtAuthorizerFunction")
    assert current in json.dumps(oauth["TOKEN_SIGNING_KEY_ID"])
    for env in (oauth, jwt_authorizer):
        verify = json.dumps(env["TOKEN_VERIFY_KEY_IDS"])
        assert all(k in verify for k in keys)
        assert verify.index(current) < verify.index(next(k for k in keys if k != current)), "current key first"


def test_an_mtls_custom_domain_comes_with_its_s3_truststore_when_the_context_gives_one(tmp_path: Path) -> None:
    template_json = _synth(
        {
            "mtlsDomainName": "mtls.bank.example",
            "mtlsCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "mtlsTruststoreUri": "s3://bank-truststore/ca-bundle.pem",
            "mtlsTruststoreVersion": "v3",
        },
        tmp_path,
    )
    domain = next(iter(_of_type(template_json, "AWS::ApiGateway::DomainName").values()))["Properties"]
    assert domain["DomainName"] == "mtls.bank.example"
    assert domain["MutualTlsAuthentication"] == {
        "TruststoreUri": "s3://bank-truststore/ca-bundle.pem",
        "TruststoreVersion": "v3",
    }
    assert domain["SecurityPolicy"] == "TLS_1_2"
    assert len(_of_type(template_json, "AWS::ApiGateway::BasePathMapping")) == 1
    assert _env(template_json, "OauthFunction")["MTLS_BASE_URL"] == "https://mtls.bank.example"


def test_without_mtls_context_there_is_no_custom_domain(template_json: dict[str, Any]) -> None:
    assert _of_type(template_json, "AWS::ApiGateway::DomainName") == {}


def test_tokens_are_signed_by_an_asymmetric_kms_key_only_the_oauth_function_may_use(
    template: Template, template_json: dict[str, Any]
) -> None:
    template.has_resource_properties("AWS::KMS::Key", {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"})
    signers = [
        logical
        for logical, policy in _of_type(template_json, "AWS::IAM::Policy").items()
        if "kms:Sign" in json.dumps(policy["Properties"]["PolicyDocument"])
    ]
    assert len(signers) == 1
    assert "OauthRole" in signers[0]


def test_cors_adds_preflight_methods_gateway_response_headers_and_function_settings(tmp_path: Path) -> None:
    # Given two browser origins
    origins = "https://app.bank.example,https://ops.bank.example"
    template_json = _synth({"corsAllowOrigins": origins}, tmp_path)

    # Then every resource with methods has an OPTIONS method without an authorizer
    methods = _of_type(template_json, "AWS::ApiGateway::Method").values()
    resources_with_methods = {json.dumps(m["Properties"]["ResourceId"]) for m in methods}
    options = [m for m in methods if m["Properties"]["HttpMethod"] == "OPTIONS"]
    assert {json.dumps(m["Properties"]["ResourceId"]) for m in options} == resources_with_methods - {
        json.dumps({"Fn::GetAtt": [k, "RootResourceId"]}) for k in _of_type(template_json, "AWS::ApiGateway::RestApi")
    }
    assert all(m["Properties"]["AuthorizationType"] == "NONE" for m in options)
    # API Gateway's own errors echo the Origin (several origins cannot be listed there)
    for response in _of_type(template_json, "AWS::ApiGateway::GatewayResponse").values():
        parameters = response["Properties"]["ResponseParameters"]
        assert parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "method.request.header.origin"
        assert parameters["gatewayresponse.header.Vary"] == "'Origin'"
    # The functions answer preflight and add the headers for listed origins
    for function in ("ManagementFunction", "ProxyFunction", "OauthFunction", "HealthFunction"):
        assert _env(template_json, function)["CORS_ALLOW_ORIGINS"] == origins


def test_a_single_cors_origin_is_static_on_gateway_errors_and_bad_origins_fail_synthesis(tmp_path: Path) -> None:
    template_json = _synth({"corsAllowOrigins": "https://app.bank.example"}, tmp_path / "one")
    response = next(iter(_of_type(template_json, "AWS::ApiGateway::GatewayResponse").values()))
    origin = response["Properties"]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
    assert origin == "'https://app.bank.example'"
    for bad in ("app.bank.example", "https://app.bank.example/path", "*,https://app.bank.example"):
        with pytest.raises(ValueError, match="corsAllowOrigins"):
            build_app(outdir=str(tmp_path / "bad"), context={"corsAllowOrigins": bad})


def test_without_cors_context_there_are_no_preflight_methods(template_json: dict[str, Any]) -> None:
    methods = _of_type(template_json, "AWS::ApiGateway::Method").values()
    assert [m for m in methods if m["Properties"]["HttpMethod"] == "OPTIONS"] == []


def test_the_proxy_is_behind_the_gateway_authorizer_and_reaches_no_private_address(
    template_json: dict[str, Any],
) -> None:
    # Given the synthesized template of a plain deploy (no context)
    authorizers = _of_type(template_json, "AWS::ApiGateway::Authorizer")
    gateway_authorizer = next(k for k, a in authorizers.items() if "GatewayAuthorizer" in k)
    methods = _of_type(template_json, "AWS::ApiGateway::Method")
    proxied = [m for k, m in methods.items() if "gw" in k.lower() and m["Properties"]["HttpMethod"] == "ANY"]

    # Then /gw and /gw/{proxy+} use the gateway authorizer, uncached (identity may be anything or none)
    assert len(proxied) == 2
    for method in proxied:
        assert method["Properties"]["AuthorizerId"] == {"Ref": gateway_authorizer}
    assert authorizers[gateway_authorizer]["Properties"]["AuthorizerResultTtlInSeconds"] == 0
    # And the functions that check or call upstreams allowlist no private range unless an operator says so
    for function in ("FunctionsProxy", "FunctionsHealth", "FunctionsManagement"):
        assert _env(template_json, function)["UPSTREAM_ALLOW_CIDRS"] == ""
    # And a rule runs the health checks every minute with the task's input
    (rule,) = _of_type(template_json, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert json.loads(rule["Properties"]["Targets"][0]["Input"]) == {"gateway_task": "health_checks"}


def test_the_admin_api_takes_a_key_or_a_token_through_one_uncached_authorizer(
    template_json: dict[str, Any],
) -> None:
    # Given the synthesized template
    authorizers = _of_type(template_json, "AWS::ApiGateway::Authorizer")
    admin = next(k for k in authorizers if "AdminAuthorizer" in k)
    methods = _of_type(template_json, "AWS::ApiGateway::Method")
    paths = {k: m for k, m in methods.items() if m["Properties"].get("AuthorizerId") == {"Ref": admin}}

    # Then every admin group is behind it (keys, clients, issuers, denylist, audit, gateways, routes)
    names = " ".join(paths).lower()
    for group in ("keys", "clients", "issuers", "ipdenylist", "audit", "gateways", "routes"):
        assert group in names, group
    assert not any("whoami" in k.lower() for k in paths)
    # And it has no identity source, so neither credential is required by API Gateway, and no cache
    properties = authorizers[admin]["Properties"]
    assert properties["Type"] == "REQUEST"
    assert properties.get("IdentitySource", "") == ""
    assert properties["AuthorizerResultTtlInSeconds"] == 0
