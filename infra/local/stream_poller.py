"""DynamoDB-stream event source mappings, polled the way Lambda's stream poller does.

For each enabled mapping and each open shard of its stream, one thread reads the shard in order
(GetRecords, about four times a second when idle), drops the records no filter of the mapping's
FilterCriteria matches (AWS event-pattern semantics over the record as Lambda presents it), and
invokes the function with up to BatchSize records, waiting at most MaximumBatchingWindowInSeconds
to fill a batch. The shard's checkpoint only moves forward past records the function handled:

* success: the checkpoint moves past the batch;
* ReportBatchItemFailures: the checkpoint moves to just before the lowest reported
  `itemIdentifier` (a SequenceNumber) and exactly the rest of the batch is retried; a report
  naming a record not in the batch, or an entry without an identifier, fails the whole batch;
* function error or timeout: the batch is retried; with BisectBatchOnFunctionError it is split
  in two halves first (a split does not count as a retry), down to single records;
* throttles (and the runtime failing to invoke at all) are retried without counting, as in AWS
  ("doesn't apply to ... throttles where the batch didn't reach the function");
* once a record has been retried MaximumRetryAttempts times (-1: forever), the batch being retried
  is sent as an on-failure record (AWS's document: requestContext, responseContext,
  DDBStreamBatchInfo) to the OnFailure SQS destination and skipped; without a destination it is
  skipped with a warning. Nothing is skipped silently.

Retries wait 0.2 s, doubling to 2 s, so a failing function does not spin.

What differs from AWS:
* moto has one shard per stream that never closes or splits, so there is no parent/child shard
  ordering here; ParallelizationFactor is 1 (one batch in flight per shard).
* Checkpoints live in memory; nothing is re-read from the stream after a restart (moto's stream
  does not survive one either).
* The runtime starts its pollers at LATEST, after the saved local state has been loaded back into
  the fresh tables (state.py) and before it serves anything: for a fresh deploy that is every
  record written from the deploy on, and the restored items (which moto's stream records as new
  INSERTs) are not delivered again on every start.
* Filters implement exact values, `prefix`, `exists` and `anything-but` (a value or a list);
  other operators and `$or` are refused at start. An array of objects matches a nested pattern
  when one element matches all of it (EventBridge matches the flattened leaves).
* MaximumRecordAgeInSeconds is not enforced (moto keeps stream records forever); tumbling windows
  and the on-failure destinations other than SQS are refused when the poller starts.
* moto's GetRecords stores a new shard iterator on every call and never drops one (about 1.8 KB
  a poll); the runtime keeps the newest 1000 (moto_host.MAX_SHARD_ITERATORS).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import boto3
from botocore.exceptions import ClientError

from infra.local.lambdas import FunctionError, FunctionThrottled, FunctionTimeout
from infra.local.moto_host import REGION

log = logging.getLogger("local.streams")

Invoke = Callable[[str, Any], Any]

IDLE_POLL_S = 0.25  # Lambda polls each shard about four times a second
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 2.0
_OPERATORS = frozenset({"prefix", "exists", "anything-but"})


class UnsupportedMapping(ValueError):
    """A mapping setting (filter operator, destination type, window) the local poller does not
    implement: refused at start rather than applied differently from AWS."""


# --- filter criteria ------------------------------------------------------------------------


def _check_pattern(pattern: Any, path: str) -> None:
    if not isinstance(pattern, dict) or not pattern:
        raise UnsupportedMapping(f"filter pattern at {path or 'top level'} must be a non-empty JSON object")
    for key, sub in pattern.items():
        where = f"{path}.{key}" if path else key
        if key.startswith("$"):
            raise UnsupportedMapping(f"filter operator {key!r} at {where} is not implemented locally")
        if isinstance(sub, dict):
            _check_pattern(sub, where)
        elif isinstance(sub, list) and sub:
            for condition in sub:
                _check_condition(condition, where)
        else:
            raise UnsupportedMapping(f"filter pattern at {where} must be an object or a non-empty array")


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _check_condition(condition: Any, where: str) -> None:
    if _scalar(condition):
        return
    if not isinstance(condition, dict) or len(condition) != 1:
        raise UnsupportedMapping(f"filter condition {condition!r} at {where} is not supported locally")
    ((operator, operand),) = condition.items()
    if operator not in _OPERATORS:
        raise UnsupportedMapping(f"filter operator {operator!r} at {where} is not implemented locally")
    if operator == "prefix" and not isinstance(operand, str):
        raise UnsupportedMapping(f"'prefix' at {where} takes a string")
    if operator == "exists" and not isinstance(operand, bool):
        raise UnsupportedMapping(f"'exists' at {where} takes true or false")
    if operator == "anything-but":
        values = operand if isinstance(operand, list) else [operand]
        if not values or not all(_scalar(v) and v is not None for v in values):
            # anything-but {"prefix": ...} and friends are operators this poller does not implement.
            raise UnsupportedMapping(f"'anything-but' at {where} is supported with a value or a list of values only")


def compile_filters(criteria: dict[str, Any] | None) -> tuple[dict[str, Any], ...]:
    """The patterns of a mapping's FilterCriteria, validated; empty: every record passes."""
    patterns: list[dict[str, Any]] = []
    for entry in (criteria or {}).get("Filters") or []:
        text = entry.get("Pattern")
        try:
            pattern = json.loads(text) if isinstance(text, str) else None
        except ValueError as error:
            raise UnsupportedMapping(f"filter pattern {text!r} is not JSON: {error}") from None
        _check_pattern(pattern, "")
        assert isinstance(pattern, dict)
        patterns.append(pattern)
    return tuple(patterns)


