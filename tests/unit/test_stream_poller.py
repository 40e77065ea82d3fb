"""The local DynamoDB-stream poller (infra/local/stream_poller.py): filters, record shape, the
checkpoint/retry/bisect decisions, and a run against a real moto server's stream."""

from __future__ import annotations

import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import boto3
import pytest

from infra.local import moto_host
from infra.local.lambdas import FunctionError, FunctionThrottled, FunctionTimeout
from infra.local.stream_poller import (
    Outcome,
    ShardCursor,
    StreamMapping,
    StreamPoller,
    UnsupportedMapping,
    compile_filters,
    interpret,
    lambda_record,
    load_stream_mappings,
    mapping_from_configuration,
    on_failure_document,
    record_passes,
)

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/data/stream/2026-01-01T00:00:00.000"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:fanout"
DESIGN_FILTER = {
    "Filters": [
        {
            "Pattern": json.dumps(
                {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"event_type": {"S": [{"exists": True}]}}}}
            )
        }
    ]
}


def _filters(*patterns: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    return compile_filters({"Filters": [{"Pattern": json.dumps(p)} for p in patterns]})


def _record(seq: int, name: str = "INSERT", **image: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventID": f"id{seq}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_767_225_600 + seq,
            "Keys": {"PK": {"S": f"EVENT#{seq}"}},
            "NewImage": {"PK": {"S": f"EVENT#{seq}"}, **image},
            "SequenceNumber": str(1000 + seq),
            "SizeBytes": 10,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": STREAM,
    }


def _seqs(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) - 1000 for r in records]


# --- filters ----------------------------------------------------------------------------------


def test_design_filter_takes_inserted_events_only() -> None:
    patterns = compile_filters(DESIGN_FILTER)
    assert record_passes(patterns, _record(1, event_type={"S": "key.rotated"}))
    assert not record_passes(patterns, _record(2, "MODIFY", event_type={"S": "key.rotated"}))
    assert not record_passes(patterns, _record(3))  # no event_type
    # exists matches leaves only: an object at the path is not "existing".
    wrong_level = _filters({"dynamodb": {"NewImage": {"event_type": [{"exists": True}]}}})
    assert not record_passes(wrong_level, _record(4, event_type={"S": "x"}))


def test_filter_operators() -> None:
    prefix = _filters({"dynamodb": {"Keys": {"PK": {"S": [{"prefix": "EVENT#1"}]}}}})
    assert record_passes(prefix, _record(12))
    assert not record_passes(prefix, _record(2))
    absent = _filters({"dynamodb": {"NewImage": {"gone": {"S": [{"exists": False}]}}}})
    assert record_passes(absent, _record(1))
    assert not record_passes(absent, _record(1, gone={"S": "here"}))
    anything_but = _filters({"eventName": [{"anything-but": ["REMOVE", "MODIFY"]}]})
    assert record_passes(anything_but, _record(1))
    assert not record_passes(anything_but, _record(1, "REMOVE"))
    numbers = _filters({"dynamodb": {"SizeBytes": [10.0]}})
    assert record_passes(numbers, _record(1))
    assert not record_passes(_filters({"dynamodb": {"SizeBytes": ["10"]}}), _record(1))  # types differ
    # Several filters: any one matching is enough; several values in one array: any one.
    either = _filters({"eventName": ["REMOVE"]}, {"dynamodb": {"Keys": {"PK": {"S": ["EVENT#7", "EVENT#8"]}}}})
    assert record_passes(either, _record(8))
    assert record_passes(either, _record(1, "REMOVE"))
    assert not record_passes(either, _record(1))
    # Array values: any element matching.
    listed = _filters({"tags": ["b"]})
    assert record_passes(listed, {"tags": ["a", "b"]})
    assert not record_passes(listed, {"tags": ["a"]})
    assert record_passes((), _record(1))  # no filters: everything passes


