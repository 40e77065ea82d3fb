"""The one publishing function every function uses for events without an audited change (an
endpoint disabled, a payment settled, a sync finished, a test event): one item write, which the
data table's stream hands to the webhook fan-out (gateway_core.events says why)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from gateway_core.events import event_item


def publish(
    dynamodb: Any,
    table: str,
    event_type: str,
    data: dict[str, Any],
    client_id: str | None = None,
    private: bool = False,
) -> str:
    """Publishes an event (one PutItem) and returns its id. The caller's role needs PutItem on
    `EVENT#*` items of the table."""
    item = event_item(event_type, data, client_id=client_id, private=private)
    try:
        dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(PK)")
    except ClientError as error:
        # The id is new (a millisecond stamp and 80 random bits): an item already there is this
        # very write, committed before its answer was lost and retried by the SDK.
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    return str(item["message_id"]["S"])