_MISSING = object()


def _leaves(value: Any) -> list[Any]:
    """The leaf values at a path: event patterns match leaves only (an object is not one), and an
    array matches when any of its elements does."""
    if value is _MISSING or isinstance(value, dict):
        return []
    if isinstance(value, list):
        return [leaf for element in value for leaf in _leaves(element)]
    return [value]


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _equal(expected: Any, actual: Any) -> bool:
    left, right = _number(expected), _number(actual)
    if left is not None or right is not None:
        return left is not None and right is not None and left == right
    return type(expected) is type(actual) and bool(expected == actual)


def _condition_matches(condition: Any, leaves: list[Any]) -> bool:
    if not isinstance(condition, dict):
        return any(_equal(condition, leaf) for leaf in leaves)
    ((operator, operand),) = condition.items()
    if operator == "exists":
        return bool(leaves) is operand
    if operator == "prefix":
        return any(isinstance(leaf, str) and leaf.startswith(operand) for leaf in leaves)
    excluded = operand if isinstance(operand, list) else [operand]  # anything-but
    return any(not any(_equal(value, leaf) for value in excluded) for leaf in leaves)


def pattern_matches(pattern: dict[str, Any], event: Any) -> bool:
    for key, sub in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(sub, dict):
            candidates = [v for v in value if isinstance(v, dict)] if isinstance(value, list) else [value]
            # A missing (or non-object) value still matches a nested pattern made of exists:false.
            if not any(pattern_matches(sub, c if isinstance(c, dict) else {}) for c in candidates):
                return False
        elif not any(_condition_matches(condition, _leaves(value)) for condition in sub):
            return False
    return True


def record_passes(patterns: tuple[dict[str, Any], ...], record: dict[str, Any]) -> bool:
    """A record goes to the function when any one filter matches it (or there are no filters)."""
    return not patterns or any(pattern_matches(p, record) for p in patterns)


# --- mappings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamMapping:
    uuid: str
    function: str
    stream_arn: str
    batch_size: int = 100
    window_s: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    filters: tuple[dict[str, Any], ...] = ()
    report_failures: bool = False
    max_retries: int = -1
    bisect: bool = False
    on_failure: str | None = None


def is_stream_arn(arn: str) -> bool:
    return arn.startswith("arn:aws:dynamodb:") and "/stream/" in arn


