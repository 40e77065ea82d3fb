"""Listing webhook endpoints: every one, newest first (GSI2 `WEBHOOKS`): the fan-out's listing and
the admins' list."""

from __future__ import annotations

from typing import Any

from functions.webhooks.dal.endpoint_items import ALL_PARTITION, from_item
from functions.webhooks.logic.model import Endpoint
from gateway_core.pagination import gsi1_page


class DynamoEndpointListing:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def list_all(self, limit: int, cursor: str | None) -> tuple[list[Endpoint], str | None]:
        items, next_cursor = gsi1_page(self.dynamodb, self.table, ALL_PARTITION, limit, cursor, index="GSI2")
        return [from_item(i) for i in items], next_cursor

    def load_all(self) -> list[Endpoint]:
        """Every endpoint (the fan-out's listing), all pages."""
        found: list[Endpoint] = []
        cursor: str | None = None
        while True:
            page, cursor = self.list_all(500, cursor)
            found.extend(page)
            if cursor is None:
                return found
