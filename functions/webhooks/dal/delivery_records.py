"""The fan-out's write: a delivery created unless it exists; an ordered endpoint's takes the
next sequence number in the same transaction (gapless: a retried fan-out takes none)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from botocore.exceptions import ClientError

from functions.webhooks.dal.delivery_items import delivery_from, delivery_item, delivery_key, failed_condition
from functions.webhooks.logic.model import Delivery, Endpoint

_MAX_SEQ_RACES = 20


class DynamoDeliveryRecords:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def create(self, delivery: Delivery, endpoint: Endpoint) -> Literal["created", "exists_unsent", "exists"]:
        """Creates the delivery unless it exists. An ordered endpoint's delivery takes the next
        sequence number in the same transaction (gapless: a retried fan-out takes none)."""
        if endpoint.ordering != "ordered":
            try:
                self.dynamodb.put_item(
                    TableName=self.table,
                    Item=delivery_item(delivery),
                    ConditionExpression="attribute_not_exists(PK)",
                )
                return "created"
            except ClientError as error:
                if not failed_condition(error):
                    raise
                return self._existing(delivery.delivery_id)
        for _ in range(_MAX_SEQ_RACES):
            current = self._next_seq(endpoint.endpoint_id)
            if current is None:
                return "exists"  # the endpoint was deleted meanwhile: nothing to deliver to
            seq = current + 1
            items = [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"PK": {"S": f"WEBHOOK#{endpoint.endpoint_id}"}, "SK": {"S": "ENDPOINT"}},
                        "UpdateExpression": "SET next_seq = :seq",
                        "ConditionExpression": "attribute_exists(PK) AND next_seq = :current",
                        "ExpressionAttributeValues": {":seq": {"N": str(seq)}, ":current": {"N": str(current)}},
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": delivery_item(replace(delivery, seq=seq)),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
            try:
                self.dynamodb.transact_write_items(TransactItems=items)
                return "created"
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    return self._existing(delivery.delivery_id)
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    continue  # another fan-out took this number: read the counter again
                raise
        raise RuntimeError(f"could not take a sequence number for endpoint {endpoint.endpoint_id}")

    def _next_seq(self, endpoint_id: str) -> int | None:
        item = self.dynamodb.get_item(
            TableName=self.table,
            Key={"PK": {"S": f"WEBHOOK#{endpoint_id}"}, "SK": {"S": "ENDPOINT"}},
            ProjectionExpression="next_seq",
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        return int(item.get("next_seq", {}).get("N", "0"))

    def _existing(self, delivery_id: str) -> Literal["exists_unsent", "exists"]:
        item = self.dynamodb.get_item(TableName=self.table, Key=delivery_key(delivery_id), ConsistentRead=True).get(
            "Item"
        )
        found = delivery_from(item) if item else None
        if found is not None and found.status == "pending" and found.attempts == 0:
            return "exists_unsent"
        return "exists"
