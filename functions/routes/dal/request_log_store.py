"""Request logs: `REQLOG#<client>#<yyyy-mm-dd>`/`<at>#<request id>`, by request id on GSI1
(`REQ#<request id>`), expiring after 30 days (TTL). One PutItem per proxied request; the data
plane only writes them (its role may not read them back)."""

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
        # The key first, then the record (whose fields never name key attributes).
        item = {
            "PK": {"S": f"REQLOG#{record.client_id}#{record.at[:10]}"},
            "SK": {"S": f"{record.at}#{record.request_id}"},
            "GSI1PK": {"S": f"REQ#{record.request_id}"},
            "GSI1SK": {"S": record.at},
            "ttl": {"N": str(int(time.time()) + RETENTION_SECONDS)},
        }
        for name, value in record.item_fields().items():
            item.setdefault(name, _serializer.serialize(value))
        self.dynamodb.put_item(TableName=self.table, Item=item)
