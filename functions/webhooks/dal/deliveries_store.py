"""The worker's reads and conditional writes of one delivery: take the lease for an attempt,
record it, settle, note the queued message (logic/delivery.py says why each is conditioned)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from functions.webhooks.dal.delivery_items import attempt_item, delivery_from, delivery_key, failed_condition
from functions.webhooks.logic.model import Attempt, Delivery
from gateway_core.clock import parse_iso

_serializer = TypeSerializer()


class DynamoDeliveryStore:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def get(self, delivery_id: str) -> Delivery | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=delivery_key(delivery_id), ConsistentRead=True).get(
            "Item"
        )
        return delivery_from(item) if item else None

    def claim(self, delivery: Delivery, now: float, lease_until: float) -> bool:
        return self._conditional_update(
            delivery.delivery_id,
            "SET lease_until = :lease, lease_attempt = :next",
            "attempts = :n AND #status IN (:pending, :retrying) AND (attribute_not_exists(lease_until) OR lease_until <= :now)",
            {
                ":lease": {"N": repr(lease_until)},
                ":next": {"N": str(delivery.attempts + 1)},
                ":n": {"N": str(delivery.attempts)},
                ":pending": {"S": "pending"},
                ":retrying": {"S": "retrying"},
                ":now": {"N": repr(now)},
            },
        )

    def record(
        self, claimed: Delivery, attempt: Attempt, after: Delivery, events: list[dict[str, Any]] | None = None
    ) -> bool:
        """The attempt and the delivery's new state at once, only while the lease is ours, with
        the events the outcome publishes (gateway_core.events items)."""
        sets = ["#status = :status", "attempts = :attempts", "lease_until = :zero"]
        removes = []
        values: dict[str, Any] = {
            ":status": {"S": after.status},
            ":attempts": {"N": str(after.attempts)},
            ":zero": {"N": "0"},
            ":n": {"N": str(claimed.attempts)},
            ":next": {"N": str(claimed.attempts + 1)},
        }
        for name in ("last_status", "last_error", "next_attempt_at", "delivered_at"):
            value = getattr(after, name)
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = _serializer.serialize(value)
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        items = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": attempt_item(attempt, claimed.created_at),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": delivery_key(claimed.delivery_id),
                    "UpdateExpression": expression,
                    "ConditionExpression": "attempts = :n AND lease_attempt = :next",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values,
                }
            },
        ]
        items += [
            {"Put": {"TableName": self.table, "Item": event, "ConditionExpression": "attribute_not_exists(PK)"}}
            for event in events or []
        ]
        # The token makes SDK retries of this transaction idempotent: a commit whose answer was lost
        # is not retried into a failed condition (read as a lost lease: no next message queued).
        token = f"{claimed.delivery_id}-{attempt.attempt}"
        try:
            self.dynamodb.transact_write_items(TransactItems=items, ClientRequestToken=token)
        except ClientError as error:
            if failed_condition(error) or error.response["Error"]["Code"] == "IdempotentParameterMismatchException":
                # Another worker recorded this attempt number, or this very commit did and its
                # answer was lost (a store that ignores the token, as moto does, fails the SDK's
                # retry on its own condition): the stored attempt is ours if it started when ours did.
                return self._stored_attempt_started(attempt) == attempt.started_at
            raise
        return True

    def _stored_attempt_started(self, attempt: Attempt) -> str | None:
        key = {"PK": {"S": f"DELIVERY#{attempt.delivery_id}"}, "SK": {"S": f"ATTEMPT#{attempt.attempt:04d}"}}
        item = self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item") or {}
        return item.get("started_at", {}).get("S")

    def settle(self, delivery: Delivery, after: Delivery) -> bool:
        """Settles a delivery without an attempt (its endpoint is gone or disabled)."""
        return self._conditional_update(
            delivery.delivery_id,
            "SET #status = :status, last_error = :error REMOVE next_attempt_at",
            "attempts = :n AND #status = :current",
            {
                ":status": {"S": after.status},
                ":error": {"S": after.last_error or ""},
                ":n": {"N": str(delivery.attempts)},
                ":current": {"S": delivery.status},
            },
        )

    def mark_queued(self, delivery_id: str, attempts: int) -> None:
        self._conditional_update(
            delivery_id, "SET queued_for = :n", "attribute_exists(PK)", {":n": {"N": str(attempts)}}, names=False
        )

    def queued_for(self, delivery_id: str) -> int | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=delivery_key(delivery_id), ProjectionExpression="queued_for", ConsistentRead=True
        ).get("Item")
        return int(item["queued_for"]["N"]) if item and "queued_for" in item else None

    def reopen(self, delivery: Delivery, max_attempts: int, trigger: str, now_iso: str) -> bool:
        """A replay or recovery: the delivery may be attempted again now, with a fresh budget.
        Refused while an attempt holds the lease or when it changed since read."""
        return self._conditional_update(
            delivery.delivery_id,
            "SET #status = :pending, max_attempts = :max, #trigger = :trigger, next_attempt_at = :now, retry_base = :n",
            "attempts = :n AND #status = :current AND (attribute_not_exists(lease_until) OR lease_until <= :epoch)",
            {
                ":pending": {"S": "pending"},
                ":max": {"N": str(max_attempts)},
                ":trigger": {"S": trigger},
                ":now": {"S": now_iso},
                ":epoch": {"N": repr(parse_iso(now_iso).timestamp())},
                ":n": {"N": str(delivery.attempts)},
                ":current": {"S": delivery.status},
            },
            extra_names={"#trigger": "trigger"},
        )

    def _conditional_update(
        self,
        delivery_id: str,
        expression: str,
        condition: str,
        values: dict[str, Any],
        *,
        names: bool = True,
        extra_names: dict[str, str] | None = None,
    ) -> bool:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": delivery_key(delivery_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = {"#status": "status", **(extra_names or {})}
        try:
            self.dynamodb.update_item(**request)
        except ClientError as error:
            if failed_condition(error):
                return False
            raise
        return True
