"""EventBridge Scheduler group for integration syncs and the role schedules assume to invoke
the integrations function. Syncs create their schedules in this group at run time."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct


class SyncSchedules(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, target: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.group = scheduler.CfnScheduleGroup(self, "SyncGroup", name=f"{Stack.of(self).stack_name}-syncs")
        self.role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="Assumed by EventBridge Scheduler to start integration syncs",
        )
        target.grant_invoke(self.role)


class TargetHealthChecks(Construct):
    """An EventBridge rule that runs the proxy's active health checks every minute: the health
    function probes each deployed route's targets and records which are up."""

    def __init__(self, scope: Construct, construct_id: str, *, target: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "EveryMinute",
            description="Active health checks of the gateway's upstream targets",
            schedule=events.Schedule.rate(Duration.minutes(1)),
        )
        self.rule.add_target(
            targets.LambdaFunction(target, event=events.RuleTargetInput.from_object({"gateway_task": "health_checks"}))
        )
