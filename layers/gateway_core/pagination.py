"""Opaque list cursors: DynamoDB's LastEvaluatedKey, base64url-encoded, checked on the way back."""

from __future__ import annotations

import base64
import json
from typing import Any

from gateway_core.errors import BadRequest


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


_CURSOR_KEYS = (
    frozenset({"PK", "SK"}),
    frozenset({"PK", "SK", "GSI1PK", "GSI1SK"}),
    frozenset({"PK", "SK", "GSI2PK", "GSI2SK"}),
)


def decode_cursor(cursor: str) -> dict[str, Any]:
    """A cursor is a LastEvaluatedKey we issued: string key attributes of one of our key shapes.
    Anything else is a 400, never a start key handed to DynamoDB."""
    invalid = BadRequest("The cursor is not one this API issued.", code="invalid_cursor")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid from error
    if not isinstance(decoded, dict) or frozenset(decoded) not in _CURSOR_KEYS:
        raise invalid
    for value in decoded.values():
        if not (isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str)):
            raise invalid
    return decoded


def gsi1_page(
    dynamodb: Any,
    table: str,
    partition: str,
    limit: int,
    cursor: str | None,
    *,
    status: str | None = None,
    index: str = "GSI1",
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a GSI1 (or `index`) partition, newest first (its sort key starts with the
    creation time), with an optional filter on `status`; returns the raw items and the next cursor."""
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": f"{index}PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": partition}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if status:
        request["FilterExpression"] = "#status = :status"
        request["ExpressionAttributeNames"] = {"#status": "status"}
        request["ExpressionAttributeValues"][":status"] = {"S": status}
    if cursor:
        start = decode_cursor(cursor)
        if start.get(f"{index}PK", {}).get("S") != partition:
            # A cursor of another list: DynamoDB would refuse it with a 500-worthy error.
            raise BadRequest("The cursor is not one this list issued.", code="invalid_cursor")
        request["ExclusiveStartKey"] = start
    page = dynamodb.query(**request)
    next_key = page.get("LastEvaluatedKey")
    return list(page.get("Items", [])), encode_cursor(next_key) if next_key else None
