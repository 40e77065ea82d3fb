"""Entry point of the webhook delivery worker: the delivery queue's messages, one attempt each
(logic/delivery.py). A message whose processing failed on our side (DynamoDB, KMS, SQS) is
reported as a batch item failure and comes back after the queue's visibility timeout; a
receiver's failure is not ours: it is recorded and scheduled, and the message succeeds."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.webhooks import delivery_wiring
from gateway_core.logs import service_logger

logger = service_logger()
# The event source mapping's batch size (infra/constructs/webhooks.py).
BATCH_SIZE = 10
# A batch's messages are delivered side by side (each attempt waits on its receiver, up to its
# timeout): powertools' async processor gathers them, each attempt runs in a worker thread.
processor = AsyncBatchProcessor(event_type=EventType.SQS)


def deliver(record: SQSRecord) -> None:
    try:
        message = json.loads(record.body)
        message["delivery_id"]
    except (ValueError, KeyError, TypeError):
        # Not a message we sent: nothing to deliver, and retrying it would not change that.
        logger.error("unreadable delivery message dropped", extra={"message_id": record.message_id})
        return
    effects = delivery_wiring.engine().process(message)
    logger.info(
        "delivery message",
        extra={
            "delivery_id": message["delivery_id"],
            "outcome": effects.outcome,
            "status_code": effects.attempt.status_code if effects.attempt else None,
        },
    )


# One thread per message of a full batch (asyncio's default pool is CPUs + 4: 6 at 512 MB, so a
# batch of slow receivers would take two rounds and outrun the function's timeout).
_pool = ThreadPoolExecutor(max_workers=BATCH_SIZE, thread_name_prefix="delivery")


async def record_handler(record: SQSRecord) -> None:
    await asyncio.get_running_loop().run_in_executor(_pool, deliver, record)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        async_process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