@pytest.mark.parametrize(
    "pattern",
    [
        {"eventName": [{"suffix": "T"}]},
        {"eventName": [{"numeric": [">", 1]}]},
        {"eventName": [{"anything-but": {"prefix": "I"}}]},
        {"$or": [{"eventName": ["INSERT"]}]},
        {"eventName": []},
        {"eventName": "INSERT"},
        {"eventName": [{"exists": "yes"}]},
    ],
)
def test_unimplemented_or_invalid_patterns_are_refused(pattern: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedMapping):
        _filters(pattern)


def test_mapping_configuration() -> None:
    esm = {
        "UUID": "u-1",
        "FunctionArn": FUNCTION,
        "EventSourceArn": STREAM,
        "BatchSize": 25,
        "MaximumBatchingWindowInSeconds": 1,
        "StartingPosition": "LATEST",
        "FilterCriteria": DESIGN_FILTER,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "MaximumRetryAttempts": 3,
        "BisectBatchOnFunctionError": True,
        "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}},
    }
    mapping = mapping_from_configuration(esm)
    assert (mapping.batch_size, mapping.window_s, mapping.starting_position) == (25, 1.0, "LATEST")
    assert mapping.report_failures
    assert mapping.bisect
    assert mapping.max_retries == 3
    assert mapping.on_failure == "arn:aws:sqs:us-east-1:123456789012:dlq"
    defaults = mapping_from_configuration({"UUID": "u-2", "FunctionArn": FUNCTION, "EventSourceArn": STREAM})
    assert (defaults.batch_size, defaults.max_retries, defaults.report_failures, defaults.filters) == (
        100,
        -1,
        False,
        (),
    )
    with pytest.raises(UnsupportedMapping):
        mapping_from_configuration({**esm, "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:x:1:t"}}})
    with pytest.raises(UnsupportedMapping):
        mapping_from_configuration({**esm, "TumblingWindowInSeconds": 30})


# --- record shape -----------------------------------------------------------------------------


def test_lambda_record_shape_from_get_records() -> None:
    raw = {
        "eventID": "abc",
        "eventName": "INSERT",
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 1, 1, 0, 0, 5, 900_000, tzinfo=UTC),
            "Keys": {"PK": {"S": "EVENT#1"}},
            "NewImage": {"PK": {"S": "EVENT#1"}, "blob": {"B": b"\x00\xff"}, "m": {"M": {"bs": {"BS": [b"a"]}}}},
            "SequenceNumber": "1100000000017454423009",
            "SizeBytes": 279,
            "StreamViewType": "NEW_IMAGE",
        },
    }
    record = lambda_record(raw, STREAM)
    assert record == {
        "eventID": "abc",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_767_225_605,
            "Keys": {"PK": {"S": "EVENT#1"}},
            "NewImage": {"PK": {"S": "EVENT#1"}, "blob": {"B": "AP8="}, "m": {"M": {"bs": {"BS": ["YQ=="]}}}},
            "SequenceNumber": "1100000000017454423009",
            "SizeBytes": 279,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": STREAM,
    }
    json.dumps(record)  # it crosses a JSON boundary to the function


# --- decisions --------------------------------------------------------------------------------


def _mapping(**overrides: Any) -> StreamMapping:
    return StreamMapping(uuid="u", function=FUNCTION, stream_arn=STREAM, **overrides)


def _cursor(count: int, **overrides: Any) -> ShardCursor:
    cursor = ShardCursor(_mapping(**overrides))
    cursor.add([_record(i) for i in range(1, count + 1)], now=0.0)
    return cursor


def _drive(
    cursor: ShardCursor, answer: Callable[[list[int]], Any], limit: int = 50
) -> tuple[list[list[int]], list[Any]]:
    """Run the cursor's batches through a fake function; returns invoked batches and exhausted ones."""
    invoked: list[list[int]] = []
    exhausted: list[Any] = []
    while cursor.ready(now=1e9) and len(invoked) < limit:
        batch = cursor.next_batch()
        invoked.append(_seqs(batch))
        seqs = _seqs(batch)
        outcome = interpret(batch, lambda: answer(seqs), cursor.mapping.report_failures)  # noqa: B023 - called at once
        settlement = cursor.settle(batch, outcome)
        if settlement.exhausted:
            exhausted.append((_seqs(settlement.exhausted), settlement.invoke_count))
    return invoked, exhausted


