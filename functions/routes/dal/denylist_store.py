"""The global IP denylist item (`CONFIG`/`IP_DENYLIST`), read by the authorizer
(functions/authorizer/denylist.py) and written here with its audit event in one transaction."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from functions.routes.logic.clients import ConcurrentChange
from gateway_core.audit import Actor, audit_item
from gateway_core.clock import parse_iso

KEY = {"PK": {"S": "CONFIG"}, "SK": {"S": "IP_DENYLIST"}}


class DynamoDenylistStore:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def get(self) -> dict[str, Any]:
        item = self.dynamodb.get_item(TableName=self.table, Key=KEY, ConsistentRead=True).get("Item")
        if not item:
            return {"cidrs": [], "updated_at": None, "version": 0}
        data = {k: TypeDeserializer().deserialize(item[k]) for k in ("cidrs", "updated_at", "version") if k in item}
        return {
            "cidrs": list(data.get("cidrs", [])),
            "updated_at": data.get("updated_at"),
            "version": int(data.get("version", 0)),
        }

    def replace(self, before: dict[str, Any], after: dict[str, Any], actor: Actor) -> None:
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": {
                **KEY,
                "cidrs": {"L": [{"S": c} for c in after["cidrs"]]},
                "updated_at": {"S": after["updated_at"]},
                "version": {"N": str(after["version"])},
            },
            # Version 0: never written, or written before the list carried a version.
            "ConditionExpression": "attribute_not_exists(version)" if before["version"] == 0 else "version = :v",
        }
        if before["version"]:
            put["ExpressionAttributeValues"] = {":v": {"N": str(before["version"])}}
        audit = audit_item(
            actor=actor,
            action="ip_denylist.update",
            target="config/ip-denylist",
            at=parse_iso(after["updated_at"]),
            before=before,
            after=after,
        )
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[{"Put": put}, {"Put": {"TableName": self.table, "Item": audit}}]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                raise ConcurrentChange("ip-denylist") from error
            raise
