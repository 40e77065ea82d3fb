"""Client certificates in DynamoDB: `CERT#<sha256>`/`CERT` (what the mTLS authorizer reads with
one GetItem), the client's certificates on GSI1 (`CLIENT#<id>#CERTS`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from functions.routes.logic.certificates import Certificate, DuplicateCertificate
from functions.routes.logic.clients import ConcurrentChange
from gateway_core.audit import Actor, audit_put

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()
_FIELDS = tuple(Certificate.__dataclass_fields__)


def _key(fingerprint: str) -> dict[str, Any]:
    return {"PK": {"S": f"CERT#{fingerprint}"}, "SK": {"S": "CERT"}}


def _item(certificate: Certificate) -> dict[str, Any]:
    item = {k: _serializer.serialize(v) for k, v in asdict(certificate).items()}
    item.update(_key(certificate.fingerprint))
    item["GSI1PK"] = {"S": f"CLIENT#{certificate.client_id}#CERTS"}
    item["GSI1SK"] = {"S": f"{certificate.created_at}#{certificate.fingerprint}"}
    return item


def _certificate(item: dict[str, Any]) -> Certificate:
    data: dict[str, Any] = {k: _deserializer.deserialize(item[k]) if k in item else None for k in _FIELDS}
    return Certificate(**data)


class DynamoCertificateStore:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def _audit(self, actor: Actor, action: str, before: Certificate | None, after: Certificate) -> dict[str, Any]:
        target = f"certificate/{after.fingerprint}"
        return audit_put(self.table, actor=actor, action=action, target=target, before=before, after=after)

    def create(self, certificate: Certificate, actor: Actor) -> None:
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _item(certificate),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    self._audit(actor, "certificate.register", None, certificate),
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                raise DuplicateCertificate(certificate.fingerprint) from error
            raise

    def get(self, fingerprint: str) -> Certificate | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=_key(fingerprint), ConsistentRead=True).get("Item")
        return _certificate(item) if item else None

    def list_for_client(self, client_id: str) -> list[Certificate]:
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"CLIENT#{client_id}#CERTS"}},
            ScanIndexForward=False,
        )
        return [_certificate(item) for page in pages for item in page.get("Items", [])]

    def replace(self, before: Certificate, after: Certificate, action: str, actor: Actor) -> None:
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _item(after),
                            "ConditionExpression": "#s = :s",
                            "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {":s": {"S": before.status}},
                        }
                    },
                    self._audit(actor, action, before, after),
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                raise ConcurrentChange(after.fingerprint) from error
            raise
