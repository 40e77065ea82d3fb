"""SQS event source mappings, polled the way Lambda's poller does.

For each enabled mapping: receive up to BatchSize messages (waiting at most
MaximumBatchingWindowInSeconds to fill the batch), invoke the function with the SQS event, then
delete what succeeded. With `ReportBatchItemFailures` only the messages named in
`batchItemFailures` stay; a function error (or an unknown id in the report) keeps the whole
batch. Kept messages reappear after the queue's visibility timeout, and moto's SQS moves them
to the DLQ once `maxReceiveCount` is passed, as AWS does.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3

from infra.local.lambdas import FunctionError, FunctionThrottled, FunctionTimeout, LambdaRuntime
from infra.local.moto_host import REGION

log = logging.getLogger("local.sqs")


@dataclass(frozen=True)
class Mapping:
    uuid: str
    function: str
    queue_arn: str
    batch_size: int
    window_s: float
    report_failures: bool


def _queue_url(sqs: Any, arn: str) -> str:
    _, _, _, _, account, name = arn.split(":")
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def load_mappings() -> list[Mapping]:
    client = boto3.client("lambda")
    mappings = []
    for page in client.get_paginator("list_event_source_mappings").paginate():
        for esm in page["EventSourceMappings"]:
            if ":sqs:" not in esm.get("EventSourceArn", "") or esm.get("State", "Enabled") not in (
                "Enabled",
                "Creating",
            ):
                continue
            mappings.append(
                Mapping(
                    uuid=esm["UUID"],
                    function=esm["FunctionArn"],
                    queue_arn=esm["EventSourceArn"],
                    batch_size=int(esm.get("BatchSize") or 10),
                    window_s=float(esm.get("MaximumBatchingWindowInSeconds") or 0),
                    report_failures="ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or []),
                )
            )
    return mappings


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class SqsPoller:
    def __init__(self, mapping: Mapping, lambdas: LambdaRuntime, stop: threading.Event) -> None:
        self.mapping = mapping
        self.lambdas = lambdas
        self.stop = stop
        self.sqs = boto3.client("sqs")
        self.queue_url = _queue_url(self.sqs, mapping.queue_arn)
        self.batches = 0
        self.thread = threading.Thread(target=self._run, name=f"sqs-{mapping.uuid[:8]}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self.mapping.window_s
        while len(batch) < self.mapping.batch_size and not self.stop.is_set():
            wait = 1 if not batch else max(0, min(1, int(window_ends - time.monotonic())))
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.mapping.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            batch.extend(received)
            if not received and (batch or self.mapping.window_s == 0):
                break
            if batch and time.monotonic() >= window_ends:
                break
        return batch

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                messages = self._receive_batch()
                if messages:
                    self._process(messages)
            except Exception:
                log.exception("SQS poller for %s failed", self.mapping.queue_arn)
                self.stop.wait(1)

    def _process(self, messages: list[dict[str, Any]]) -> None:
        self.batches += 1
        event = {"Records": [_record(m, self.mapping.queue_arn) for m in messages]}
        try:
            result = self.lambdas.invoke(self.mapping.function, event)
        except (FunctionError, FunctionTimeout, FunctionThrottled) as error:
            log.info("batch of %d failed (%s); messages return after the visibility timeout", len(messages), error)
            return
        keep: set[str] = set()
        if self.mapping.report_failures and isinstance(result, dict) and result.get("batchItemFailures"):
            ids = {m["MessageId"] for m in messages}
            failed = {str(f.get("itemIdentifier", "")) for f in result["batchItemFailures"]}
            if not failed <= ids:
                log.warning("batchItemFailures names unknown messages; the whole batch is retried")
                return
            keep = failed
        done = [m for m in messages if m["MessageId"] not in keep]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