def mapping_from_configuration(esm: dict[str, Any]) -> StreamMapping:
    """A Lambda EventSourceMapping configuration as the poller runs it; raises UnsupportedMapping."""
    if esm.get("TumblingWindowInSeconds"):
        raise UnsupportedMapping(f"mapping {esm['UUID']}: tumbling windows are not implemented locally")
    position = esm.get("StartingPosition") or "TRIM_HORIZON"
    if position not in ("TRIM_HORIZON", "LATEST"):
        raise UnsupportedMapping(f"mapping {esm['UUID']}: StartingPosition {position} is not supported locally")
    destination = ((esm.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    if destination and ":sqs:" not in destination:
        raise UnsupportedMapping(f"mapping {esm['UUID']}: only SQS on-failure destinations are supported locally")
    retries = esm.get("MaximumRetryAttempts")
    return StreamMapping(
        uuid=esm["UUID"],
        function=esm["FunctionArn"],
        stream_arn=esm["EventSourceArn"],
        batch_size=int(esm.get("BatchSize") or 100),
        window_s=float(esm.get("MaximumBatchingWindowInSeconds") or 0),
        starting_position=position,
        filters=compile_filters(esm.get("FilterCriteria")),
        report_failures="ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or []),
        max_retries=-1 if retries is None else int(retries),
        bisect=bool(esm.get("BisectBatchOnFunctionError")),
        on_failure=destination or None,
    )


def load_stream_mappings(client: Any = None) -> list[StreamMapping]:
    """Every enabled mapping whose source is a DynamoDB stream."""
    client = client or boto3.client("lambda")
    mappings = []
    for page in client.get_paginator("list_event_source_mappings").paginate():
        for esm in page["EventSourceMappings"]:
            if not is_stream_arn(esm.get("EventSourceArn", "")):
                continue
            if esm.get("State", "Enabled") not in ("Enabled", "Creating"):
                continue
            mappings.append(mapping_from_configuration(esm))
    return mappings


# --- records as Lambda presents them ----------------------------------------------------------


def _wire(value: Any) -> Any:
    """DynamoDB JSON as the Lambda event carries it: binary values base64 text (boto3 decoded them)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _epoch_seconds(value: Any) -> int:
    # AWS: "in UNIX epoch time format and rounded down to the closest second".
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(float(value))


def lambda_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (as boto3 returns it) shaped as Lambda sends it to the function."""
    source = raw["dynamodb"]
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": _epoch_seconds(source["ApproximateCreationDateTime"]),
        "Keys": _wire(source["Keys"]),
    }
    for image in ("NewImage", "OldImage"):
        if image in source:
            dynamodb[image] = _wire(source[image])
    dynamodb["SequenceNumber"] = str(source["SequenceNumber"])
    dynamodb["SizeBytes"] = int(source["SizeBytes"])
    dynamodb["StreamViewType"] = source["StreamViewType"]
    record = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion") or REGION,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if raw.get("userIdentity"):  # TTL deletions
        record["userIdentity"] = raw["userIdentity"]
    return record


def _sequence(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


# --- the poller's decisions, without threads or I/O ---------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one invocation of a batch ended."""

    kind: str  # "ok" | "partial" | "error" | "invalid" | "throttled"
    failed: frozenset[str] = frozenset()  # "partial": the reported sequence numbers
    function_error: str | None = None  # "error": Lambda's X-Amz-Function-Error ("Unhandled")
    detail: str = ""


def interpret(batch: list[dict[str, Any]], invoke: Callable[[], Any], report_failures: bool) -> Outcome:
    """Invoke and classify the answer the way Lambda's poller reads it."""
    try:
        result = invoke()
    except FunctionThrottled as error:
        return Outcome("throttled", detail=str(error))
    except (FunctionError, FunctionTimeout) as error:
        return Outcome("error", function_error="Unhandled", detail=str(error))
    if not report_failures or not isinstance(result, dict):
        return Outcome("ok")
    failures = result.get("batchItemFailures")
    if not failures:  # absent, null or empty: the whole batch succeeded
        return Outcome("ok")
    in_batch = {_sequence(r) for r in batch}
    if not isinstance(failures, list):
        return Outcome("invalid", detail="batchItemFailures is not a list")
    failed = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or identifier not in in_batch:
            return Outcome("invalid", detail=f"batchItemFailures names {identifier!r}, not a record of the batch")
        failed.add(identifier)
    return Outcome("partial", failed=frozenset(failed))


@dataclass
class Settlement:
    """What the poller does after a batch: `exhausted` records go to the on-failure destination."""

    checkpointed: int = 0
    retry: bool = False
    exhausted: list[dict[str, Any]] = field(default_factory=list)
    invoke_count: int = 0


class ShardCursor:
    """One shard's uncheckpointed records and the retry state of its head batch.

    `pending` holds the records read and matched but not yet checkpointed, in shard order.
    `plan` fixes the sizes of the next batches while retrying (the failed batch, or the halves of
    a bisected one), so a retry is exactly the records that failed, never extended by new ones.
    `failures` counts, per sequence number, the invocations a record was in that did not get it
    past the checkpoint (a bisect split and a throttle do not count)."""

    def __init__(self, mapping: StreamMapping) -> None:
        self.mapping = mapping
        self.pending: list[dict[str, Any]] = []
        self.plan: list[int] = []
        self.failures: dict[str, int] = {}
        self.filtered = 0
        self._waiting_since: float | None = None

    def add(self, records: list[dict[str, Any]], now: float) -> int:
        """Buffer Lambda-shaped records that pass the filters; returns how many were buffered."""
        passed = [r for r in records if record_passes(self.mapping.filters, r)]
        self.filtered += len(records) - len(passed)
        if passed and not self.pending:
            self._waiting_since = now
        self.pending.extend(passed)
        return len(passed)

    def wants_records(self) -> bool:
        return not self.plan and len(self.pending) < self.mapping.batch_size

    def ready(self, now: float) -> bool:
        if not self.pending:
            return False
        if self.plan or len(self.pending) >= self.mapping.batch_size:
            return True
        return self._waiting_since is not None and now - self._waiting_since >= self.mapping.window_s

    def next_batch(self) -> list[dict[str, Any]]:
        size = self.plan[0] if self.plan else self.mapping.batch_size
        return self.pending[:size]

    def settle(self, batch: list[dict[str, Any]], outcome: Outcome) -> Settlement:
        assert batch, "a batch has records"
        assert self.pending[: len(batch)] == batch, "a batch is always the head of the shard"
        if self.plan:
            self.plan.pop(0)
        if outcome.kind == "ok":
            return Settlement(checkpointed=self._checkpoint(len(batch)))
        if outcome.kind == "throttled":
            self.plan.insert(0, len(batch))
            return Settlement(retry=True)
        if outcome.kind == "partial":
            lowest = min(i for i, r in enumerate(batch) if _sequence(r) in outcome.failed)
            checkpointed = self._checkpoint(lowest)
            return self._failed(batch[lowest:], checkpointed)
        if outcome.kind == "error" and self.mapping.bisect and len(batch) > 1:
            half = len(batch) // 2
            self.plan[0:0] = [half, len(batch) - half]
            return Settlement(retry=True)
        return self._failed(batch, 0)

    def _failed(self, retried: list[dict[str, Any]], checkpointed: int) -> Settlement:
        for record in retried:
            self.failures[_sequence(record)] = self.failures.get(_sequence(record), 0) + 1
        count = max(self.failures[_sequence(r)] for r in retried)
        limit = self.mapping.max_retries
        if limit >= 0 and count > limit:
            self._checkpoint(len(retried))
            return Settlement(checkpointed=checkpointed, exhausted=list(retried), invoke_count=count)
        self.plan.insert(0, len(retried))
        return Settlement(checkpointed=checkpointed, retry=True, invoke_count=count)

    def _checkpoint(self, count: int) -> int:
        for record in self.pending[:count]:
            self.failures.pop(_sequence(record), None)
        del self.pending[:count]
        return count


def _iso(epoch: int | float, *, millis: bool) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def on_failure_document(
    mapping: StreamMapping,
    shard_id: str,
    records: list[dict[str, Any]],
    invoke_count: int,
    outcome: Outcome,
    now: float,
) -> dict[str, Any]:
    """The record Lambda sends to an on-failure destination of a stream mapping."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if outcome.function_error:
        response["functionError"] = outcome.function_error
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": mapping.function,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(now, millis=True),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": _sequence(records[0]),
            "endSequenceNumber": _sequence(records[-1]),
            "approximateArrivalOfFirstRecord": _iso(
                records[0]["dynamodb"]["ApproximateCreationDateTime"], millis=False
            ),
            "approximateArrivalOfLastRecord": _iso(
                records[-1]["dynamodb"]["ApproximateCreationDateTime"], millis=False
            ),
            "batchSize": len(records),
            "streamArn": mapping.stream_arn,
        },
    }


# --- the poller thread ------------------------------------------------------------------------


def _queue_url(sqs: Any, arn: str) -> str:
    _, _, _, _, account, name = arn.split(":")
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


class StreamPoller:
    """One mapping on one shard. `start()` takes the shard iterator before the thread runs, so
    LATEST means "from the moment the runtime started the poller"."""

    def __init__(
        self,
        mapping: StreamMapping,
        shard_id: str,
        invoke: Invoke,
        stop: threading.Event,
        *,
        starting_position: str | None = None,
        streams: Any = None,
        sqs: Any = None,
    ) -> None:
        self.mapping = mapping
        self.shard_id = shard_id
        self.invoke = invoke
        self.stop = stop
        self.starting_position = starting_position or mapping.starting_position
        self.streams = streams or boto3.client("dynamodbstreams")
        self.sqs = sqs or boto3.client("sqs")
        self.cursor = ShardCursor(mapping)
        self.batches = 0
        self._iterator: str | None = None
        self._last_read: str | None = None
        self._backoff = FIRST_BACKOFF_S
        self.thread = threading.Thread(target=self._run, name=f"ddb-stream-{mapping.uuid[:8]}", daemon=True)

    def start(self) -> None:
        self._iterator = self._new_iterator()
        self.thread.start()

    def _new_iterator(self) -> str:
        request = {"StreamArn": self.mapping.stream_arn, "ShardId": self.shard_id}
        if self._last_read is not None:
            request |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self._last_read}
        else:
            request["ShardIteratorType"] = self.starting_position
        return str(self.streams.get_shard_iterator(**request)["ShardIterator"])

    def poll(self) -> int:
        """Read the next records of the shard into the cursor; returns how many were read."""
        if self._iterator is None:
            self._iterator = self._new_iterator()
        try:
            answer = self.streams.get_records(ShardIterator=self._iterator, Limit=self.mapping.batch_size)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExpiredIteratorException":
                # AWS iterators last 15 minutes (moto's forever): continue after the last record read.
                self._iterator = None
            raise
        self._iterator = answer.get("NextShardIterator")
        raw = answer.get("Records", [])
        if raw:
            self._last_read = str(raw[-1]["dynamodb"]["SequenceNumber"])
            self.cursor.add([lambda_record(r, self.mapping.stream_arn) for r in raw], time.monotonic())
        return len(raw)

    def step(self) -> Settlement | None:
        """Invoke the function with the next batch when one is ready; None when none is."""
        if not self.cursor.ready(time.monotonic()):
            return None
        batch = self.cursor.next_batch()
        self.batches += 1
        event = {"Records": batch}
        outcome = interpret(batch, lambda: self.invoke(self.mapping.function, event), self.mapping.report_failures)
        if outcome.kind != "ok":
            log.info(
                "stream batch %s..%s (%d records) for %s: %s %s",
                _sequence(batch[0]),
                _sequence(batch[-1]),
                len(batch),
                self.mapping.function,
                outcome.kind,
                outcome.detail,
            )
        settlement = self.cursor.settle(batch, outcome)
        if settlement.exhausted:
            self._send_on_failure(settlement, outcome)
        return settlement

    def _send_on_failure(self, settlement: Settlement, outcome: Outcome) -> None:
        records = settlement.exhausted
        span = f"{_sequence(records[0])}..{_sequence(records[-1])}"
        if self.mapping.on_failure is None:
            log.warning(
                "retries exhausted: skipping stream records %s of %s for %s (no on-failure destination)",
                span,
                self.mapping.stream_arn,
                self.mapping.function,
            )
            return
        document = on_failure_document(
            self.mapping, self.shard_id, records, settlement.invoke_count, outcome, time.time()
        )
        while True:  # the records are past the checkpoint: their failure record must not be lost
            try:
                self.sqs.send_message(
                    QueueUrl=_queue_url(self.sqs, self.mapping.on_failure), MessageBody=json.dumps(document)
                )
                log.warning("retries exhausted: stream records %s sent to %s", span, self.mapping.on_failure)
                return
            except Exception:
                log.exception("could not send the on-failure record of %s to %s", span, self.mapping.on_failure)
                if self.stop.wait(MAX_BACKOFF_S):
                    return

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                read = self.poll() if self.cursor.wants_records() else 0
                settlement = self.step()
            except Exception:
                if self.stop.is_set():
                    return  # the runtime is stopping: its functions are gone
                # The iterator and the cursor are unchanged: the same records are read or retried.
                log.exception("stream poller for %s failed", self.mapping.stream_arn)
                self.stop.wait(MAX_BACKOFF_S)
                continue
            if settlement is not None and settlement.retry:
                self.stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
                continue
            if settlement is not None:
                self._backoff = FIRST_BACKOFF_S
            if settlement is None and not read:
                self.stop.wait(IDLE_POLL_S if not self.cursor.pending else min(IDLE_POLL_S, self.mapping.window_s))


def stream_pollers(
    invoke: Invoke,
    stop: threading.Event,
    *,
    starting_position: str | None = None,
    mappings: list[StreamMapping] | None = None,
) -> list[StreamPoller]:
    """A poller for every open shard of every enabled stream mapping (not started)."""
    streams = boto3.client("dynamodbstreams")
    pollers = []
    for mapping in load_stream_mappings() if mappings is None else mappings:
        description = streams.describe_stream(StreamArn=mapping.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            if "EndingSequenceNumber" in shard.get("SequenceNumberRange", {}):
                continue  # closed: moto never closes a shard
            pollers.append(
                StreamPoller(
                    mapping, shard["ShardId"], invoke, stop, starting_position=starting_position, streams=streams
                )
            )
    return pollers
