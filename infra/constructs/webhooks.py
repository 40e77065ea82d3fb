"""Webhook delivery queue and its dead-letter queue, both KMS-encrypted and TLS-only.

The webhooks issue attaches the delivery worker to the queue; the redrive policy is fixed here:
after `MAX_RECEIVE_COUNT` failed receives a message moves to the DLQ, which alarms.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

MAX_RECEIVE_COUNT = 5


class WebhookQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.dlq = sqs.Queue(
            self,
            "WebhookDlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal_policy,
        )
        self.queue = sqs.Queue(
            self,
            "WebhookQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            # Six times the worker's timeout, as AWS advises for Lambda event sources.
            visibility_timeout=Duration.minutes(6),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT),
            removal_policy=removal_policy,
        )