def _fails(*bad: int) -> Callable[[list[int]], Any]:
    def answer(seqs: list[int]) -> Any:
        if set(bad) & set(seqs):
            raise FunctionError({"errorType": "Boom", "errorMessage": "boom"})
        return None

    return answer


def test_batches_respect_batch_size_and_window() -> None:
    cursor = ShardCursor(_mapping(batch_size=3, window_s=1.0))
    cursor.add([_record(1)], now=10.0)
    assert cursor.wants_records()
    assert not cursor.ready(now=10.5)
    assert cursor.ready(now=11.0)
    cursor.add([_record(2), _record(3), _record(4)], now=10.6)
    assert not cursor.wants_records()
    assert cursor.ready(now=10.6)
    assert _seqs(cursor.next_batch()) == [1, 2, 3]


def test_success_checkpoints_in_order() -> None:
    invoked, exhausted = _drive(_cursor(5, batch_size=2), lambda seqs: None)
    assert invoked == [[1, 2], [3, 4], [5]]
    assert exhausted == []


def test_reported_item_failure_checkpoints_before_the_lowest_and_retries_the_rest() -> None:
    calls = {"n": 0}

    def answer(seqs: list[int]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # first call: 4 and 2 fail (reported out of order)
            return {"batchItemFailures": [{"itemIdentifier": "1004"}, {"itemIdentifier": "1002"}]}
        return {"batchItemFailures": []}

    invoked, exhausted = _drive(_cursor(5, report_failures=True), answer)
    assert invoked == [[1, 2, 3, 4, 5], [2, 3, 4, 5]]
    assert exhausted == []


def test_invalid_item_failure_report_retries_the_whole_batch() -> None:
    answers = iter([{"batchItemFailures": [{"itemIdentifier": "999"}]}, {"batchItemFailures": [{"id": "x"}]}, None])
    invoked, _ = _drive(_cursor(3, report_failures=True), lambda seqs: next(answers))
    assert invoked == [[1, 2, 3]] * 3


def test_retries_exhausted_skips_the_batch_after_max_retries() -> None:
    cursor = _cursor(4, batch_size=2, max_retries=2)
    invoked, exhausted = _drive(cursor, _fails(2))
    assert invoked == [[1, 2]] * 3 + [[3, 4]]  # the first try and two retries, then move on
    assert exhausted == [([1, 2], 3)]
    assert cursor.pending == []
    assert cursor.failures == {}


def test_partial_failure_exhaustion_skips_from_the_failed_record() -> None:
    def answer(seqs: list[int]) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": "1003"}]} if 3 in seqs else None

    invoked, exhausted = _drive(_cursor(5, report_failures=True, max_retries=1), answer)
    assert invoked == [[1, 2, 3, 4, 5], [3, 4, 5]]
    assert exhausted == [([3, 4, 5], 2)]


def test_bisect_isolates_the_failing_record() -> None:
    invoked, exhausted = _drive(_cursor(8, bisect=True, max_retries=1), _fails(6))
    # Splits cost no retry; the single bad record is tried twice (one retry), then skipped.
    assert invoked == [
        [1, 2, 3, 4, 5, 6, 7, 8],
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [5, 6],
        [5],
        [6],
        [6],
        [7, 8],
    ]
    assert exhausted == [([6], 2)]


def test_infinite_retries_never_skip() -> None:
    invoked, exhausted = _drive(_cursor(2, max_retries=-1), _fails(1), limit=20)
    assert invoked == [[1, 2]] * 20
    assert exhausted == []


def test_throttles_and_timeouts() -> None:
    answers: Iterator[Any] = iter(
        [FunctionThrottled("busy"), FunctionThrottled("busy"), FunctionTimeout("slow", by_function=True), None]
    )

    def answer(seqs: list[int]) -> Any:
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    cursor = _cursor(2, max_retries=0)
    batch = cursor.next_batch()
    # Throttled twice: retried, not counted; then a timeout with no retries left.
    for _ in range(2):
        settled = cursor.settle(batch, interpret(batch, lambda: answer([]), False))
        assert settled.retry
        assert not settled.exhausted
    outcome = interpret(batch, lambda: answer([]), False)
    assert outcome.kind == "error"
    assert outcome.function_error == "Unhandled"
    settled = cursor.settle(batch, outcome)
    assert _seqs(settled.exhausted) == [1, 2]
    assert settled.invoke_count == 1


def test_on_failure_document() -> None:
    mapping = _mapping()
    records = [_record(1), _record(2)]
    document = on_failure_document(
        mapping, "shardId-1", records, 3, Outcome("error", function_error="Unhandled"), 1_767_225_600.5
    )
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 3
    assert document["requestContext"]["functionArn"] == FUNCTION
    assert document["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert document["version"] == "1.0"
    assert document["timestamp"] == "2026-01-01T00:00:00.500Z"
    assert document["DDBStreamBatchInfo"] == {
        "shardId": "shardId-1",
        "startSequenceNumber": "1001",
        "endSequenceNumber": "1002",
        "approximateArrivalOfFirstRecord": "2026-01-01T00:00:01Z",
        "approximateArrivalOfLastRecord": "2026-01-01T00:00:02Z",
        "batchSize": 2,
        "streamArn": STREAM,
    }
    partial = on_failure_document(mapping, "s", records, 1, Outcome("partial", failed=frozenset({"1001"})), 0)
    assert "functionError" not in partial["responseContext"]


# --- against moto's stream ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=moto_host.REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _zip() -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def _stream_mapping(endpoint: str, name: str, **esm: Any) -> tuple[StreamMapping, str, str]:
    """A table with a stream, a function with a mapping on it and a DLQ, in moto; returns the
    mapping as load_stream_mappings reads it, the table name and the DLQ URL."""
    ddb, lam, sqs, iam = (_client(s, endpoint) for s in ("dynamodb", "lambda", "sqs", "iam"))
    table = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    function = lam.create_function(
        FunctionName=f"{name}-fn", Runtime="python3.11", Role=role, Handler="handler.handler", Code={"ZipFile": _zip()}
    )["FunctionArn"]
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=table["LatestStreamArn"],
        StartingPosition="TRIM_HORIZON",
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
        **esm,
    )
    moto_host.detach_moto_stream_invocation()  # else moto invokes the function inside PutItem
    mapping = next(m for m in load_stream_mappings(lam) if m.stream_arn == table["LatestStreamArn"])
    return mapping, name, dlq_url


def _put(endpoint: str, table: str, pk: str, **extra: str) -> None:
    item = {"PK": {"S": pk}, "SK": {"S": "EVENT"}, **{k: {"S": v} for k, v in extra.items()}}
    _client("dynamodb", endpoint).put_item(TableName=table, Item=item)


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_poller_delivers_filtered_records_in_order_and_retries_reported_failures(moto_endpoint: str) -> None:
    mapping, table, _ = _stream_mapping(
        moto_endpoint,
        "streams-order",
        BatchSize=10,
        FilterCriteria=DESIGN_FILTER,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=5,
    )
    assert mapping.report_failures
    assert mapping.max_retries == 5
    assert len(mapping.filters) == 1
    shard = _client("dynamodbstreams", moto_endpoint).describe_stream(StreamArn=mapping.stream_arn)
    shard_id = shard["StreamDescription"]["Shards"][0]["ShardId"]
    seen: list[tuple[str, ...]] = []
    failed_once: set[str] = set()
    lock = threading.Lock()

    def invoke(function: str, event: dict[str, Any]) -> Any:
        assert function == mapping.function
        json.dumps(event)
        pks = tuple(r["dynamodb"]["Keys"]["PK"]["S"] for r in event["Records"])
        with lock:
            seen.append(pks)
        for record in event["Records"]:
            assert record["eventSourceARN"] == mapping.stream_arn
            assert record["eventVersion"] == "1.1"
            pk = record["dynamodb"]["Keys"]["PK"]["S"]
            if pk == "EVENT#3" and pk not in failed_once:
                failed_once.add(pk)
                return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
        return {"batchItemFailures": []}

    _put(moto_endpoint, table, "EVENT#0", event_type="before.start")  # TRIM_HORIZON: delivered too
    stop = threading.Event()
    poller = StreamPoller(
        mapping,
        shard_id,
        invoke,
        stop,
        streams=_client("dynamodbstreams", moto_endpoint),
        sqs=_client("sqs", moto_endpoint),
    )
    poller.start()
    try:
        for i in range(1, 6):
            _put(moto_endpoint, table, f"EVENT#{i}", event_type="key.rotated")
            _put(moto_endpoint, table, f"OTHER#{i}")  # no event_type: filtered out
        _client("dynamodb", moto_endpoint).update_item(
            TableName=table,
            Key={"PK": {"S": "EVENT#1"}, "SK": {"S": "EVENT"}},
            UpdateExpression="SET note = :n",
            ExpressionAttributeValues={":n": {"S": "x"}},
        )  # MODIFY: filtered out
        _wait(lambda: "EVENT#5" in {pk for batch in list(seen) for pk in batch})
        time.sleep(0.5)
    finally:
        stop.set()
        poller.thread.join(timeout=5)
    delivered = [pk for batch in seen for pk in batch]
    # EVENT#3 reported failed once: delivery went on from it again (with what followed it in that
    # batch), nothing before it came twice and nothing was skipped.
    again = delivered.index("EVENT#3", delivered.index("EVENT#3") + 1)
    assert delivered[:again] == [f"EVENT#{i}" for i in range(again)]
    assert delivered[again:] == ["EVENT#3", "EVENT#4", "EVENT#5"]
    assert all(not pk.startswith("OTHER#") for pk in delivered)
    assert poller.cursor.pending == []
    assert poller.cursor.filtered == 6


def test_poller_sends_exhausted_batches_to_the_on_failure_queue(moto_endpoint: str) -> None:
    mapping, table, dlq_url = _stream_mapping(
        moto_endpoint, "streams-dlq", BatchSize=5, MaximumRetryAttempts=1, BisectBatchOnFunctionError=True
    )
    shard_id = _client("dynamodbstreams", moto_endpoint).describe_stream(StreamArn=mapping.stream_arn)[
        "StreamDescription"
    ]["Shards"][0]["ShardId"]
    delivered: list[str] = []

    def invoke(function: str, event: dict[str, Any]) -> Any:
        pks = [r["dynamodb"]["Keys"]["PK"]["S"] for r in event["Records"]]
        if "EVENT#poison" in pks:
            raise FunctionError({"errorType": "ValueError", "errorMessage": "poison"})
        delivered.extend(pks)
        return None

    for pk in ("EVENT#a", "EVENT#poison", "EVENT#b"):
        _put(moto_endpoint, table, pk)
    stop = threading.Event()
    poller = StreamPoller(
        mapping,
        shard_id,
        invoke,
        stop,
        streams=_client("dynamodbstreams", moto_endpoint),
        sqs=_client("sqs", moto_endpoint),
    )
    poller.start()
    sqs = _client("sqs", moto_endpoint)
    try:
        messages: list[dict[str, Any]] = []

        def dead_lettered() -> bool:
            messages.extend(sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0).get("Messages", []))
            return bool(messages)

        _wait(dead_lettered)
        _wait(lambda: "EVENT#b" in delivered)
    finally:
        stop.set()
        poller.thread.join(timeout=5)
    assert delivered == ["EVENT#a", "EVENT#b"]  # the poison record alone was skipped, order kept
    document = json.loads(messages[0]["Body"])
    info = document["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["streamArn"] == mapping.stream_arn
    assert info["shardId"] == shard_id
    assert document["requestContext"] == {
        "requestId": document["requestContext"]["requestId"],
        "functionArn": mapping.function,
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 2,
    }
    assert document["responseContext"]["functionError"] == "Unhandled"
