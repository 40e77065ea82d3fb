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

    def replace(self, before: Endpoint, after: Endpoint, actor: Actor, action: str = "webhook.update") -> None:
        put = {"TableName": self.table, "Item": to_item(after), **at_version(before.version)}
        transact_write(
            self.dynamodb,
            [{"Put": put}, self._audit(actor, action, before, after)],
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
