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
        settled: bool = False,
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
        if settled:  # failed or abandoned only (recover)
            filters.append("#status IN (:failed, :abandoned)")
            names["#status"] = "status"
            values[":failed"], values[":abandoned"] = {"S": "failed"}, {"S": "abandoned"}
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        if names:
            request["ExpressionAttributeNames"] = names
        if cursor:
            start = decode_cursor(cursor)
            position = start.get("GSI1SK", {}).get("S", "")
            # DynamoDB refuses a start key outside the key condition's range (a cursor of the list
            # without `since`, reused with one): that is the caller's mistake, a 400.
            outside = (since and position < since) or (until and position > until + "\uffff")
            if start.get("GSI1PK", {}).get("S") != partition or outside:
                raise BadRequest("The cursor is not one this list issued.", code="invalid_cursor")
            request["ExclusiveStartKey"] = start
        page = self.dynamodb.query(**request)
        next_key = page.get("LastEvaluatedKey")
        return [delivery_from(i) for i in page.get("Items", [])], encode_cursor(next_key) if next_key else None

    def unsettled_failures_since(self, endpoint_id: str, since: str, at_most: int = 1000) -> list[Delivery]:
        """The failed or abandoned deliveries of the endpoint created since `since` (recover),
        newest first: at most `at_most`, from at most 20 pages (bounded work for one request;
        calling recover again takes what is left, the recovered ones being pending by then)."""
        found: list[Delivery] = []
        cursor: str | None = None
        for _ in range(20):
            page, cursor = self.list_for_endpoint(endpoint_id, limit=500, cursor=cursor, since=since, settled=True)
            found.extend(d for d in page if d.status in ("failed", "abandoned"))
            if cursor is None or len(found) >= at_most:
                break
        return found[:at_most]

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
            # a base-table query takes a base-table key as its start: exactly PK and SK
            if set(start) != {"PK", "SK"} or start["PK"]["S"] != f"DELIVERY#{delivery_id}":
                raise BadRequest("The cursor is not one this list issued.", code="invalid_cursor")
            request["ExclusiveStartKey"] = start
        page = self.dynamodb.query(**request)
        next_key = page.get("LastEvaluatedKey")
        return [attempt_from(i) for i in page.get("Items", [])], encode_cursor(next_key) if next_key else None
