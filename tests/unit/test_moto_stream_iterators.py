"""The local runtime's moto keeps a bounded number of DynamoDB stream shard iterators (moto keeps
every one it hands out; the stream pollers ask for one per GetRecords, forever)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import boto3

from infra.local import moto_host


@contextmanager
def local_moto() -> Iterator[int]:
    """The runtime's moto, patched as it serves; the process environment it sets for its own
    clients (AWS_ENDPOINT_URL...) is put back after, so later tests do not call a stopped server."""
    with mock.patch.dict(os.environ):
        server, port = moto_host.start_moto()
        try:
            yield port
        finally:
            server.stop()


def _options(port: int) -> dict[str, Any]:
    return {
        "region_name": "us-east-1",
        "endpoint_url": f"http://127.0.0.1:{port}",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }


def _streamed_table(dynamodb: Any, streams: Any, name: str) -> tuple[str, str]:
    """A table with a NEW_IMAGE stream: its stream ARN and its (one) shard."""
    table = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    arn = table["TableDescription"]["LatestStreamArn"]
    return arn, streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]


def test_shard_iterators_are_bounded_and_the_newest_still_work() -> None:
    with local_moto() as port:
        options = _options(port)
        dynamodb, streams = boto3.client("dynamodb", **options), boto3.client("dynamodbstreams", **options)
        arn, shard = _streamed_table(dynamodb, streams, "iterators")
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        # Given a poller that has asked for more iterators than the bound
        for _ in range(moto_host.MAX_SHARD_ITERATORS + 50):
            iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]

        # When an item is written, the poller's current iterator still reads it
        dynamodb.put_item(TableName="iterators", Item={"PK": {"S": "after"}})
        records = streams.get_records(ShardIterator=iterator)["Records"]

        # Then moto holds no more than the bound, and nothing was lost
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        held = dynamodbstreams_backends[moto_host.ACCOUNT_ID][moto_host.REGION].shard_iterators
        assert len(held) <= moto_host.MAX_SHARD_ITERATORS
        assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in records] == ["after"]


def test_a_refused_transaction_neither_silences_the_stream_nor_leaves_records_in_it() -> None:
    import pytest
    from botocore.exceptions import ClientError

    with local_moto() as port:
        options = _options(port)
        dynamodb, streams = boto3.client("dynamodb", **options), boto3.client("dynamodbstreams", **options)
        arn, shard = _streamed_table(dynamodb, streams, "transactions")
        dynamodb.put_item(TableName="transactions", Item={"PK": {"S": "taken"}})
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]

        # Given a transaction that writes one item, then fails its condition on another
        with pytest.raises(ClientError):
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "transactions", "Item": {"PK": {"S": "rolled-back"}}}},
                    {
                        "Put": {
                            "TableName": "transactions",
                            "Item": {"PK": {"S": "taken"}},
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                ]
            )
        # When a later write is made
        dynamodb.put_item(TableName="transactions", Item={"PK": {"S": "later"}})

        # Then a poller that was reading the stream sees the later write, and nothing of the
        # transaction that did not commit
        page = streams.get_records(ShardIterator=iterator)
        assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in page["Records"]] == ["later"]
