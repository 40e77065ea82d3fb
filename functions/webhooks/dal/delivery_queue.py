"""The delivery queue: one message per attempt to make, delayed until it is due.

SQS delays a message at most 15 minutes, so a retry due later (the schedule reaches 10 hours)
hops: the worker receiving it early sends it on with the rest of the delay (logic/delivery.py),
one receive and one send per 15 minutes of waiting. Abandoned deliveries go to the DLQ, whence
`POST /api/v1/webhooks/dlq/redrive` brings them back."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from functions.webhooks.dal.queue_messages import message
from functions.webhooks.logic.model import Delivery

SQS_MAX_DELAY_S = 900


class SqsDeliveryQueue:
    def __init__(
        self, sqs: Any, queue_url: str | None = None, dlq_url: str | None = None, clock: Any = time.time
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url or os.environ.get("WEBHOOK_QUEUE_URL", "")
        self.dlq_url = dlq_url or os.environ.get("WEBHOOK_DLQ_URL", "")
        self.clock = clock

    def schedule(self, delivery_id: str, attempts: int, not_before: float, waits: int = 0) -> None:
        delay = min(max(math.ceil(not_before - self.clock()), 0), SQS_MAX_DELAY_S)
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=message(delivery_id, attempts, not_before if delay else 0.0, waits),
            DelaySeconds=delay,
        )

    def dead_letter(self, delivery: Delivery) -> None:
        self.sqs.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=json.dumps(
                {
                    "delivery_id": delivery.delivery_id,
                    "attempts": delivery.attempts,
                    "endpoint_id": delivery.endpoint_id,
                    "event_id": delivery.event_id,
                    "abandoned": True,
                },
                separators=(",", ":"),
            ),
        )
