"""The health function and its whole role: `GET /api/v1/gateway/health` describes the gateway's
dependencies (read-only probes), and an EventBridge rule runs the active health checks of the
upstream targets every minute, which read what serves and record the targets' health."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.data import DataStore, leading_keys
from infra.constructs.schedules import TargetHealthChecks


class GatewayHealth(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        data: DataStore,
        queues: tuple[sqs.IQueue, ...],
        state_machine: sfn.IStateMachine,
        health_deadline_ms: int,
        upstream_allow_cidrs: tuple[str, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        table = data.table.table_arn
        # The probes: one read-only call per dependency.
        function.add_environment("HEALTH_DEADLINE_MS", str(health_deadline_ms))
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:DescribeTable"], resources=[table, data.rate_limit_table.table_arn])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:GetQueueAttributes"], resources=[q.queue_arn for q in queues])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeStateMachine"], resources=[state_machine.state_machine_arn])
        )
        # ListSchedules has no resource-level permission; the group is a request parameter.
        function.add_to_role_policy(iam.PolicyStatement(actions=["scheduler:ListSchedules"], resources=["*"]))
        # The target checks: the deployments index and the serving versions, then one record of
        # the targets' health (`CONFIG`/`TARGET_HEALTH`; IAM cannot narrow a put to a sort key).
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[table], conditions=leading_keys("CONFIG"))
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[table], conditions=leading_keys("GATEWAY#*"))
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[table], conditions=leading_keys("CONFIG"))
        )
        data.grant_table_key(function, write=True)
        # Targets are probed through the same SSRF guard as the proxy's calls.
        function.add_environment("UPSTREAM_ALLOW_CIDRS", ",".join(upstream_allow_cidrs))
        self.rule = TargetHealthChecks(self, "TargetHealth", target=function).rule
