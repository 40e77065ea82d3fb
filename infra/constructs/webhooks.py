"""Webhooks: the delivery queue and its DLQ, the fan-out's DLQ, the key that encrypts signing keys,
and the three functions' roles and event sources.

- `webhooks` (the API) reads and writes endpoints, deliveries, attempts and its audit events,
  encrypts new signing keys, decrypts them for a test send, queues replays and redrives the DLQ.
- `webhook_fanout` reads the data table's stream, filtered to new items carrying an event
  (gateway_core.events), lists endpoints, creates deliveries and queues them.
- `webhook_delivery` consumes the delivery queue (partial batch failures), decrypts signing keys,
  records attempts, publishes `endpoint.disabled` / `message.attempt.exhausted`, and sends
  abandoned deliveries to the DLQ.
Queue redrive policy: after `MAX_RECEIVE_COUNT` failed receives (our failures, not a receiver's:
those are recorded and scheduled) a message moves to the DLQ, which alarms.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.data import DataStore

MAX_RECEIVE_COUNT = 5
# New items that carry an event (only they have `event_data`; deliveries have an `event_type`
# too): the fan-out is invoked for nothing else.
EVENT_FILTER = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"event_data": {"S": [{"exists": True}]}}}}
# A stream batch that keeps failing is retried this often (halved each time) before its record
# range goes to the fan-out DLQ; the stream keeps records 24 hours.
FANOUT_RETRIES = 10
TRANSACTION_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem")


class WebhookQueues(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        removal_policy: RemovalPolicy,
        visibility_seconds: int = 360,
    ) -> None:
        super().__init__(scope, construct_id)

        def queue(construct: str, retention_days: int, **options: Any) -> sqs.Queue:
            # Every webhook queue: KMS-encrypted with the data key, TLS only.
            return sqs.Queue(
                self,
                construct,
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=key,
                enforce_ssl=True,
                retention_period=Duration.days(retention_days),
                removal_policy=removal_policy,
                **options,
            )

        self.dlq = queue("WebhookDlq", 14)
        self.queue = queue(
            "WebhookQueue",
            4,
            # Six times the worker's timeout by default, as AWS advises for Lambda event sources;
            # a killed worker's messages come back after it.
            visibility_timeout=Duration.seconds(visibility_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT),
        )
        # Where the fan-out's exhausted stream batches are described (shard and sequence range).
        self.fanout_dlq = queue("FanoutDlq", 14)


class WebhookDelivery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: dict[str, lambda_.Function],
        data: DataStore,
        queues: WebhookQueues,
        removal_policy: RemovalPolicy,
        upstream_allow_cidrs: tuple[str, ...],
        time_scale: float = 1.0,
        rotation_grace_seconds: int | None = None,
        disable_after_seconds: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        api, fanout, worker = functions["webhooks"], functions["webhook_fanout"], functions["webhook_delivery"]
        # Signing keys (v1 secrets, v1a private keys) are encrypted with a key of their own: the
        # API encrypts, the API (test sends) and the worker decrypt; nothing else can.
        self.signing_keys = kms.Key(
            self,
            "SigningKeysKey",
            description="Encrypts webhook endpoints' signing secrets and private keys",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        table = data.table
        indexes = [table.table_arn, f"{table.table_arn}/index/GSI1", f"{table.table_arn}/index/GSI2"]
        settings = {
            "WEBHOOK_KEYS_KEY_ID": self.signing_keys.key_arn,
            "WEBHOOK_TIME_SCALE": repr(float(time_scale)),
            # Receivers are checked by the SSRF guard at creation and at every connection.
            "UPSTREAM_ALLOW_CIDRS": ",".join(upstream_allow_cidrs),
        }
        if rotation_grace_seconds is not None:
            settings["WEBHOOK_ROTATION_GRACE_S"] = str(rotation_grace_seconds)
        if disable_after_seconds is not None:
            settings["WEBHOOK_DISABLE_AFTER_S"] = str(disable_after_seconds)
        for function in (api, worker):
            for name, value in settings.items():
                function.add_environment(name, value)

        # The API: endpoints, deliveries and attempts, audit events (in its transactions).
        api.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:Query", *TRANSACTION_ACTIONS],
                resources=indexes,
            )
        )
        data.grant_table_key(api, write=True)
        api.add_to_role_policy(
            iam.PolicyStatement(actions=["kms:Encrypt", "kms:Decrypt"], resources=[self.signing_keys.key_arn])
        )
        api.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queues.queue.queue_arn]))
        api.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:ReceiveMessage", "sqs:DeleteMessage"], resources=[queues.dlq.queue_arn])
        )

        # The fan-out: its stream (CDK grants the stream reads), endpoints, new deliveries.
        fanout.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=100,
                max_batching_window=Duration.seconds(0),
                bisect_batch_on_error=True,
                retry_attempts=FANOUT_RETRIES,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(queues.fanout_dlq),
                filters=[lambda_.FilterCriteria.filter(EVENT_FILTER)],
            )
        )
        # A transaction is authorized by the kinds of its items; the role grants the four kinds.
        fanout.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:Query", *TRANSACTION_ACTIONS], resources=indexes)
        )
        data.grant_table_key(fanout, write=True)
        fanout.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queues.queue.queue_arn]))

        # The worker: the queue (CDK grants consuming it), deliveries and attempts, endpoint
        # health, published events; abandoned deliveries to the DLQ.
        worker.add_event_source(
            sources.SqsEventSource(
                queues.queue,
                batch_size=10,
                max_batching_window=Duration.seconds(0),
                report_batch_item_failures=True,
            )
        )
        worker.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:GetItem", *TRANSACTION_ACTIONS], resources=[table.table_arn])
        )
        data.grant_table_key(worker, write=True)
        worker.add_to_role_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[self.signing_keys.key_arn]))
        # Endpoints' own rate limits: a bucket per endpoint in the rate-limit table.
        for function in (api, worker):
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[data.rate_limit_table.table_arn])
            )
        worker.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queues.queue.queue_arn, queues.dlq.queue_arn])
        )


def event_filter_pattern() -> str:
    """The fan-out mapping's filter as Lambda stores it (the local runtime reads the same)."""
    return json.dumps(EVENT_FILTER)
