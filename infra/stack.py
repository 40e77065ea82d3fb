"""The gateway stack: composes one construct per concern; each function's role and environment
are set by the construct of its job (infra/constructs/authorizers, data_plane, management, oauth,
health)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.api import CorsSettings, MtlsDomainSettings, RestApi
from infra.constructs.authorizers import Authorizers
from infra.constructs.data import DataStore
from infra.constructs.data_plane import DataPlane
from infra.constructs.functions import Functions
from infra.constructs.health import GatewayHealth
from infra.constructs.management import ManagementApi
from infra.constructs.oauth import OAuthServer
from infra.constructs.observability import Alarms
from infra.constructs.payments import PaymentWorkflow
from infra.constructs.schedules import SyncSchedules
from infra.constructs.webhooks import WebhookDelivery, WebhookQueues


@dataclass(frozen=True)
class WebhookSettings:
    """Context `webhookTimeScale` (the retry schedule, breaker and disabling run this much
    faster: local tests; 1 in AWS), `webhookRotationGraceSeconds` (24 h by default),
    `webhookDisableAfterSeconds` (5 days by default)."""

    time_scale: float = 1.0
    rotation_grace_seconds: int | None = None
    disable_after_seconds: int | None = None
    # The delivery worker's timeout (`webhookWorkerTimeoutSeconds`, 60 by default: a batch's
    # attempts run side by side, each at most 30 s) and the delivery queue's visibility timeout
    # (`webhookQueueVisibilitySeconds`, six times the worker's by default, as AWS advises; at least
    # the worker's, which Lambda requires of an SQS event source).
    worker_timeout_seconds: int = 60
    queue_visibility_seconds: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.time_scale <= 1:
            raise ValueError("webhookTimeScale is in (0, 1]")
        if not 5 <= self.worker_timeout_seconds <= 900:
            raise ValueError("webhookWorkerTimeoutSeconds is between 5 and 900")
        if self.visibility_seconds < self.worker_timeout_seconds:
            raise ValueError("webhookQueueVisibilitySeconds is at least the worker's timeout")

    @property
    def visibility_seconds(self) -> int:
        return self.queue_visibility_seconds or 6 * self.worker_timeout_seconds


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
        webhooks: WebhookSettings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        retention = logs.RetentionDays.ONE_YEAR if retain_data else logs.RetentionDays.ONE_MONTH

        hooks = webhooks or WebhookSettings()
        data = DataStore(self, "Data", removal_policy=removal, signing_key_generation=signing_key_generation)
        functions = Functions(
            self,
            "Functions",
            stage=stage,
            log_key=data.key,
            log_retention=retention,
            removal_policy=removal,
            timeouts={"webhook_delivery": hooks.worker_timeout_seconds},
        )
        fns = functions.functions
        queues = WebhookQueues(
            self, "Webhooks", key=data.key, removal_policy=removal, visibility_seconds=hooks.visibility_seconds
        )
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
        Alarms(
            self,
            "Observability",
            api=api.api,
            dlq=queues.dlq,
            fanout_dlq=queues.fanout_dlq,
            alarm_email=alarm_email,
            removal_policy=removal,
        )

        functions.add_environment("TABLE_NAME", data.table.table_name)
        functions.add_environment("RATE_LIMIT_TABLE_NAME", data.rate_limit_table.table_name)
        functions.add_environment("WEBHOOK_QUEUE_URL", queues.queue.queue_url)
        functions.add_environment("WEBHOOK_DLQ_URL", queues.dlq.queue_url)
        functions.add_environment("STATE_MACHINE_ARN", payments.state_machine.state_machine_arn)
        functions.add_environment("SCHEDULE_GROUP_NAME", str(schedules.group.name))
        if cors is not None:
            # Browser access: every function behind a method answers preflights and adds the headers.
            for name in ("management", "proxy", "oauth", "health", "integrations", "webhooks", "marketdata"):
                for key, value in cors.environment().items():
                    fns[name].add_environment(key, value)

        # Least privilege: each function's whole role is in its own construct, beside its code's
        # calls (tests/infra checks each role against the boto3 calls its code path makes).
        issuer_url = issuer or f"https://{api.api.rest_api_id}.execute-api.{self.region}.{self.url_suffix}/{stage}"
        Authorizers(
            self,
            "Authorizers",
            functions=fns,
            data=data,
            denylist_cache_seconds=denylist_cache_seconds,
            issuer_url=issuer_url,
            token_audience=token_audience,
            upstream_allow_cidrs=upstream_allow_cidrs,
        )
        DataPlane(
            self,
            "DataPlane",
            function=fns["proxy"],
            data=data,
            upstream_allow_cidrs=upstream_allow_cidrs,
            global_rate_limit_per_second=global_rate_limit_per_second,
        )
        ManagementApi(
            self,
            "Management",
            function=fns["management"],
            data=data,
            api=api.api,
            stage=stage,
            issuer_url=issuer_url,
            upstream_allow_cidrs=upstream_allow_cidrs,
        )
        OAuthServer(
            self,
            "OAuth",
            function=fns["oauth"],
            data=data,
            issuer_url=issuer_url,
            token_audience=token_audience,
            mtls_base_url=f"https://{mtls.domain_name}" if mtls is not None else None,
        )
        GatewayHealth(
            self,
            "Health",
            function=fns["health"],
            data=data,
            queues=(queues.queue, queues.dlq),
            state_machine=payments.state_machine,
            health_deadline_ms=health_deadline_ms,
            upstream_allow_cidrs=upstream_allow_cidrs,
        )

        WebhookDelivery(
            self,
            "WebhookDelivery",
            functions=fns,
            data=data,
            queues=queues,
            removal_policy=removal,
            upstream_allow_cidrs=upstream_allow_cidrs,
            time_scale=hooks.time_scale,
            rotation_grace_seconds=hooks.rotation_grace_seconds,
            disable_after_seconds=hooks.disable_after_seconds,
        )

        CfnOutput(self, "ApiUrl", value=api.api.url)
        CfnOutput(self, "TableName", value=data.table.table_name)
        CfnOutput(self, "ScheduleGroupName", value=str(schedules.group.name))
        if api.mtls_domain is not None:
            CfnOutput(self, "MtlsDomainTarget", value=api.mtls_domain.domain_name_alias_domain_name)
