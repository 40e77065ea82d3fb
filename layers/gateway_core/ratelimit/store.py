"""The rate-limit table: the only code here that calls DynamoDB."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from gateway_core.ratelimit.plan import ItemState, Plan, refund_request, spend_request


class RateLimitStore:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def spend(self, plan: Plan, guess: ItemState, now: int, cost: int) -> tuple[bool, ItemState]:
        """One conditional UpdateItem. Returns whether it passed and the item's state: after the
        write when it passed, before it (ReturnValuesOnConditionCheckFailure) when it did not."""
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **spend_request(plan, guess, now, cost),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False, ItemState.from_item(error.response.get("Item"), plan)
        return True, ItemState.from_item(answer.get("Attributes"), plan)

    def refund(self, plan: Plan, cost: int) -> None:
        self.dynamodb.update_item(TableName=self.table, **refund_request(plan, cost))
