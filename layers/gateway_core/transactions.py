"""One DynamoDB transaction whose conditions map to domain errors: the stores' shared write."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def transact_write(dynamodb: Any, items: list[dict[str, Any]], conflicts: dict[int, Exception]) -> None:
    """Writes `items` at once. `conflicts` maps the index of an item whose condition may fail to
    the domain error it means; any other failure is raised as it is."""
    try:
        dynamodb.transact_write_items(TransactItems=items)
    except ClientError as error:
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        reasons = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
        for index, reason in enumerate(reasons):
            if reason == "ConditionalCheckFailed" and index in conflicts:
                raise conflicts[index] from error
        raise


def at_version(version: int) -> dict[str, Any]:
    """The condition (with its value) that an item is still at `version`, the one read. Items
    written before they carried a version read as version 1 (clients, keys, issuers), so version 1
    also matches an item without one (the write then stores a version), but only an item that is
    there: a write that raced a delete must not bring the item back."""
    condition = (
        "version = :v" if version != 1 else "attribute_exists(PK) AND (attribute_not_exists(version) OR version = :v)"
    )
    return {"ConditionExpression": condition, "ExpressionAttributeValues": {":v": {"N": str(version)}}}
