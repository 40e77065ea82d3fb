"""A delivery attempt's record whose answer was lost (the SDK retries the transaction after a read
timeout): the retry fails its own lease condition where the store ignores the idempotency token,
as moto does, and must still count as recorded, or no next attempt is ever queued (the chaos test
found deliveries stuck `retrying` that way). Another worker's record of the same attempt number is
still refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.webhooks.dal.deliveries_store import DynamoDeliveryStore
from functions.webhooks.dal.delivery_items import delivery_item
from functions.webhooks.logic.model import Attempt, Delivery

TABLE = "data"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_a_retried_record_of_our_own_attempt_counts_and_another_workers_does_not(dynamodb: Any) -> None:
    store = DynamoDeliveryStore(dynamodb, TABLE)
    delivery = Delivery("dlv_x", "ep_1", "acme", "msg_1", "key.created", "{}", "pending", "2026-12-02T00:00:00.000Z")
    dynamodb.put_item(TableName=TABLE, Item=delivery_item(delivery))
    assert store.claim(delivery, now=1000.0, lease_until=2000.0)
    attempt = Attempt("dlv_x", 1, "2026-12-02T00:00:01.000Z", "failure", 5, 500, "HTTP 500")
    after = replace(delivery, status="retrying", attempts=1)

    assert store.record(delivery, attempt, after)
    assert store.record(delivery, attempt, after), "the same commit, retried, is ours"
    later = replace(attempt, started_at="2026-12-02T00:00:09.000Z")
    assert not store.record(delivery, later, after), "another worker's attempt 1 is not ours"
    stored = store.get("dlv_x")
    assert stored is not None
    assert (stored.status, stored.attempts) == ("retrying", 1)
