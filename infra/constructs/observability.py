"""Alarms: anything in the webhook DLQ, and the API's 5xx rate. They notify an SNS topic
(subscribe an address with the `alarmEmail` context value).

The topic is encrypted with a key of its own whose policy lets CloudWatch use it, and the topic
policy lets CloudWatch alarms of this account publish: with the data key (which CloudWatch may
not use) or a Deny-only topic policy, alarms would fire and no notification would ever leave.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

FIVE_XX_RATE_THRESHOLD = 0.05  # 5 % of requests over 5 minutes


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.RestApi,
        dlq: sqs.IQueue,
        fanout_dlq: sqs.IQueue,
        alarm_email: str | None,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the alarm topic; CloudWatch alarms of this account may use it to publish",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic = sns.Topic(self, "AlarmTopic", master_key=self.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch_principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                },
            )
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        action = actions.SnsAction(self.topic)
        self.dlq_alarm = cloudwatch.Alarm(
            self,
            "WebhookDlqDepth",
            alarm_description="Webhook deliveries are in the dead-letter queue and need attention",
            metric=dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.fanout_dlq_alarm = cloudwatch.Alarm(
            self,
            "WebhookFanoutDlqDepth",
            alarm_description="Events failed to fan out to webhook endpoints after every retry (records stay 24 h in the stream)",
            metric=fanout_dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # The 5XXError metric's Average is the share of requests that ended in a 5xx.
        self.server_error_alarm = cloudwatch.Alarm(
            self,
            "Api5xxRate",
            alarm_description="More than 5 % of API requests answered 5xx over 5 minutes",
            metric=api.metric_server_error(period=Duration.minutes(5), statistic="Average"),
            threshold=FIVE_XX_RATE_THRESHOLD,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.dlq_alarm, self.fanout_dlq_alarm, self.server_error_alarm):
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
