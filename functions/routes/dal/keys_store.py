"""API keys in DynamoDB: the lookup item at `APIKEY#<sha256>` (the authorizer's one GetItem), a
pointer `KEY#<id>` to find it by id, the client's keys on GSI1, every key on GSI2 (`GSI2PK=KEYS`). Changes are transactions with
their audit event and a condition on the version read."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from functions.routes.logic.catalog import RateLimits
from functions.routes.logic.clients import Client, ConcurrentChange
from functions.routes.logic.keys import ApiKey
from gateway_core.audit import Actor, audit_put
from gateway_core.credentials import ALL_KEYS_PARTITION, api_key_items, key_lookup_key, pointer_key
from gateway_core.pagination import gsi1_page
from gateway_core.transactions import at_version

_deserializer = TypeDeserializer()
_FIELDS = tuple(ApiKey.__dataclass_fields__)


def _key(item: dict[str, Any]) -> ApiKey:
    data: dict[str, Any] = {k: _deserializer.deserialize(item[k]) if k in item else None for k in _FIELDS}
    limits = data.get("rate_limits")
    data["rate_limits"] = RateLimits(**{k: int(v) for k, v in limits.items()}) if limits else None
    data["version"] = int(data["version"] or 1)  # stored before keys carried one: 1
    data["scopes"] = list(data["scopes"] or [])
    data["ip_allowlist"] = list(data["ip_allowlist"] or [])
    if data["client_allowed_scopes"] is not None:
        data["client_allowed_scopes"] = list(data["client_allowed_scopes"])
    data["client_status"] = data["client_status"] or "active"
    return ApiKey(**data)


class DynamoKeyStore:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def _audit(self, actor: Actor, action: str, before: ApiKey | None, after: ApiKey | None) -> dict[str, Any]:
        subject = after or before
        assert subject is not None
        return audit_put(
            self.table, actor=actor, action=action, target=f"key/{subject.key_id}", before=before, after=after
        )

    def _puts_for_new(self, key: ApiKey) -> list[dict[str, Any]]:
        lookup, pointer = api_key_items(asdict(key))
        condition = "attribute_not_exists(PK)"
        return [
            {"Put": {"TableName": self.table, "Item": lookup, "ConditionExpression": condition}},
            {"Put": {"TableName": self.table, "Item": pointer, "ConditionExpression": condition}},
        ]

    def _put_versioned(self, before: ApiKey, after: ApiKey) -> dict[str, Any]:
        lookup, _ = api_key_items(asdict(after))
        return {
            "Put": {
                "TableName": self.table,
                "Item": lookup,
                **at_version(before.version),
            }
        }

    def _write(self, items: list[dict[str, Any]], key_id: str) -> None:
        try:
            self.dynamodb.transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if (
                error.response["Error"]["Code"] == "TransactionCanceledException"
                and "ConditionalCheckFailed" in reasons
            ):
                raise ConcurrentChange(key_id) from error
            raise

    def create(self, key: ApiKey, actor: Actor, action: str = "key.create") -> None:
        """Never overwrites: a key id or key hash already stored fails the whole transaction
        (ConcurrentChange). `action` names the audit event (the admin CLI's bootstrap differs)."""
        self._write([*self._puts_for_new(key), self._audit(actor, action, None, key)], key.key_id)

    def get(self, key_id: str) -> ApiKey | None:
        pointer = self.dynamodb.get_item(TableName=self.table, Key=pointer_key(key_id), ConsistentRead=True).get("Item")
        if pointer is None:
            return None
        return self.get_by_hash(pointer["key_hash"]["S"])

    def get_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key a presented secret hashes to (the item the authorizer reads)."""
        lookup = key_lookup_key(key_hash)
        item = self.dynamodb.get_item(TableName=self.table, Key=lookup, ConsistentRead=True).get("Item")
        return _key(item) if item else None

    def list_for_client(self, client_id: str, limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]:
        items, next_cursor = gsi1_page(self.dynamodb, self.table, f"CLIENT#{client_id}#KEYS", limit, cursor)
        return [_key(i) for i in items], next_cursor

    def list_all(self, limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]:
        items, next_cursor = gsi1_page(self.dynamodb, self.table, ALL_KEYS_PARTITION, limit, cursor, index="GSI2")
        return [_key(i) for i in items], next_cursor

    def replace(self, before: ApiKey, after: ApiKey, action: str, actor: Actor) -> None:
        self._write([self._put_versioned(before, after), self._audit(actor, action, before, after)], after.key_id)

    def rotate(self, before: ApiKey, after: ApiKey, new_key: ApiKey, actor: Actor) -> None:
        self._write(
            [
                self._put_versioned(before, after),
                *self._puts_for_new(new_key),
                self._audit(actor, "key.rotate", before, after),
                self._audit(actor, "key.create", None, new_key),
            ],
            before.key_id,
        )

    def sync_client(self, client: Client, status: str | None = None) -> int:
        changed = 0
        cursor: str | None = None
        while True:
            page, cursor = self.list_for_client(client.client_id, 100, cursor)
            for key in page:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=key_lookup_key(key.key_hash),
                    UpdateExpression=(
                        "SET client_status = :s, client_expires_at = :e, ip_allowlist = :ips, tier = :t,"
                        " client_allowed_scopes = :scopes, GSI2PK = :all, GSI2SK = :created,"
                        # A new version: a change of the key based on an earlier read (its If-Match,
                        # or a rotation) must not write the client's old state back.
                        " version = if_not_exists(version, :one) + :one"
                    ),
                    ExpressionAttributeValues={
                        ":s": {"S": status or client.status},
                        ":e": {"S": client.expires_at} if client.expires_at else {"NULL": True},
                        ":ips": {"L": [{"S": c} for c in client.ip_allowlist]},
                        ":t": {"S": client.tier},
                        ":scopes": {"L": [{"S": s} for s in client.allowed_scopes]},
                        # Backfills the listing across clients for keys stored before it.
                        ":all": {"S": ALL_KEYS_PARTITION},
                        ":created": {"S": f"{key.created_at}#{key.key_id}"},
                        ":one": {"N": "1"},
                    },
                    ConditionExpression="attribute_exists(PK)",
                )
                changed += 1
            if cursor is None:
                return changed
