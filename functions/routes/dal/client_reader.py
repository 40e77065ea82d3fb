"""A client read by id (`CLIENT#<id>`/`CLIENT`), and how a client item reads back.

Apart from the registry's writes (clients_store.py) because the OAuth2 token endpoint needs this
one read of the registry: its function imports this module and not the store, so its role can
stay read-only (tests/infra checks each role against the calls its code makes).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from functions.routes.logic.catalog import RateLimits
from functions.routes.logic.clients import Client

_deserializer = TypeDeserializer()
_FIELDS = tuple(Client.__dataclass_fields__)


def client_key(client_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CLIENT#{client_id}"}, "SK": {"S": "CLIENT"}}


def client_from_item(item: dict[str, Any]) -> Client:
    data = {k: _deserializer.deserialize(item[k]) for k in _FIELDS if k in item}
    limits = data.get("rate_limits")
    data["rate_limits"] = RateLimits(**{k: int(v) for k, v in limits.items()}) if limits else None
    data["version"] = int(data.get("version") or 1)  # stored before clients carried one: 1
    if data.get("monthly_quota") is not None:
        data["monthly_quota"] = int(data["monthly_quota"])
    return Client(**data)


class ClientReader:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def get(self, client_id: str) -> Client | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=client_key(client_id), ConsistentRead=True).get("Item")
        return client_from_item(item) if item else None
