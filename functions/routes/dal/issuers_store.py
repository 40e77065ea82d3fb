"""External issuers in DynamoDB: `ISSUER#<id>`/`ISSUER` (what the JWT authorizer reads with one
GetItem: functions/authorizer/issuers.py), listed on GSI1 (`ISSUERS`, `<created_at>#<id>`). Each
change is one transaction with its audit event, conditioned on the version read."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from functions.routes.logic.clients import ConcurrentChange
from functions.routes.logic.issuers import DuplicateIssuer, ExternalIssuer
from gateway_core.audit import Actor, audit_put
from gateway_core.issuer_keys import issuer_key
from gateway_core.pagination import gsi1_page
from gateway_core.transactions import at_version

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()
_FIELDS = tuple(ExternalIssuer.__dataclass_fields__)


def _item(issuer: ExternalIssuer) -> dict[str, Any]:
    item = {k: _serializer.serialize(v) for k, v in asdict(issuer).items()}
    item.update(issuer_key(issuer.issuer_id))
    item["GSI1PK"] = {"S": "ISSUERS"}
    item["GSI1SK"] = {"S": f"{issuer.created_at}#{issuer.issuer_id}"}
    return item


def _issuer(item: dict[str, Any]) -> ExternalIssuer:
    data = {k: _deserializer.deserialize(item[k]) for k in _FIELDS if k in item}
    for field in ("audiences", "algorithms", "allowed_scopes"):
        data[field] = list(data[field])
    data["version"] = int(data.get("version") or 1)  # stored before issuers carried one: 1
    return ExternalIssuer(**data)


class DynamoIssuerStore:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def _audit(
        self, actor: Actor, action: str, before: ExternalIssuer | None, after: ExternalIssuer | None
    ) -> dict[str, Any]:
        subject = after or before
        assert subject is not None
        target = f"issuer/{subject.issuer_id}"
        return audit_put(self.table, actor=actor, action=action, target=target, before=before, after=after)

    def _write(self, items: list[dict[str, Any]], on_conflict: Exception) -> None:
        """`on_conflict` only when the issuer item's own condition failed (item 0); any other
        cancellation (throttling, a concurrent transaction) is not the caller's doing."""
        try:
            self.dynamodb.transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
            if error.response["Error"]["Code"] == "TransactionCanceledException" and reasons[:1] == [
                "ConditionalCheckFailed"
            ]:
                raise on_conflict from error
            raise

    def create(self, issuer: ExternalIssuer, actor: Actor) -> None:
        put = {"TableName": self.table, "Item": _item(issuer), "ConditionExpression": "attribute_not_exists(PK)"}
        self._write([{"Put": put}, self._audit(actor, "issuer.register", None, issuer)], DuplicateIssuer(issuer.issuer))

    def get(self, identifier: str) -> ExternalIssuer | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=issuer_key(identifier), ConsistentRead=True).get("Item")
        return _issuer(item) if item else None

    def list(self, limit: int, cursor: str | None) -> tuple[list[ExternalIssuer], str | None]:
        items, next_cursor = gsi1_page(self.dynamodb, self.table, "ISSUERS", limit, cursor)
        return [_issuer(i) for i in items], next_cursor

    def _versioned(self, version: int) -> dict[str, Any]:
        return at_version(version)

    def replace(self, before: ExternalIssuer, after: ExternalIssuer, actor: Actor) -> None:
        put = {"TableName": self.table, "Item": _item(after), **self._versioned(before.version)}
        self._write(
            [{"Put": put}, self._audit(actor, "issuer.update", before, after)], ConcurrentChange(after.issuer_id)
        )

    def delete(self, issuer: ExternalIssuer, actor: Actor) -> None:
        delete = {"TableName": self.table, "Key": issuer_key(issuer.issuer_id), **self._versioned(issuer.version)}
        self._write(
            [{"Delete": delete}, self._audit(actor, "issuer.delete", issuer, None)], ConcurrentChange(issuer.issuer_id)
        )
