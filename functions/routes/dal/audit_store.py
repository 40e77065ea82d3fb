"""Reading audit events (they are written by the stores, inside each change's transaction)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from gateway_core.pagination import decode_cursor, encode_cursor

_deserializer = TypeDeserializer()
_FIELDS = ("event_id", "at", "actor", "actor_credential", "action", "target", "request_id", "before_hash", "after_hash")


class DynamoAuditReader:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def query(
        self,
        *,
        day: str | None,
        target: str | None,
        action: str | None,
        actor: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first, by target (GSI1) or by day (the table); action and actor filter within."""
        if target:
            request: dict[str, Any] = {
                "IndexName": "GSI1",
                "KeyConditionExpression": "GSI1PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"AUDIT#TARGET#{target}"}},
            }
        else:
            request = {
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"AUDIT#{day}"}},
            }
        filters = []
        names: dict[str, str] = {}
        for attribute, value in (("action", action), ("actor", actor)):
            if value:
                names[f"#{attribute}"] = attribute
                request["ExpressionAttributeValues"][f":{attribute}"] = {"S": value}
                filters.append(f"#{attribute} = :{attribute}")
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
            request["ExpressionAttributeNames"] = names
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(cursor)
        page = self.dynamodb.query(TableName=self.table, ScanIndexForward=False, Limit=limit, **request)
        items = [
            {k: _deserializer.deserialize(i[k]) if k in i else None for k in _FIELDS} for i in page.get("Items", [])
        ]
        next_key = page.get("LastEvaluatedKey")
        return items, encode_cursor(next_key) if next_key else None
