"""Request logs: `REQLOG#<client>#<yyyy-mm-dd>`/`<at>#<request id>`, by request id on GSI1
(`REQ#<request id>`), expiring after 30 days (TTL). One PutItem per proxied request."""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from functions.routes.logic.request_log import RETENTION_SECONDS, RequestRecord

_serializer = TypeSerializer()


class RequestLogStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def put(self, record: RequestRecord) -> None:
        item = {k: _serializer.serialize(v) for k, v in record.item_fields().items()}
        item.update(
            {
                "PK": {"S": f"REQLOG#{record.client_id}#{record.at[:10]}"},
                "SK": {"S": f"{record.at}#{record.request_id}"},
                "GSI1PK": {"S": f"REQ#{record.request_id}"},
                "GSI1SK": {"S": record.at},
                "ttl": {"N": str(int(time.time()) + RETENTION_SECONDS)},
            }
        )
        self.dynamodb.put_item(TableName=self.table, Item=item)

    def by_request_id(self, request_id: str) -> dict[str, Any] | None:
        page = self.dynamodb.query(
            TableName=self.table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}},
            Limit=1,
        )
        items = page.get("Items", [])
        return items[0] if items else None
