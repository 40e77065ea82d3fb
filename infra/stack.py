"""The gateway stack: composes one construct per concern and wires grants and environment."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.api import CorsSettings, MtlsDomainSettings, RestApi
from infra.constructs.data import DataStore
from infra.constructs.functions import Functions
from infra.constructs.observability import Alarms
from infra.constructs.payments import PaymentWorkflow
from infra.constructs.schedules import SyncSchedules, TargetHealthChecks
from infra.constructs.webhooks import WebhookQueues


class GatewayStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        retain_data: bool,
        alarm_email: str | None = None,
        health_deadline_ms: int = 80,
        denylist_cache_seconds: int = 0,
        issuer: str | None = None,
        token_audience: str = "finance-gateway",  # noqa: S107 - an audience name, not a secret
        signing_key_generation: int = 1,
        mtls: MtlsDomainSettings | None = None,
        cors: CorsSettings | None = None,
        upstream_allow_cidrs: tuple[str, ...] = (),
        global_rate_limit_per_second: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        retention = logs.RetentionDays.ONE_YEAR if retain_data else logs.RetentionDays.ONE_MONTH

        data = DataStore(self, "Data", removal_policy=removal, signing_key_generation=signing_key_generation)
        functions = Functions(
            self, "Functions", stage=stage, log_key=data.key, log_retention=retention, removal_policy=removal
        )
        fns = functions.functions
        queues = WebhookQueues(self, "Webhooks", key=data.key, removal_policy=removal)
        payments = PaymentWorkflow(self, "Payments", log_key=data.key, log_retention=retention, removal_policy=removal)
        schedules = SyncSchedules(self, "Schedules", target=fns["integrations"])
        api = RestApi(
            self,
            "Api",
            stage=stage,
            functions=fns,
            log_key=data.key,
            log_retention=retention,
            removal_policy=removal,
            mtls=mtls,
            cors=cors,
        )
        Alarms(self, "Observability", api=api.api, dlq=queues.dlq, alarm_email=alarm_email, removal_policy=removal)

        functions.add_environment("TABLE_NAME", data.table.table_name)
        functions.add_environment("RATE_LIMIT_TABLE_NAME", data.rate_limit_table.table_name)
        functions.add_environment("WEBHOOK_QUEUE_URL", queues.queue.queue_url)
        functions.add_environment("WEBHOOK_DLQ_URL", queues.dlq.queue_url)
        functions.add_environment("STATE_MACHINE_ARN", payments.state_machine.state_machine_arn)
        functions.add_environment("SCHEDULE_GROUP_NAME", str(schedules.group.name))
        fns["routes"].add_environment("HEALTH_DEADLINE_MS", str(health_deadline_ms))
        if cors is not None:
            for name in ("routes", "integrations", "webhooks", "marketdata"):
                for key, value in cors.environment().items():
                    fns[name].add_environment(key, value)

        # Least privilege: each function gets what its code does today; later issues add theirs.
        issuer_url = issuer or f"https://{api.api.rest_api_id}.execute-api.{self.region}.{self.url_suffix}/{stage}"
        verify_key_ids = ",".join(k.key_arn for k in data.token_verify_keys)
        authorizers = ("api_key_authorizer", "jwt_authorizer", "mtls_authorizer", "gateway_authorizer")
        for name in authorizers:
            # One GetItem per check: the key, the certificate, the client, an issuer, the denylist.
            fns[name].add_environment("DENYLIST_CACHE_SECONDS", str(denylist_cache_seconds))
            fns[name].add_to_role_policy(
                iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[data.table.table_arn])
            )
            data.grant_table_key(fns[name], write=name in ("api_key_authorizer", "gateway_authorizer"))
        # The API key authorizers also record a key's last use (at most hourly): that one
        # attribute, on key lookup items only. (The gateway authorizer checks any credential.)
        for name in ("api_key_authorizer", "gateway_authorizer"):
            fns[name].add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:UpdateItem"],
                    resources=[data.table.table_arn],
                    conditions={
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APIKEY#*"]},
                        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["PK", "SK", "last_used_at"]},
                    },
                )
            )
        for name in ("jwt_authorizer", "gateway_authorizer"):
            fns[name].add_environment("TOKEN_ISSUER", issuer_url)
            fns[name].add_environment("TOKEN_AUDIENCE", token_audience)
            fns[name].add_environment("TOKEN_VERIFY_KEY_IDS", verify_key_ids)
            fns[name].add_to_role_policy(
                iam.PolicyStatement(actions=["kms:GetPublicKey"], resources=[k.key_arn for k in data.token_verify_keys])
            )
        routes = fns["routes"]
        # Both tables are encrypted with the data key: every item read and write needs it.
        data.grant_table_key(routes, write=True)
        routes.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:DescribeTable"],
                resources=[data.table.table_arn, data.rate_limit_table.table_arn],
            )
        )
        # Clients and audit: item reads and writes (in transactions) and the listing index.
        routes.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:ConditionCheckItem",
                ],
                resources=[data.table.table_arn, f"{data.table.table_arn}/index/GSI1"],
            )
        )
        # The proxy's rate limits: one conditional UpdateItem per scope (and refunds).
        routes.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[data.rate_limit_table.table_arn])
        )
        # Upstreams: https only unless an address is on the operator's allowlist (context
        # `upstreamAllowCidrs`; the local runtime allowlists loopback for its test upstreams).
        routes.add_environment("UPSTREAM_ALLOW_CIDRS", ",".join(upstream_allow_cidrs))
        routes.add_environment("GLOBAL_RATE_LIMIT_PER_SECOND", str(global_rate_limit_per_second))
        # Active health checks of upstream targets, every minute.
        TargetHealthChecks(self, "TargetHealth", target=routes)
        routes.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sqs:GetQueueAttributes"], resources=[queues.queue.queue_arn, queues.dlq.queue_arn]
            )
        )
        routes.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeStateMachine"], resources=[payments.state_machine.state_machine_arn]
            )
        )
        # Revoking or narrowing a key flushes the stage's authorizer cache.
        routes.add_environment("REST_API_ID", api.api.rest_api_id)
        routes.add_to_role_policy(
            iam.PolicyStatement(
                actions=["apigateway:DELETE"],
                resources=[
                    f"arn:{self.partition}:apigateway:{self.region}::/restapis/{api.api.rest_api_id}/stages/{stage}/cache/authorizers"
                ],
            )
        )
        # OAuth2: sign tokens in KMS with the current key, publish current and previous public keys.
        routes.add_to_role_policy(iam.PolicyStatement(actions=["kms:Sign"], resources=[data.token_signing_key.key_arn]))
        routes.add_to_role_policy(
            iam.PolicyStatement(actions=["kms:GetPublicKey"], resources=[k.key_arn for k in data.token_verify_keys])
        )
        routes.add_environment("TOKEN_SIGNING_KEY_ID", data.token_signing_key.key_arn)
        routes.add_environment("TOKEN_VERIFY_KEY_IDS", verify_key_ids)
        routes.add_environment("TOKEN_ISSUER", issuer_url)
        routes.add_environment("TOKEN_AUDIENCE", token_audience)
        if mtls is not None:
            # Discovery names the mTLS host for certificate-bound tokens (RFC 8705 §5).
            routes.add_environment("MTLS_BASE_URL", f"https://{mtls.domain_name}")
        # ListSchedules has no resource-level permission; the group is a request parameter.
        routes.add_to_role_policy(iam.PolicyStatement(actions=["scheduler:ListSchedules"], resources=["*"]))

        CfnOutput(self, "ApiUrl", value=api.api.url)
        CfnOutput(self, "TableName", value=data.table.table_name)
        CfnOutput(self, "ScheduleGroupName", value=str(schedules.group.name))
        if api.mtls_domain is not None:
            CfnOutput(self, "MtlsDomainTarget", value=api.mtls_domain.domain_name_alias_domain_name)
