"""The API's reads of deliveries: an endpoint's list (filters, time range, pages) and a
delivery's attempts."""

from __future__ import annotations

from typing import Any

from functions.webhooks.dal.delivery_items import attempt_from, delivery_from
from functions.webhooks.logic.model import Attempt, Delivery
from gateway_core.errors import BadRequest
from gateway_core.pagination import decode_cursor, encode_cursor


class DynamoDeliveryReads:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def list_for_endpoint(
        self,
        endpoint_id: str,
        *,
        limit: int,
        cursor: str | None,
        status: str | None = None,
        event_type: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> tuple[list[Delivery], str | None]:
        """Newest first; `since`/`until` bound the creation time (ISO), the others filter."""
        partition = f"WEBHOOK#{endpoint_id}#DELIVERIES"
        values: dict[str, Any] = {":pk": {"S": partition}}
        condition = "GSI1PK = :pk"
        # GSI1SK is "<created>#<id>": `until` covers every id of its last millisecond. A bound
        # left open is left out (DynamoDB refuses an empty string as a key value).
        if since and until:
            if since > until + "\uffff":
                return [], None  # an empty range (DynamoDB refuses a BETWEEN whose bounds are reversed)
            condition += " AND GSI1SK BETWEEN :lo AND :hi"
        elif since:
            condition += " AND GSI1SK >= :lo"
        elif until:
            condition += " AND GSI1SK <= :hi"
        if since:
            values[":lo"] = {"S": since}
        if until:
            values[":hi"] = {"S": until + "\uffff"}
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        filters = []
        names: dict[str, str] = {}
        if status:
            filters.append("#status = :status")
            names["#status"] = "status"
            values[":status"] = {"S": status}
        if event_type:
            filters.append("event_type = :event_type")
            values[":event_type"] = {"S": event_type}
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        if names:
            request["ExpressionAttributeNames"] = names
        if cursor:
            start = decode_cursor(cursor)
            if start.get("GSI1PK", {}).get("S") != partition:
                raise BadRequest("The cursor is not one this list issued.", code="invalid_cursor")
            request["ExclusiveStartKey"] = start
        page = self.dynamodb.query(**request)
        next_key = page.get("LastEvaluatedKey")
        return [delivery_from(i) for i in page.get("Items", [])], encode_cursor(next_key) if next_key else None

    def unsettled_failures_since(self, endpoint_id: str, since: str) -> list[Delivery]:
        """Every failed or abandoned delivery of the endpoint created since `since` (recover)."""
        found: list[Delivery] = []
        cursor: str | None = None
        while True:
            page, cursor = self.list_for_endpoint(endpoint_id, limit=200, cursor=cursor, since=since)
            found.extend(d for d in page if d.status in ("failed", "abandoned"))
            if cursor is None:
                return found

    def attempts(self, delivery_id: str, limit: int, cursor: str | None) -> tuple[list[Attempt], str | None]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :attempt)",
            "ExpressionAttributeValues": {":pk": {"S": f"DELIVERY#{delivery_id}"}, ":attempt": {"S": "ATTEMPT#"}},
            "Limit": limit,
            "ConsistentRead": True,
        }
        if cursor:
            start = decode_cursor(cursor)
            if start.get("PK", {}).get("S") != f"DELIVERY#{delivery_id}":
                raise BadRequest("The cursor is not one this list issued.", code="invalid_cursor")
            request["ExclusiveStartKey"] = start
        page = self.dynamodb.query(**request)
        next_key = page.get("LastEvaluatedKey")
        return [attempt_from(i) for i in page.get("Items", [])], encode_cursor(next_key) if next_key else None
