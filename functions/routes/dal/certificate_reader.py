"""A client certificate read by fingerprint (`CERT#<sha256>`/`CERT`), and how its item reads back.

Apart from the certificate writes (certificates_store.py) for the same reason as client_reader.py:
the OAuth2 token endpoint binds tokens to registered certificates with this one read.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from functions.routes.logic.certificates import Certificate

_deserializer = TypeDeserializer()
_FIELDS = tuple(Certificate.__dataclass_fields__)


def certificate_key(fingerprint: str) -> dict[str, Any]:
    return {"PK": {"S": f"CERT#{fingerprint}"}, "SK": {"S": "CERT"}}


def certificate_from_item(item: dict[str, Any]) -> Certificate:
    data: dict[str, Any] = {k: _deserializer.deserialize(item[k]) if k in item else None for k in _FIELDS}
    return Certificate(**data)


class CertificateReader:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def get(self, fingerprint: str) -> Certificate | None:
        key = certificate_key(fingerprint)
        item = self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return certificate_from_item(item) if item else None
