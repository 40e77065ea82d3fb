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
