"""Clients in DynamoDB. The only module that knows how a client is stored.

Keys (README, key design): the client at `CLIENT#<id>`/`CLIENT`; a name guard at
`CLIENTNAME#<name key>`/`CLIENTNAME` keeps names unique (logic/names.py); the listing index is
`GSI1PK=CLIENTS`, `GSI1SK=<created_at>#<id>`. Each change is one transaction with its audit event
and a condition on the version read, so concurrent admins cannot overwrite each other.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from functions.routes.dal.client_reader import ClientReader, client_from_item, client_key
from functions.routes.logic.clients import Client, ConcurrentChange, DuplicateName
from functions.routes.logic.names import name_key
from gateway_core.audit import Actor, audit_item
from gateway_core.clock import utc_now
from gateway_core.pagination import gsi1_page
from gateway_core.transactions import at_version

_serializer = TypeSerializer()


def _name_key(name: str) -> dict[str, Any]:
    return {"PK": {"S": f"CLIENTNAME#{name_key(name)}"}, "SK": {"S": "CLIENTNAME"}}


def _item(client: Client) -> dict[str, Any]:
    data = asdict(client)
    item = {k: _serializer.serialize(v) for k, v in data.items()}
    item.update(client_key(client.client_id))
    item["GSI1PK"] = {"S": "CLIENTS"}
    item["GSI1SK"] = {"S": f"{client.created_at}#{client.client_id}"}
    return item


def _reasons(error: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]


class DynamoClientStore(ClientReader):
    def _audit(
        self, actor: Actor, action: str, client_id: str, before: Client | None, after: Client | None
    ) -> dict[str, Any]:
        item = audit_item(
            actor=actor,
            action=action,
            target=f"client/{client_id}",
            at=utc_now(),
            before=before.public() if before else None,
            after=after.public() if after else None,
        )
        return {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}

    def create(self, client: Client, actor: Actor) -> None:
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _item(client),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {**_name_key(client.name), "client_id": {"S": client.client_id}},
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    self._audit(actor, "client.register", client.client_id, None, client),
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException" and _reasons(error)[1:2] == [
                "ConditionalCheckFailed"
            ]:
                raise DuplicateName(client.name) from error
            raise

    def list(self, status: str | None, limit: int, cursor: str | None) -> tuple[list[Client], str | None]:
        items, next_cursor = gsi1_page(self.dynamodb, self.table, "CLIENTS", limit, cursor, status=status)
        return [client_from_item(i) for i in items], next_cursor

    def replace(self, before: Client, after: Client, action: str, actor: Actor) -> None:
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _item(after),
                    **at_version(before.version),
                }
            }
        ]
        renamed = name_key(before.name) != name_key(after.name)
        if renamed:
            items.append({"Delete": {"TableName": self.table, "Key": _name_key(before.name)}})
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {**_name_key(after.name), "client_id": {"S": after.client_id}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        items.append(self._audit(actor, action, after.client_id, before, after))
        try:
            self.dynamodb.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = _reasons(error)
            if reasons[0] == "ConditionalCheckFailed":
                raise ConcurrentChange(after.client_id) from error
            if renamed and reasons[2] == "ConditionalCheckFailed":
                raise DuplicateName(after.name) from error
            raise

    def delete(self, client: Client, actor: Actor) -> None:
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": client_key(client.client_id),
                            **at_version(client.version),
                        }
                    },
                    {"Delete": {"TableName": self.table, "Key": _name_key(client.name)}},
                    self._audit(actor, "client.delete", client.client_id, client, None),
                ]
            )
        except ClientError as error:
            if (
                error.response["Error"]["Code"] == "TransactionCanceledException"
                and _reasons(error)[0] == "ConditionalCheckFailed"
            ):
                raise ConcurrentChange(client.client_id) from error
            raise
