"""Payment fallback state machine. Its ASL lives in infra/statemachines/ (one source of truth:
CDK loads the file and the local runtime runs the same definition through moto)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import STATE_MACHINES_DIR


class PaymentWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self, "PaymentLogs", retention=log_retention, encryption_key=log_key, removal_policy=removal_policy
        )
        self.state_machine = sfn.StateMachine(
            self,
            "PaymentFallback",
            definition_body=sfn.DefinitionBody.from_file(str(STATE_MACHINES_DIR / "payment_fallback.asl.json")),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            removal_policy=removal_policy,
        )
