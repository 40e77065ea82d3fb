"""A gateway's upstream secrets in DynamoDB, encrypted with their own KMS key (the management side;
the data plane reads them with dal/secret_reader.py).

Item (README, key design): `SECRET#<gateway id>`/`<name>` with `version`, the KMS ciphertext
(`ciphertext`, bound to the gateway and the name by the encryption context) and the metadata
document (`doc`). Each change is one transaction with its audit event (hashes of the metadata,
never of the value), conditioned on the version read and on the gateway existing.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.routes.logic.clients import ConcurrentChange
from functions.routes.logic.secret_values import encryption_context
from functions.routes.logic.secrets import Secret
from gateway_core.audit import Actor, audit_put
from gateway_core.errors import DependencyUnavailable, NotFound
from gateway_core.transactions import transact_write

PARTITION = "SECRET#"


def secret_key(gateway_id: str, name: str) -> dict[str, Any]:
    return {"PK": {"S": f"{PARTITION}{gateway_id}"}, "SK": {"S": name}}


def secret_names(dynamodb: Any, table: str, gateway_id: str) -> set[str]:
    """The names of a gateway's secrets (strongly consistent: a check before a write)."""
    names: set[str] = set()
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"{PARTITION}{gateway_id}"}},
        "ProjectionExpression": "SK",
        "ConsistentRead": True,
    }
    while True:
        page = dynamodb.query(**request)
        names.update(i["SK"]["S"] for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return names
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class KmsSealer:
    """Encrypts with the secrets key (kms:Encrypt is all the management function may do with it)."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self.kms = kms
        self.key_id = key_id

    def seal(self, gateway_id: str, name: str, value: str) -> bytes:
        if not self.key_id:
            raise DependencyUnavailable("Upstream secrets are not configured on this deployment (no key).")
        try:
            sealed = self.kms.encrypt(
                KeyId=self.key_id,
                Plaintext=value.encode(),
                EncryptionContext=encryption_context(gateway_id, name),
            )
        except ClientError as error:
            raise DependencyUnavailable("The secret could not be encrypted; try again.") from error
        return bytes(sealed["CiphertextBlob"])


class DynamoSecretStore:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def gateway_exists(self, gateway_id: str) -> bool:
        key = {"PK": {"S": f"GATEWAY#{gateway_id}"}, "SK": {"S": "GATEWAY"}}
        found = self.dynamodb.get_item(TableName=self.table, Key=key, ProjectionExpression="PK", ConsistentRead=True)
        return "Item" in found

    def secret(self, gateway_id: str, name: str) -> Secret | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=secret_key(gateway_id, name), ProjectionExpression="doc", ConsistentRead=True
        ).get("Item")
        return Secret.model_validate_json(item["doc"]["S"]) if item else None

    def secrets(self, gateway_id: str) -> list[Secret]:
        found: list[Secret] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"{PARTITION}{gateway_id}"}},
            "ProjectionExpression": "doc",  # never the ciphertext: a list has no use for it
            "ConsistentRead": True,
        }
        while True:
            page = self.dynamodb.query(**request)
            found.extend(Secret.model_validate_json(i["doc"]["S"]) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _audit(self, actor: Actor, action: str, before: Secret | None, after: Secret | None) -> dict[str, Any]:
        subject = after or before
        assert subject is not None
        return audit_put(
            self.table,
            actor=actor,
            action=action,
            target=f"gateway/{subject.gateway_id}/secret/{subject.name}",
            before=before,
            after=after,
        )

    def _gateway_check(self, gateway_id: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self.table,
                "Key": {"PK": {"S": f"GATEWAY#{gateway_id}"}, "SK": {"S": "GATEWAY"}},
                "ConditionExpression": "attribute_exists(PK)",
            }
        }

    def _write(self, items: list[dict[str, Any]], conflicts: dict[int, Exception]) -> None:
        """`conflicts` maps the index of an item whose condition may fail to the domain error."""
        transact_write(self.dynamodb, items, conflicts)

    def put_secret(self, before: Secret | None, after: Secret, ciphertext: bytes, actor: Actor) -> None:
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": {
                **secret_key(after.gateway_id, after.name),
                "version": {"N": str(after.version)},
                "ciphertext": {"B": ciphertext},
                "doc": {"S": after.model_dump_json()},
            },
        }
        if before is None:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(before.version)}}
        self._write(
            [
                {"Put": put},
                self._gateway_check(after.gateway_id),
                self._audit(actor, "secret.create" if before is None else "secret.update", before, after),
            ],
            {
                0: ConcurrentChange(after.name),
                1: NotFound(f"No gateway {after.gateway_id}.", code="gateway_not_found"),
            },
        )

    def delete_secret(self, secret: Secret, actor: Actor) -> None:
        self._write(
            [
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": secret_key(secret.gateway_id, secret.name),
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": {":v": {"N": str(secret.version)}},
                    }
                },
                self._audit(actor, "secret.delete", secret, None),
            ],
            {0: ConcurrentChange(secret.name)},
        )
