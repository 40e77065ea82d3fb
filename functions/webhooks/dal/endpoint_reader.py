"""Reading one webhook endpoint by id (the worker, before every attempt; the API)."""

from __future__ import annotations

from typing import Any

from functions.webhooks.dal.endpoint_items import endpoint_key, from_item
from functions.webhooks.logic.model import Endpoint


class DynamoEndpointReader:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def get(self, endpoint_id: str) -> Endpoint | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=endpoint_key(endpoint_id), ConsistentRead=True).get(
            "Item"
        )
        return from_item(item) if item else None
