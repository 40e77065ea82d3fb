"""The webhooks API's adapters, built once per container."""

from __future__ import annotations

from functools import lru_cache

from functions.webhooks.dal.deliveries_store import DynamoDeliveryStore
from functions.webhooks.dal.delivery_reads import DynamoDeliveryReads
from functions.webhooks.dal.delivery_records import DynamoDeliveryRecords
from functions.webhooks.dal.endpoints_store import DynamoEndpointStore
from functions.webhooks.dal.key_sealer import KmsKeySealer
from gateway_core import aws
from gateway_core.settings import settings


class DeliveryAdmin(DynamoDeliveryStore, DynamoDeliveryReads, DynamoDeliveryRecords):
    """What the API does with deliveries: read and list them, create a test one, reopen."""


@lru_cache(maxsize=1)
def endpoints() -> DynamoEndpointStore:
    return DynamoEndpointStore(aws.client("dynamodb"), settings().table_name)


@lru_cache(maxsize=1)
def deliveries() -> DeliveryAdmin:
    return DeliveryAdmin(aws.client("dynamodb"), settings().table_name)


@lru_cache(maxsize=1)
def sealer() -> KmsKeySealer:
    return KmsKeySealer(aws.client("kms"))
