"""The delivery worker's updates of an endpoint's health: failures, the circuit breaker,
disabling, and an ordered endpoint's progress. They leave the version alone, so they never fail
an admin's If-Match, and never bring a deleted endpoint back as a fragment."""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import ClientError

from functions.webhooks.dal.endpoint_items import endpoint_key, from_item
from functions.webhooks.dal.endpoint_reader import DynamoEndpointReader
from functions.webhooks.logic.model import Endpoint
from gateway_core.preconditions import ConcurrentChange

_CONFLICT_RETRIES = 3


class DynamoEndpointHealth(DynamoEndpointReader):
    # An endpoint deleted meanwhile is left deleted (the condition in _update fails quietly here).
    def record_success(self, endpoint: Endpoint) -> None:
        with contextlib.suppress(ConcurrentChange):
            self._update(
                endpoint.endpoint_id,
                "SET consecutive_failures = :zero, breaker_open_until = :zero REMOVE failing_since",
                {":zero": {"N": "0"}},
            )

    def record_failure(self, endpoint: Endpoint, at: str, breaker_open_until: float) -> Endpoint:
        try:
            answer = self._update(
                endpoint.endpoint_id,
                "SET consecutive_failures = if_not_exists(consecutive_failures, :zero) + :one,"
                " failing_since = if_not_exists(failing_since, :at), breaker_open_until = :open",
                {":zero": {"N": "0"}, ":one": {"N": "1"}, ":at": {"S": at}, ":open": {"N": repr(breaker_open_until)}},
            )
        except ConcurrentChange:
            return endpoint
        return from_item(answer) if answer else endpoint

    def disable(self, endpoint: Endpoint, reason: str, at: str, event: dict[str, Any]) -> bool:
        """Disables the endpoint and publishes `event` (its `endpoint.disabled`) in one
        transaction, only while it is active: True when this call did it, so it is announced once."""
        update = {
            "TableName": self.table,
            "Key": endpoint_key(endpoint.endpoint_id),
            # A new version: an admin's change based on an earlier read (If-Match, or a PATCH of
            # other fields) must not write the endpoint back as active.
            "UpdateExpression": "SET active = :false, disabled_reason = :reason, disabled_at = :at,"
            " version = if_not_exists(version, :one) + :one",
            "ConditionExpression": "attribute_exists(PK) AND active = :true",
            "ExpressionAttributeValues": {
                ":false": {"BOOL": False},
                ":true": {"BOOL": True},
                ":reason": {"S": reason},
                ":at": {"S": at},
                ":one": {"N": "1"},
            },
        }
        put = {"TableName": self.table, "Item": event, "ConditionExpression": "attribute_not_exists(PK)"}
        # A conflict with another write of the endpoint (a failure counted at the same moment) is
        # tried again: the delivery is settled already, nothing would bring this back later.
        for _ in range(_CONFLICT_RETRIES):
            try:
                self.dynamodb.transact_write_items(TransactItems=[{"Update": update}, {"Put": put}])
                return True
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if "TransactionConflict" not in reasons:
                    return False  # inactive already (or gone): someone else disabled it
        return False

    def take_probe(self, endpoint_id: str, now: float, until: float) -> bool:
        """The half-open breaker's one probe: True for the caller that gets it (until `until`,
        when another may try if this one's worker died)."""
        try:
            self._update(
                endpoint_id,
                "SET probe_until = :until",
                {":until": {"N": repr(until)}, ":now": {"N": repr(now)}},
                condition="(attribute_not_exists(probe_until) OR probe_until <= :now)",
            )
        except ConcurrentChange:
            return False
        return True

    def advance_order(self, endpoint_id: str, seq: int) -> None:
        """An ordered endpoint's delivery `seq` settled: the next one may go. Never moves back."""
        with contextlib.suppress(ConcurrentChange):
            self._update(
                endpoint_id, "SET settled_seq = :seq", {":seq": {"N": str(seq)}}, condition="settled_seq < :seq"
            )

    def _update(
        self, endpoint_id: str, expression: str, values: dict[str, Any], condition: str | None = None
    ) -> dict[str, Any] | None:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": endpoint_key(endpoint_id),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
            # A health update must not bring a deleted endpoint back as a fragment.
            "ConditionExpression": "attribute_exists(PK)" + (f" AND {condition}" if condition else ""),
            "ReturnValues": "ALL_NEW",
        }
        try:
            return dict(self.dynamodb.update_item(**request).get("Attributes") or {}) or None
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrentChange(endpoint_id) from error
            raise
