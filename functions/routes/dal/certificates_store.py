"""Client certificates in DynamoDB: `CERT#<sha256>`/`CERT` (what the mTLS authorizer reads with
one GetItem), the client's certificates on GSI1 (`CLIENT#<id>#CERTS`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from functions.routes.dal.certificate_reader import CertificateReader, certificate_from_item, certificate_key
from functions.routes.logic.certificates import Certificate, DuplicateCertificate
from functions.routes.logic.clients import ConcurrentChange
from gateway_core.audit import Actor, audit_put

_serializer = TypeSerializer()


def _item(certificate: Certificate) -> dict[str, Any]:
    item = {k: _serializer.serialize(v) for k, v in asdict(certificate).items()}
    item.update(certificate_key(certificate.fingerprint))
    item["GSI1PK"] = {"S": f"CLIENT#{certificate.client_id}#CERTS"}
    item["GSI1SK"] = {"S": f"{certificate.created_at}#{certificate.fingerprint}"}
    return item


class DynamoCertificateStore(CertificateReader):
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

    def list_for_client(self, client_id: str) -> list[Certificate]:
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"CLIENT#{client_id}#CERTS"}},
            ScanIndexForward=False,
        )
        return [certificate_from_item(item) for page in pages for item in page.get("Items", [])]

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
