"""Entry point of the webhook fan-out function: the data table's stream, filtered to new items
that carry an event (gateway_core.events), becomes delivery records and queue messages.

Partial batch failures through powertools' batch utility: a record whose fan-out failed is
reported, the stream retries from it (earlier records are not redone), and a record that keeps
failing goes to the DLQ after the mapping's retries. A second pass over an event creates nothing
twice (logic/fanout.py)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.webhooks.dal.delivery_records import DynamoDeliveryRecords
from functions.webhooks.dal.endpoint_listing import DynamoEndpointListing
from functions.webhooks.dal.fanout_queue import SqsFanoutQueue
from functions.webhooks.logic.fanout import CachedEndpoints, PublishedEvent, fan_out
from gateway_core import aws
from gateway_core.clock import iso, utc_now
from gateway_core.logs import service_logger
from gateway_core.settings import settings

logger = service_logger()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@lru_cache(maxsize=1)
def _adapters() -> tuple[DynamoEndpointListing, DynamoDeliveryRecords, SqsFanoutQueue]:
    """Built at the first event, once per container (clients are the slow part of a cold start)."""
    dynamodb, table = aws.client("dynamodb"), settings().table_name
    return (
        DynamoEndpointListing(dynamodb, table),
        DynamoDeliveryRecords(dynamodb, table),
        SqsFanoutQueue(aws.client("sqs"), settings().webhook_queue_url),
    )


def _load_endpoints() -> list[Any]:
    return _adapters()[0].load_all()


_endpoints = CachedEndpoints(_load_endpoints)


def event_of(image: dict[str, Any]) -> PublishedEvent:
    """The event an item's new image carries (low-level attribute values)."""
    return PublishedEvent(
        event_id=image["message_id"]["S"],
        event_type=image["event_type"]["S"],
        occurred_at=image["occurred_at"]["S"],
        data=json.loads(image["event_data"]["S"]),
        client_id=image.get("event_client", {}).get("S"),
        private=bool(image.get("event_private", {}).get("BOOL", False)),
    )


class _Batch:
    """Whether a record of this invocation's batch failed: every later one is reported failed
    too, so the stream retries them after it, in order (an ordered endpoint's sequence numbers
    follow the stream's order; powertools would otherwise go on with the next records)."""

    failed = False


class EarlierRecordFailed(Exception):
    pass


def record_handler(record: DynamoDBRecord) -> None:
    if _Batch.failed:
        raise EarlierRecordFailed("an earlier event of this batch failed; retried after it, in order")
    try:
        _fan_out(record)
    except Exception:
        _Batch.failed = True
        raise


def _fan_out(record: DynamoDBRecord) -> None:
    image = record.raw_event["dynamodb"]["NewImage"]
    try:
        event = event_of(image)
    except (KeyError, ValueError) as error:
        # Not an event we wrote (the filter lets only items with `event_data` through): retrying
        # would not make it one, and it must not hold up the records behind it.
        logger.error("unreadable event item skipped", extra={"error": repr(error), "keys": str(image.get("PK"))})
        return
    queued = fan_out(
        event,
        endpoints=_endpoints,
        records=_adapters()[1],
        queue=_adapters()[2],
        now=iso(utc_now()),
    )
    logger.info("fanned out", extra={"event_id": event.event_id, "event_type": event.event_type, "queued": len(queued)})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _endpoints.invalidate()  # one listing per batch
    _Batch.failed = False
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
