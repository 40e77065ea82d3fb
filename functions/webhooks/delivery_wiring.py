"""The delivery engine and its adapters, built once per container (the worker's, and the API's
for test sends)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from functions.webhooks.dal.deliveries_store import DynamoDeliveryStore
from functions.webhooks.dal.delivery_queue import SqsDeliveryQueue
from functions.webhooks.dal.endpoint_health import DynamoEndpointHealth
from functions.webhooks.dal.endpoint_throttle import DynamoEndpointThrottle
from functions.webhooks.dal.key_vault import KmsKeyVault
from functions.webhooks.http_sender import GuardedSender
from functions.webhooks.logic.delivery import DeliveryEngine
from gateway_core import aws
from gateway_core.publisher import publish
from gateway_core.settings import settings


class TablePublisher:
    """Publishes through the shared publisher (gateway_core.publisher): one item write."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def publish(
        self, event_type: str, data: dict[str, Any], client_id: str | None = None, private: bool = False
    ) -> str:
        return publish(self.dynamodb, self.table, event_type, data, client_id=client_id, private=private)


@lru_cache(maxsize=1)
def queue() -> SqsDeliveryQueue:
    return SqsDeliveryQueue(aws.client("sqs"), settings().webhook_queue_url, settings().webhook_dlq_url)


@lru_cache(maxsize=1)
def publisher() -> TablePublisher:
    return TablePublisher(aws.client("dynamodb"), settings().table_name)


@lru_cache(maxsize=1)
def engine() -> DeliveryEngine:
    dynamodb, table = aws.client("dynamodb"), settings().table_name
    return DeliveryEngine(
        deliveries=DynamoDeliveryStore(dynamodb, table),
        endpoints=DynamoEndpointHealth(dynamodb, table),
        queue=queue(),
        vault=KmsKeyVault(aws.client("kms")),
        sender=GuardedSender(),
        throttle=DynamoEndpointThrottle(dynamodb, settings().rate_limit_table_name),
    )
