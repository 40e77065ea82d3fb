"""A registered client certificate (`CERT#<sha256 hex>`) as both certificate checks read it: the
mTLS authorizer for the certificate presented, the JWT authorizer for the one a token is bound to.
One strongly consistent GetItem, never cached, so a revocation applies to the next decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.authorizer.client_state import parse_time
from functions.authorizer.core import Denied

_PROJECTION = "client_id, #s, not_before, not_after"


def read_certificate(dynamodb: Any, table_name: str, fingerprint: str) -> dict[str, Any] | None:
    return dynamodb.get_item(
        TableName=table_name,
        Key={"PK": {"S": f"CERT#{fingerprint}"}, "SK": {"S": "CERT"}},
        ProjectionExpression=_PROJECTION,
        ExpressionAttributeNames={"#s": "status"},
        ConsistentRead=True,  # a revocation just written must not read as active
    ).get("Item")


def in_force_until(item: dict[str, Any], now: datetime) -> datetime:
    """When the certificate's validity ends; refuses (401) a revoked one or one outside its validity."""
    if item.get("status", {}).get("S") != "active":
        raise Denied("certificate_revoked")
    if parse_time(item["not_before"]["S"]) > now:
        raise Denied("certificate_not_yet_valid")
    end = parse_time(item["not_after"]["S"])
    if end <= now:
        raise Denied("certificate_expired")
    return end
