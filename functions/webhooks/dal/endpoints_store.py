"""Webhook endpoints in the data table: `WEBHOOK#<id>`/`ENDPOINT`, a client's endpoints on GSI1
(`CLIENT#<id>#WEBHOOKS`), every endpoint on GSI2 (`WEBHOOKS`). API changes are transactions with
their audit event, conditioned on the version read; the delivery worker's health updates
(failures, breaker, disabling, order) leave the version alone, so they never fail an admin's
If-Match."""

from __future__ import annotations

from typing import Any

from functions.webhooks.dal.endpoint_items import endpoint_key, from_item, to_item
from functions.webhooks.dal.endpoint_listing import DynamoEndpointListing
from functions.webhooks.dal.endpoint_reader import DynamoEndpointReader
from functions.webhooks.logic.model import Endpoint
from gateway_core.audit import Actor, audit_put
from gateway_core.pagination import gsi1_page
from gateway_core.preconditions import ConcurrentChange
from gateway_core.transactions import at_version, transact_write

# What the API writes on a change; the delivery worker owns the rest (endpoint_health.py).
API_FIELDS = (
    "name",
    "description",
    "url",
    "method",
    "event_types",
    "filters",
    "headers",
    "timeout_s",
    "max_retries",
    "rate_limit_per_s",
    "ordering",
    "active",
    "audience",
    "signing",
    "keys",
    "updated_at",
    "version",
    "disabled_reason",
    "disabled_at",
)
# Those of them absent from an item when unset (removed by a change that unsets them).
OPTIONAL_API_FIELDS = ("rate_limit_per_s", "disabled_reason", "disabled_at")


class DynamoEndpointStore(DynamoEndpointReader, DynamoEndpointListing):
    """The API's: reads, lists and audited changes."""

    def _audit(self, actor: Actor, action: str, before: Endpoint | None, after: Endpoint | None) -> dict[str, Any]:
        subject = after or before
        assert subject is not None
        return audit_put(
            self.table, actor=actor, action=action, target=f"webhook/{subject.endpoint_id}", before=before, after=after
        )

    # -- the API's changes ----------------------------------------------------------------
    def create(self, endpoint: Endpoint, actor: Actor) -> None:
        put = {"TableName": self.table, "Item": to_item(endpoint), "ConditionExpression": "attribute_not_exists(PK)"}
        transact_write(
            self.dynamodb,
            [{"Put": put}, self._audit(actor, "webhook.create", None, endpoint)],
            {0: ConcurrentChange(endpoint.endpoint_id)},
        )

    def replace(
        self,
        before: Endpoint,
        after: Endpoint,
        actor: Actor,
        action: str = "webhook.update",
        events: list[dict[str, Any]] | None = None,
    ) -> None:
        """Writes what the API owns, conditioned on the version read, with its audit event (and
        the events it publishes). The worker's fields (failures, breaker, order counters) are left
        as they are, being written meanwhile without a version, except when re-enabling resets
        the health."""
        item = to_item(after)
        owned = [name for name in API_FIELDS if name in item]
        removed = [name for name in OPTIONAL_API_FIELDS if name not in item]
        if action == "webhook.enable":
            owned += [n for n in ("consecutive_failures", "breaker_open_until") if n not in owned]
            removed.append("failing_since")
        names = {f"#{n}": n for n in owned + removed}
        values = {f":{n}": item[n] for n in owned}
        condition = at_version(before.version)
        values.update(condition["ExpressionAttributeValues"])
        expression = "SET " + ", ".join(f"#{n} = :{n}" for n in owned)
        if removed:
            expression += " REMOVE " + ", ".join(f"#{n}" for n in removed)
        update = {
            "TableName": self.table,
            "Key": endpoint_key(after.endpoint_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition["ConditionExpression"],
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        puts = [
            {"Put": {"TableName": self.table, "Item": e, "ConditionExpression": "attribute_not_exists(PK)"}}
            for e in events or []
        ]
        transact_write(
            self.dynamodb,
            [{"Update": update}, self._audit(actor, action, before, after), *puts],
            {0: ConcurrentChange(after.endpoint_id)},
        )

    def delete(self, endpoint: Endpoint, actor: Actor) -> None:
        delete = {"TableName": self.table, "Key": endpoint_key(endpoint.endpoint_id), **at_version(endpoint.version)}
        transact_write(
            self.dynamodb,
            [{"Delete": delete}, self._audit(actor, "webhook.delete", endpoint, None)],
            {0: ConcurrentChange(endpoint.endpoint_id)},
        )

    def list_for_client(self, client_id: str, limit: int, cursor: str | None) -> tuple[list[Endpoint], str | None]:
        items, next_cursor = gsi1_page(self.dynamodb, self.table, f"CLIENT#{client_id}#WEBHOOKS", limit, cursor)
        return [from_item(i) for i in items], next_cursor
