"""A test-only CDK app that exercises every path of the local runtime whose product use comes in
later issues: TOKEN and REQUEST authorizers, an SQS event source with partial batch failures
and a DLQ, an EventBridge schedule rule, a Scheduler schedule and a Step Functions Lambda task."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

HERE = Path(__file__).resolve().parent
STACK_NAME = "RuntimeFixture"


class RuntimeFixtureStack(cdk.Stack):
    def __init__(self, scope: cdk.App, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        table = dynamodb.Table(
            self,
            "Recorder",
            partition_key=dynamodb.Attribute(name="PK", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="SK", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            removal_policy=RemovalPolicy.DESTROY,
        )
        code = lambda_.Code.from_asset(str(HERE / "fixture_lambdas"))

        def function(name: str, handler: str, timeout: int = 10, reserved: int | None = None) -> lambda_.Function:
            fn = lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_14,
                handler=handler,
                code=code,
                timeout=Duration.seconds(timeout),
                environment={"RECORDER_TABLE": table.table_name, "FIXTURE_MARKER": name},
                reserved_concurrent_executions=reserved,
            )
            table.grant_read_write_data(fn)
            return fn

        api_fn = function("Api", "fixture_api.handler", timeout=2)
        slow_fn = function("SlowApi", "fixture_api.handler", timeout=10)
        reserved_fn = function("ReservedApi", "fixture_api.handler", timeout=10, reserved=1)
        token_fn = function("TokenAuth", "fixture_auth.token_handler")
        request_fn = function("RequestAuth", "fixture_auth.request_handler")
        sqs_fn = function("Consumer", "fixture_sqs.handler", timeout=1)
        schedule_fn = function("Scheduled", "fixture_schedule.handler")
        task_fn = function("Task", "fixture_task.handler")

        api = apigw.RestApi(
            self,
            "FixtureApi",
            deploy_options=apigw.StageOptions(stage_name="test"),
            binary_media_types=["application/octet-stream", "image/*"],
        )
        token_auth = apigw.TokenAuthorizer(
            self, "TokenAuthorizer", handler=token_fn, results_cache_ttl=Duration.seconds(300)
        )
        request_auth = apigw.RequestAuthorizer(
            self,
            "RequestAuthorizer",
            handler=request_fn,
            identity_sources=[apigw.IdentitySource.header("X-Tenant"), apigw.IdentitySource.query_string("region")],
            results_cache_ttl=Duration.seconds(0),
        )
        api.add_gateway_response(
            "Unauthorized",
            type=apigw.ResponseType.UNAUTHORIZED,
            status_code="401",
            templates={"application/problem+json": '{"code":"unauthorized","request_id":"$context.requestId"}'},
            response_headers={"Content-Type": "'application/problem+json'"},
        )
        integration = apigw.LambdaIntegration(api_fn)
        public = api.root.add_resource("public")
        public.add_method("ANY", integration)
        public.add_resource("items").add_resource("{itemId}").add_method("GET", integration)
        public.add_resource("files").add_resource("{proxy+}").add_method("ANY", integration)
        api.root.add_resource("slow").add_method("GET", apigw.LambdaIntegration(slow_fn))
        api.root.add_resource("reserved").add_method("GET", apigw.LambdaIntegration(reserved_fn))
        token = api.root.add_resource("token")
        token.add_method("GET", integration, authorizer=token_auth)
        token.add_method("POST", integration, authorizer=token_auth)
        api.root.add_resource("tenant").add_method("GET", integration, authorizer=request_auth)

        dlq = sqs.Queue(self, "ConsumerDlq")
        queue = sqs.Queue(
            self,
            "ConsumerQueue",
            visibility_timeout=Duration.seconds(1),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=2),
        )
        sqs_fn.add_event_source(sources.SqsEventSource(queue, batch_size=5, report_batch_item_failures=True))

        events.Rule(
            self,
            "EveryMinuteRule",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[targets.LambdaFunction(schedule_fn)],
        )
        group = scheduler.CfnScheduleGroup(self, "FixtureGroup", name="fixture-group")
        role = iam.Role(self, "SchedulerRole", assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"))
        schedule_fn.grant_invoke(role)
        schedule = scheduler.CfnSchedule(
            self,
            "EveryMinuteSchedule",
            group_name=str(group.name),
            schedule_expression="rate(1 minute)",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=schedule_fn.function_arn, role_arn=role.role_arn, input='{"source": "scheduler"}'
            ),
        )
        schedule.add_dependency(group)

        machine = sfn.StateMachine(
            self,
            "DoubleAmount",
            definition_body=sfn.DefinitionBody.from_file(str(HERE / "statemachines" / "double_amount.asl.json")),
            definition_substitutions={"TaskFunctionArn": task_fn.function_arn},
        )
        task_fn.grant_invoke(machine)

        cdk.CfnOutput(self, "RecorderTableName", value=table.table_name)
        cdk.CfnOutput(self, "QueueUrl", value=queue.queue_url)
        cdk.CfnOutput(self, "DlqUrl", value=dlq.queue_url)
        cdk.CfnOutput(self, "StateMachineArn", value=machine.state_machine_arn)


def build_app(outdir: str | None = None, context: dict[str, object] | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir, context=context) if outdir else cdk.App(context=context)
    RuntimeFixtureStack(app, STACK_NAME)
    return app
