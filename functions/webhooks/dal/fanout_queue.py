"""The fan-out's sends: new deliveries, due now, ten to a call."""

from __future__ import annotations

from typing import Any

from functions.webhooks.dal.queue_messages import message


class SqsFanoutQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def enqueue(self, delivery_ids: list[str]) -> None:
        for start in range(0, len(delivery_ids), 10):
            chunk = delivery_ids[start : start + 10]
            answer = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "MessageBody": message(d, 0)} for i, d in enumerate(chunk)],
            )
            if answer.get("Failed"):
                # Raised so the fan-out's batch is retried: the records exist, and a second pass
                # queues the unsent ones again (duplicates are fenced by the attempt count).
                raise RuntimeError(f"SQS refused {len(answer['Failed'])} delivery messages")
